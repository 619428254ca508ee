"""Output paths: checked before any work, '-' is stdout, devices written to, symlinks replaced,
the user's umask, a full disk cleaned up; picture commands write their file or fail in one line.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from vidchat.cli import main as cli
from vidchat.kernel import outputs
from vidchat.kernel.outputs import OutputError, check_output_path, write_output
from vidchat.kernel.record import VideoContext
from vidchat.kernel.video import probe
from vidchat.testing import videos

TOY_PROFILE = """\
name: toy
perceivers:
  brightness: null
sampling: {slow_fps: 1.0, fast_fps: 2.0, fast_max_side: 64}
"""


@pytest.fixture
def toy_yaml(tmp_path) -> Path:
    p = tmp_path / "toy.yaml"
    p.write_text(TOY_PROFILE)
    return p


def run_cli(capsysbinary, *args) -> tuple[int, bytes, str]:
    code = cli.main([str(a) for a in args])
    out, err = capsysbinary.readouterr()
    return code, out, err.decode("utf-8", "replace")


# ------------------------------------------------------------------------- the path check


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d, "is a directory, expected a file name"),
        (lambda d: d / "missing" / "rec.json", "does not exist"),
        (lambda d: _file(d) / "rec.json", "a part of the path is a file, not a folder"),
        (lambda d: Path("/proc/vidchat-test.json"), "cannot be written"),
        (lambda d: Path("/proc/self/status"), "a system file"),
        (lambda d: Path("/sys/vidchat-test.json"), "cannot create files in /sys"),
    ],
)
def test_bad_output_paths_fail_in_one_line(make, message, tmp_path):
    with pytest.raises(OutputError) as e:
        check_output_path(make(tmp_path))
    assert message in str(e.value) and "\n" not in str(e.value)
    assert isinstance(e.value, OSError) and e.value.exit_code == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".vidchat-check")]


def _file(d: Path) -> Path:
    f = d / "plain.txt"
    f.write_text("x")
    return f


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_and_file(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "old.json").write_text("{}")
    (ro / "old.json").chmod(0o444)
    ro.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="cannot create files in"):
            check_output_path(ro / "new.json")
        with pytest.raises(OutputError, match="read-only"):
            check_output_path(ro / "old.json")
    finally:
        ro.chmod(0o755)


def test_good_targets(tmp_path):
    assert check_output_path("-").kind == "stdout"
    assert check_output_path("/dev/null").kind == "device"
    assert check_output_path(tmp_path / "new.json").kind == "file"
    if os.path.isdir("/dev/shm"):  # a tmpfs under /dev: new files there are ordinary files
        assert check_output_path("/dev/shm/vidchat-new.json").kind == "file"
    link = tmp_path / "out.json"
    link.symlink_to("/dev/null")
    assert check_output_path(link).kind == "device"


# ---------------------------------------------------------------------------- the write


def test_new_files_get_the_umask_and_replaced_files_keep_their_mode(tmp_path):
    old = os.umask(0o027)
    try:
        p = write_output(tmp_path / "a.json", "{}").path
        assert p is not None and stat.S_IMODE(p.stat().st_mode) == 0o640
    finally:
        os.umask(old)
    kept = tmp_path / "b.json"
    kept.write_text("old")
    kept.chmod(0o600)
    write_output(kept, "new")
    assert kept.read_text() == "new" and stat.S_IMODE(kept.stat().st_mode) == 0o600


def test_a_symlink_is_replaced_not_followed(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    link = tmp_path / "rec.json"
    link.symlink_to(target)
    write_output(link, "record")
    assert not link.is_symlink() and link.read_text() == "record"
    assert target.read_text() == "keep me"


def test_devices_and_fifos_are_written_to_never_replaced(tmp_path):
    write_output("/dev/null", "x" * 1000)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_output(fifo, b"through the pipe")
    reader.join(10)
    assert got == [b"through the pipe"] and stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_full_disk_removes_the_partial_file_and_says_so(tmp_path, monkeypatch):
    dest = tmp_path / "rec.json"
    dest.write_text("the previous record")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outputs.os, "fsync", full)
    with pytest.raises(OutputError) as e:
        write_output(dest, "x" * 100_000)
    msg = str(e.value)
    assert "no space left" in msg and "partial file was removed" in msg and "\n" not in msg
    assert e.value.errno == errno.ENOSPC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.json"]
    assert dest.read_text() == "the previous record"


def test_dev_full_says_no_space(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    with pytest.raises(OutputError, match="no space left on the device"):
        write_output("/dev/full", "x" * 10000)


# ---------------------------------------------------------------------- the CLI, end to end


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d, "is a directory"),
        (lambda d: d / "nope" / "rec.json", "does not exist"),
        (lambda d: _file(d) / "rec.json", "is a file, not a folder"),
        (lambda d: Path("/proc/rec.json"), "cannot be written"),
    ],
)
def test_textualize_refuses_a_bad_output_before_any_work(
    make, message, toys, toy_yaml, tmp_path, cache_dir, capsysbinary, monkeypatch
):
    from vidchat.pipeline.core import Pipeline

    ran = []
    monkeypatch.setattr(Pipeline, "run", lambda self, p: ran.append(p))
    video = videos.no_audio(tmp_path)
    code, out, err = run_cli(capsysbinary, "textualize", video, "--profile", toy_yaml,
                             "-o", make(tmp_path))  # fmt: skip
    assert code == 2 and out == b"" and ran == []
    assert err.startswith("vidchat: error: -o ") and message in err and err.count("\n") == 1


def test_textualize_to_stdout_and_through_awkward_names(
    toys, toy_yaml, tmp_path, cache_dir, capsysbinary, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    videos.named(tmp_path, "dash_rf")  # ./-rf.mp4
    code, out, err = run_cli(capsysbinary, "textualize", "./-rf.mp4", "--profile", toy_yaml,
                             "-o", "-", "-q")  # fmt: skip
    assert code == 0, err
    rec = json.loads(out)  # only the record on stdout
    assert rec["video"]["path"].endswith("/-rf.mp4") and rec["video"]["duration"] > 0
    code, out, err = run_cli(capsysbinary, "textualize", "--profile", toy_yaml, "-q",
                             "-o", "after-dashdash.json", "--", "-rf.mp4")  # fmt: skip
    assert code == 0, err
    assert json.loads((tmp_path / "after-dashdash.json").read_text())["video"]["sha256"]
    for key in ("shell", "newline", "protocol", "spaces_quotes"):
        path = videos.named(tmp_path, key)
        code, out, err = run_cli(capsysbinary, "textualize", path, "--profile", toy_yaml,
                                 "--format", "json", "-q")  # fmt: skip
        assert code == 0, (key, err)
        assert json.loads(out)["video"]["path"] == str(path.resolve())
    assert not (tmp_path / "PWNED").exists()


def test_special_files_as_the_video_are_not_regular_files(toys, toy_yaml, tmp_path, capsysbinary):
    for make in videos.SPECIAL_FILES.values():
        code, _out, err = run_cli(capsysbinary, "textualize", make(tmp_path), "--profile",
                                 toy_yaml, "-q")  # fmt: skip
        assert code == 2 and "not a regular file" in err and err.count("\n") == 1, err


def test_progress_lines_when_stderr_is_not_a_terminal(
    toys, toy_yaml, tmp_path, cache_dir, capsysbinary, monkeypatch
):
    monkeypatch.setenv("VIDCHAT_PROGRESS_INTERVAL", "0")  # every decode step gets a line
    code, _, err = run_cli(capsysbinary, "textualize", videos.no_audio(tmp_path), "--profile",
                           toy_yaml, "-o", tmp_path / "r.json")  # fmt: skip
    assert code == 0, err
    lines = [ln for ln in err.splitlines() if ln.startswith("vidchat: [")]
    assert any("decode: started" in ln for ln in lines)
    assert sum(" of 2.0 s (" in ln for ln in lines) >= 2  # periodic positions
    assert any("brightness: ok" in ln for ln in lines)
    assert "\x1b[" not in err  # plain text, no terminal control codes


# --------------------------------------------------------------------------- picture commands


def _record(path: Path, tmp_path: Path) -> Path:
    rec = tmp_path / "rec.json"
    VideoContext(video=probe(path)).save(rec)
    return rec


def test_annotate_odd_size_writes_a_playable_file(tmp_path, capsysbinary):
    video = videos.odd_size(tmp_path)  # 333x199
    out = tmp_path / "odd.annotated.mp4"
    code, stdout, err = run_cli(capsysbinary, "annotate", video, "--record",
                                _record(video, tmp_path), "-o", out, "-q")  # fmt: skip
    assert code == 0, err
    info = probe(out)
    assert (info.width, info.height) == (334, 200) and info.duration > 0.5
    assert stdout.decode().strip() == str(out)


def test_annotate_to_stdout_and_with_a_dash_name(tmp_path, capsysbinary, monkeypatch):
    monkeypatch.chdir(tmp_path)
    video = videos.named(tmp_path, "dash_i")
    code, stdout, err = run_cli(capsysbinary, "annotate", "./-i.mp4", "--record",
                                _record(video, tmp_path), "-o", "-", "-q")  # fmt: skip
    assert code == 0, err
    assert stdout[4:8] == b"ftyp" and len(stdout) > 1000  # an mp4 on stdout


def test_annotate_encoder_failure_is_one_line_and_no_file(tmp_path, capsysbinary, monkeypatch):
    import vidchat.apps.visual as visual

    real = subprocess.Popen

    def broken_encoder(cmd, *a, **k):  # type: ignore[no-untyped-def]
        if "pipe:0" in cmd:  # only the annotate encoder: the encoder dies at once
            cmd = ["nonexistent-codec" if c == "libx264" else c for c in cmd]
        return real(cmd, *a, **k)

    video = videos.no_audio(tmp_path)
    rec = _record(video, tmp_path)
    monkeypatch.setattr(visual.subprocess, "Popen", broken_encoder)
    out = tmp_path / "x.mp4"
    code, stdout, err = run_cli(capsysbinary, "annotate", video, "--record", rec, "-o", out,
                                "-q")  # fmt: skip
    assert code == 2 and stdout == b"" and not out.exists()
    assert err.startswith("vidchat: error: ffmpeg could not encode") and err.count("\n") == 1
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]


@pytest.mark.parametrize(
    ("command", "output", "message"),
    [
        ("annotate", "x.avi", "must end in .mp4"),
        ("timeline", "x.txt", "must end in .png or .html"),
        ("contact-sheet", "x.gif", "must end in .jpg or .png"),
        ("annotate", "missing/x.mp4", "does not exist"),
        ("contact-sheet", "folder.jpg", "is a directory"),
    ],
)
def test_picture_commands_check_the_output_first(
    command, output, message, tmp_path, capsysbinary, monkeypatch
):
    import vidchat.cli.visual as visual_cli

    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder.jpg").mkdir()
    ran = []
    monkeypatch.setattr(visual_cli, "_record_for", lambda *a: ran.append(a))
    video = videos.no_audio(tmp_path)
    code, _stdout, err = run_cli(capsysbinary, command, video, "-o", output, "-q")
    assert code == 2 and ran == [] and message in err and err.count("\n") == 1, err


def test_contact_sheet_and_timeline_of_odd_sizes(tmp_path, capsysbinary):
    import cv2

    video = videos.odd_size(tmp_path)
    rec = _record(video, tmp_path)
    sheet = tmp_path / "sheet.png"
    code, _, err = run_cli(capsysbinary, "contact-sheet", video, "--record", rec, "-o", sheet,
                           "--columns", "3", "--rows", "1", "-q")  # fmt: skip
    assert code == 0, err
    img = cv2.imread(str(sheet))
    assert img is not None and img.shape[1] == 3 * 360
    code, out, err = run_cli(capsysbinary, "timeline", rec, "-o", "-")
    assert code == 0 and out[:8] == b"\x89PNG\r\n\x1a\n", err
