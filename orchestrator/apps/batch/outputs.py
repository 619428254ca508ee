"""The output folder and the job's state in it: per video ``<id>.json`` (the record) and
``<id>.txt`` (its rendering), each written atomically; ``manifest.jsonl``, one fsynced line per
finished video; ``summary.json`` at the end.

Resume reads the state back: a video is done when both its outputs exist, the record parses and
its ``video.sha256`` equals the input's current hash (`Outputs.done`); a torn manifest line from a
killed job is skipped (`Outputs.logged_ok`) and ended before the next line is appended.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

from vidchat.apps.batch.inputs import BatchItem, file_sha256
from vidchat.apps.batch.results import BatchError, BatchSummary, VideoResult
from vidchat.kernel.record import atomic_write_text

__all__ = ["MANIFEST_NAME", "SUMMARY_NAME", "Outputs"]

MANIFEST_NAME = "manifest.jsonl"
SUMMARY_NAME = "summary.json"


class Outputs:
    """The output folder: per-video files, the run manifest, the summary."""

    def __init__(self, outdir: Path) -> None:
        self.dir = outdir
        self.manifest = outdir / MANIFEST_NAME
        try:
            outdir.mkdir(parents=True, exist_ok=True)
            # A real write (create, fsync, rename, delete) before any work: an unwritable or full
            # output folder fails now, in one line, not after an hour of textualizing.
            probe = atomic_write_text(outdir / ".vidchat-write-test", "ok\n" * 1024)
            probe.unlink()
        except OSError as e:
            raise BatchError(f"output folder {outdir} is not writable: {_os_error(e)}") from None

    def json_path(self, vid: str) -> Path:
        """Where video `vid`'s record goes."""
        return self.dir / f"{vid}.json"

    def txt_path(self, vid: str) -> Path:
        """Where video `vid`'s rendering goes."""
        return self.dir / f"{vid}.txt"

    def logged_ok(self) -> set[str]:
        """Ids with a record-bearing line (ok/degraded) in the manifest (a torn last line from a
        killed job is ignored)."""
        ids: set[str] = set()
        try:
            lines = self.manifest.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return ids
        for line in lines:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and row.get("status") in ("ok", "degraded"):
                ids.add(str(row.get("id")))
        return ids

    def done(self, item: BatchItem) -> str | None:
        """The finished record's JSON when this video's outputs are complete and match the input's
        current hash; None when it must be (re)done."""
        j, t = self.json_path(item.id), self.txt_path(item.id)
        if not (j.is_file() and t.is_file()):
            return None
        try:
            text = j.read_text(encoding="utf-8")
            sha = json.loads(text)["video"]["sha256"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return text if sha and sha == file_sha256(item.path) else None

    def write(self, result: VideoResult) -> None:
        """The record, then its rendering, each atomically; on failure neither is left behind."""
        if result.record is None:
            return
        j, t = self.json_path(result.id), self.txt_path(result.id)
        try:
            atomic_write_text(j, result.record)
            atomic_write_text(t, (result.text or "") + "\n")
        except OSError as e:
            j.unlink(missing_ok=True)
            t.unlink(missing_ok=True)
            raise BatchError(f"cannot write the outputs of {result.id} in {self.dir}: "
                             f"{_os_error(e)}") from None  # fmt: skip

    def append(self, result: VideoResult) -> None:
        """One manifest line, in one write, flushed and fsynced (a killed job loses at most the
        line being written, which readers skip)."""
        line = json.dumps(result.manifest_line(), ensure_ascii=False) + "\n"
        try:
            with open(self.manifest, "a+b") as f:
                f.seek(0, os.SEEK_END)
                if f.tell() > 0:
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":  # a torn line from a killed run: end it first
                        line = "\n" + line
                f.write(line.encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise BatchError(f"cannot append to {self.manifest}: {_os_error(e)}") from None

    def summary(self, summary: BatchSummary) -> None:
        """Write ``summary.json`` atomically."""
        try:
            atomic_write_text(self.dir / SUMMARY_NAME, summary.model_dump_json(indent=1))
        except OSError as e:
            raise BatchError(f"cannot write {self.dir / SUMMARY_NAME}: {_os_error(e)}") from None


def _os_error(e: OSError) -> str:
    name = errno.errorcode.get(e.errno or 0, "")
    what = {errno.ENOSPC: "no space left on device", errno.EROFS: "read-only file system"}
    return f"{what.get(e.errno or 0, e.strerror or str(e))} ({name or type(e).__name__})"
