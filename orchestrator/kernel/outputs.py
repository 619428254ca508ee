"""Output files that behave like files a user owns.

Every file vidchat writes for a user (records, renderings, pictures, manifests) goes through here:

- `check_output_path` runs BEFORE any work: a folder, a missing parent folder, a path under a
  regular file, a read-only folder or file, a place where nothing can be created (``/proc``)
  fail at once in one line (`OutputError`, exit status 2), not after minutes of computing.
- ``-`` means standard output.
- An existing character device or FIFO (``/dev/null``, ``/dev/stdout``, a named pipe), or a
  symlink to one, is written to, never replaced; so is anything under ``/dev`` or ``/proc``.
- Anything else is written atomically: a temporary file in the same folder, renamed over the
  path. A symlink at the path is replaced by the file (its target is left alone). A new file
  gets the user's umask (0644 under the usual 022), a replaced regular file keeps its mode.
- A write that fails (a full disk, a quota) removes the partial temporary file and says so.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from vidchat.kernel.errors import VidchatError

__all__ = [
    "STDOUT",
    "OutputError",
    "OutputTarget",
    "check_output_path",
    "finish_output",
    "user_umask",
    "write_output",
]

STDOUT = "-"


class OutputError(VidchatError, OSError):
    """An output path cannot be written (the message names the path and why).

    Also an OSError carrying the cause's `errno`, so callers that handle OS errors still do.
    """

    def __init__(self, message: str, cause: OSError | None = None) -> None:
        super().__init__(message)
        self.errno = cause.errno if cause is not None else None
        self.strerror = _why(cause) if cause is not None else None

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class OutputTarget:
    """Where an output goes: ``stdout``, an existing ``device`` (character device or FIFO,
    written to in place) or a ``file`` (written atomically)."""

    path: Path | None
    kind: Literal["stdout", "device", "file"]

    def __str__(self) -> str:
        return "standard output" if self.path is None else str(self.path)


_umask_lock = threading.Lock()


def user_umask() -> int:
    """The process umask (read without changing it where Linux allows)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:  # os.umask can only be read by setting it
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _is_device(mode: int) -> bool:
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def _write_through(path: Path) -> bool:
    """True when `path` must be opened and written in place, never replaced: an existing
    character device or FIFO (or a link to one), anything under /proc, and the links under /dev
    (``/dev/stdout`` leads to ``/proc/self/fd/1``, a regular file when the shell redirected it).
    A new file under /dev/shm is an ordinary file."""
    try:
        st = path.stat()  # follows symlinks: a link to /dev/null is written through
    except OSError:
        st = None
    if st is not None and _is_device(st.st_mode):
        return True
    text = os.path.abspath(path)
    if text.startswith("/proc/"):
        return True
    return text.startswith("/dev/") and path.is_symlink()


def _why(e: OSError) -> str:
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return "no space left on the device"
    if e.errno == errno.EROFS:
        return "the file system is read-only"
    if e.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return e.strerror or str(e)


