"""The job's inputs: video files, folders walked recursively by extension, and manifests (CSV or
JSONL with an ``id`` and a ``path`` per row), each video with a unique, file-name-safe id."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidchat.apps.batch.results import BatchError
from vidchat.kernel.video import file_sha256 as video_file_sha256

__all__ = [
    "MANIFEST_SUFFIXES",
    "VIDEO_EXTENSIONS",
    "BatchItem",
    "collect_inputs",
    "file_sha256",
    "safe_id",
]

VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
    ".wmv", ".flv", ".3gp", ".ogv", ".mxf",
})  # fmt: skip
MANIFEST_SUFFIXES = frozenset({".csv", ".jsonl"})


@dataclass(frozen=True)
class BatchItem:
    """One video of the job: its output id (a safe file name stem) and its path."""

    id: str
    path: str


_UNSAFE = re.compile(r"[^\w.\-]+")


def safe_id(text: str) -> str:
    """A file-name-safe id: letters (any script), digits, ``._-``; other runs become ``_``."""
    s = _UNSAFE.sub("_", text).strip("._")[:100]
    return s or "video"


def _read_manifest(path: Path) -> list[tuple[str, str]]:
    """(id, path) rows of a CSV (header with ``id`` and ``path``) or JSONL manifest.

    Relative paths are relative to the manifest's folder.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise BatchError(f"manifest {path}: cannot read it ({e})") from None
    rows: list[dict[str, Any]] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or not {"id", "path"} <= set(reader.fieldnames):
            raise BatchError(
                f"manifest {path}: expected a CSV header with 'id' and 'path', "
                f"got {reader.fieldnames}"
            )
        rows = list(reader)
    else:
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise BatchError(f"manifest {path} line {n}: invalid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise BatchError(f"manifest {path} line {n}: expected an object, got {row!r}")
            rows.append(row)
    out = []
    for n, row in enumerate(rows, 1):
        vid, vpath = row.get("id"), row.get("path")
        if not vid or not vpath:
            raise BatchError(f"manifest {path} row {n}: expected 'id' and 'path', got {row}")
        p = Path(str(vpath)).expanduser()
        out.append((str(vid), str(p if p.is_absolute() else path.parent / p)))
    return out


def _walk(folder: Path) -> list[Path]:
    """Video files under `folder`, recursively, sorted. A sub-folder named like a video
    (``x.mp4/``) is listed as an input of its own (it then fails cleanly as 'a directory')."""
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        for d in list(dirs):
            if Path(d).suffix.lower() in VIDEO_EXTENSIONS:
                found.append(Path(root) / d)
                dirs.remove(d)
        found += [Path(root) / f for f in files if Path(f).suffix.lower() in VIDEO_EXTENSIONS]
    return sorted(found)


def collect_inputs(inputs: Iterable[str | os.PathLike[str]]) -> list[BatchItem]:
    """The job's videos from files, folders and manifests, each with a unique id.

    Files and folder entries get the id of their file stem; stems that occur more than once
    all get a short hash of their path appended (so an id does not depend on input order).
    Manifest ids are kept (made file-name-safe); a duplicate id is an error. A path that does
    not exist is kept as an input: it is recorded as failed, the job goes on.
    """
    named: list[tuple[str, str]] = []  # from manifests: fixed ids
    loose: list[str] = []
    for raw in inputs:
        p = Path(raw).expanduser()
        if p.suffix.lower() in MANIFEST_SUFFIXES:
            if not p.is_file():
                raise BatchError(f"manifest {p}: no such file (expected CSV or JSONL)")
            named += _read_manifest(p)
        elif p.is_dir():
            loose += [str(f) for f in _walk(p)]
        else:
            loose.append(str(p))
    items: list[BatchItem] = []
    seen: dict[str, str] = {}
    for vid, path in named:
        sid = safe_id(vid)
        if sid in seen:
            raise BatchError(f"manifest id {vid!r} used twice ({seen[sid]} and {path})")
        seen[sid] = path
        items.append(BatchItem(sid, path))
    stems: dict[str, list[str]] = {}
    for path in dict.fromkeys(loose):  # the same file named twice is one video
        stems.setdefault(safe_id(Path(path).stem), []).append(path)
    for stem, paths in stems.items():
        for path in paths:
            sid = stem
            if len(paths) > 1 or sid in seen:
                sid = f"{stem}-{hashlib.sha1(path.encode()).hexdigest()[:8]}"
            seen[sid] = path
            items.append(BatchItem(sid, path))
    if not items:
        raise BatchError(
            "no videos found in the inputs (expected files, folders with "
            f"{', '.join(sorted(VIDEO_EXTENSIONS)[:5])}… files, or .csv/.jsonl manifests)"
        )
    return items


def file_sha256(path: str | os.PathLike[str]) -> str | None:
    """Hex SHA-256 of a regular file's bytes; None when it is not a readable regular file."""
    try:
        import stat

        if not stat.S_ISREG(os.stat(path).st_mode):
            return None  # a folder or a FIFO: opening a FIFO would block forever
        # The memoized hash `probe` uses too, so the worker does not read the file again.
        return video_file_sha256(Path(path))
    except OSError:
        return None