def check_output_path(path: str | os.PathLike[str], what: str = "output") -> OutputTarget:
    """Check that `path` can be written, before any work; `OutputError` (one line) if not.

    Creates nothing that stays: a folder's writability is tested by creating and removing a
    temporary file in it (the only test that also catches read-only mounts and ``/proc``).
    """
    if os.fspath(path) == STDOUT:
        return OutputTarget(None, "stdout")
    p = Path(path).expanduser()
    st: os.stat_result | None
    if _write_through(p):
        try:
            st = p.stat()
        except OSError as e:
            raise OutputError(f"{what} {p}: cannot be written ({_why(e)})", e) from None
        if stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{what} {p}: is a directory, expected a file name")
        # Under /dev and /proc only devices, FIFOs and links to open files (/dev/stdout,
        # /proc/self/fd/1 when the shell redirected it to a file) are outputs.
        if not (_is_device(st.st_mode) or p.is_symlink()):
            raise OutputError(f"{what} {p}: a system file, not a place for vidchat's output")
        if not os.access(p, os.W_OK):
            raise OutputError(f"{what} {p}: cannot be written (permission denied)")
        return OutputTarget(p, "device")
    try:
        st = p.stat()
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise OutputError(f"{what} {p}: a part of the path is a file, not a folder") from None
    except OSError as e:
        raise OutputError(f"{what} {p}: cannot be written ({_why(e)})", e) from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{what} {p}: is a directory, expected a file name")
        if not stat.S_ISREG(st.st_mode):
            raise OutputError(f"{what} {p}: is neither a file nor a device vidchat can write")
        if not p.is_symlink() and not os.access(p, os.W_OK):
            raise OutputError(f"{what} {p}: the file is read-only")
    parent = p.parent
    try:
        pst = parent.stat()
    except FileNotFoundError:
        raise OutputError(f"{what} {p}: the folder {parent} does not exist") from None
    except NotADirectoryError:
        raise OutputError(f"{what} {p}: a part of the path is a file, not a folder") from None
    except OSError as e:
        msg = f"{what} {p}: the folder {parent} cannot be used ({_why(e)})"
        raise OutputError(msg, e) from None
    if not stat.S_ISDIR(pst.st_mode):
        raise OutputError(f"{what} {p}: {parent} is a file, not a folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".vidchat-check-", dir=parent)
    except OSError as e:
        raise OutputError(f"{what} {p}: cannot create files in {parent} ({_why(e)})", e) from None
    os.close(fd)
    os.unlink(tmp)
    return OutputTarget(p, "file")


def _mode_for(path: Path) -> int:
    """A replaced regular file keeps its mode; a new file gets 0666 minus the umask."""
    try:
        st = os.lstat(path)
        if stat.S_ISREG(st.st_mode):
            return stat.S_IMODE(st.st_mode)
    except OSError:
        pass
    return 0o666 & ~user_umask()


def _stdout_write(data: bytes) -> None:
    out = sys.stdout.buffer
    out.write(data)
    out.flush()


def write_output(
    path: str | os.PathLike[str] | OutputTarget, data: bytes | str, *, make_parents: bool = False
) -> OutputTarget:
    """Write `data` to `path` by the rules in this module's docstring; returns where it went.

    `make_parents` creates missing folders (for files vidchat manages itself, like its cache);
    user-named outputs are checked with `check_output_path` instead.
    """
    blob = data.encode("utf-8") if isinstance(data, str) else data
    return _emit(path, make_parents, lambda f: f.write(blob), blob)


def finish_output(
    tmp: str | os.PathLike[str], path: str | os.PathLike[str] | OutputTarget
) -> OutputTarget:
    """Move a finished temporary file (written by another program, e.g. ffmpeg, in the
    output's folder) to `path` by the same rules: renamed over a file, copied into a device
    or standard output. The temporary file is gone afterwards, whatever happens."""
    src = Path(tmp)
    try:
        target = _target(path, make_parents=False)
        if target.kind == "file":
            assert target.path is not None
            try:
                os.chmod(src, _mode_for(target.path))
                os.replace(src, target.path)
            except OSError as e:
                raise OutputError(f"could not write {target.path}: {_why(e)}", e) from None
            return target

        def copy(f: BinaryIO) -> None:
            with open(src, "rb") as r:
                while chunk := r.read(1 << 20):
                    f.write(chunk)

        return _emit(target, False, copy, None)
    finally:
        with contextlib.suppress(OSError):
            src.unlink()


def _target(path: str | os.PathLike[str] | OutputTarget, make_parents: bool) -> OutputTarget:
    if isinstance(path, OutputTarget):
        return path
    if os.fspath(path) == STDOUT:
        return OutputTarget(None, "stdout")
    p = Path(path)
    if _write_through(p):
        return OutputTarget(p, "device")
    if make_parents:
        p.parent.mkdir(parents=True, exist_ok=True)
    return OutputTarget(p, "file")


def _emit(
    path: str | os.PathLike[str] | OutputTarget,
    make_parents: bool,
    write: Callable[[BinaryIO], object],
    blob: bytes | None,
) -> OutputTarget:
    target = _target(path, make_parents)
    if target.kind == "stdout":
        try:
            if blob is not None:
                _stdout_write(blob)
            else:
                write(sys.stdout.buffer)
                sys.stdout.buffer.flush()
        except OSError as e:
            if isinstance(e, BrokenPipeError):
                raise
            raise OutputError(f"could not write to standard output: {_why(e)}", e) from None
        return target
    assert target.path is not None
    if target.kind == "device":
        try:
            with open(target.path, "wb") as f:
                write(f)
        except OSError as e:
            raise OutputError(f"could not write {target.path}: {_why(e)}", e) from None
        return target
    p = target.path
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    except OSError as e:
        raise OutputError(f"could not write {p}: cannot create a file in {p.parent} "
                          f"({_why(e)})", e) from None  # fmt: skip
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), _mode_for(p))
        os.replace(tmp, p)  # a symlink at p is replaced, not followed
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise OutputError(
            f"could not write {p}: {_why(e)}; the partial file was removed"
            + (" (nothing at the path was changed)" if e.errno in (errno.ENOSPC, errno.EDQUOT)
               else ""),
            e,
        ) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target
