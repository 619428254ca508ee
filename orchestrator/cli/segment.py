"""``vidchat segment VIDEO --object person#3``: one object's masks through the video (VideoLISA).

The video is textualized with the profile's ``detect`` and a ``sam2`` perceiver (the profile's
own sam2 options, or the defaults; ``--sam2-model``/``--sam2-config`` override them), through the
cache, so a record made before is re-used. A saved record (``record.json`` with masks on its
objects' tracks; an older record's mask events are moved there on reading) works as well.
The object is named by its id or by a phrase that is resolved to one id by matching its words
against the objects' labels, descriptions, attributes and ``object_description`` events. Its
masks, one per fast frame of its lifetime where SAM-2 saw it, at the video's full resolution,
are written as a PNG sequence (``00000.png``… plus ``index.json`` with each frame's time) or as
one RLE JSON file.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from vidchat.kernel.errors import ConfigError, InputError
from vidchat.kernel.record import (
    OBJECT_ID_RE,
    RLE,
    VideoContext,
    atomic_write_text,
    track_masks,
)

__all__ = ["ObjectMasks", "add_commands", "main", "object_masks", "resolve_object", "run"]

_WORD = re.compile(r"[a-z0-9]+")
_STOP = {"the", "a", "an", "of", "in", "on", "with", "who", "that", "is", "one", "object"}


@dataclass(frozen=True)
class ObjectMasks:
    """One object's masks in time order: (time in seconds, mask) pairs."""

    object_id: str
    masks: list[tuple[float, RLE]]


def resolve_object(ctx: VideoContext, query: str) -> str:
    """The id of the object `query` names: an exact id, or the best match of a phrase.

    InputError (listing the ids) when an id is unknown or no object matches the phrase.
    """
    ids = [o.id for o in ctx.objects]
    listing = ", ".join(ids[:30]) or "none"
    q = query.strip()
    if q in ids:
        return q
    if OBJECT_ID_RE.match(q.lower()):
        raise InputError(f"no object {q!r} in the record; objects: {listing}")
    words = [w for w in _WORD.findall(q.lower()) if w not in _STOP]
    if not words:
        raise InputError(f"--object {query!r}: give an object id or a phrase; objects: {listing}")
    descriptions: dict[str, list[str]] = {}
    for e in ctx.events:
        if e.kind == "object_description":
            for oid in e.objects:
                descriptions.setdefault(oid, []).append(e.text)
    best: tuple[float, float, str] | None = None
    for o in ctx.objects:
        text = " ".join(
            [o.label, o.description or "", *descriptions.get(o.id, [])]
            + [f"{k} {v}" for k, v in o.attributes.items() if isinstance(v, str)]
        ).lower()
        vocab = set(_WORD.findall(text))
        # singular/plural-insensitive word match ("people" is not handled: labels are nouns)
        hits = sum(1 for w in words if w in vocab or w.rstrip("s") in vocab)
        if hits == 0:
            continue
        key = (hits / len(words), o.last_seen - o.first_seen, o.id)
        if best is None or key[:2] > best[:2]:
            best = key
    if best is None:
        raise InputError(f"no object matches {query!r}; objects: {listing}")
    return best[2]


def object_masks(ctx: VideoContext, object_id: str) -> ObjectMasks:
    """The masks on one object's track (full resolution, time order); InputError when the
    record has none for it."""
    try:
        masks = track_masks(ctx.object(object_id))
    except KeyError as e:
        raise InputError(str(e.args[0])) from None
    if not masks:
        has_sam2 = any(p.name == "sam2" and p.status == "ok" for p in ctx.provenance)
        why = "" if has_sam2 else " (sam2 did not run: see `vidchat perceivers`/`vidchat models`)"
        raise InputError(f"the record has no masks of {object_id}{why}")
    return ObjectMasks(object_id, masks)


def write_png(masks: ObjectMasks, folder: Path) -> list[Path]:
    """One 8-bit PNG per mask (255 = object) and ``index.json`` (file, time, area)."""
    import numpy as np
    from PIL import Image
    folder.mkdir(parents=True, exist_ok=True)
    files, index = [], []
    for i, (t, rle) in enumerate(masks.masks):
        m = rle.to_mask()
        path = folder / f"{i:05d}.png"
        Image.fromarray((m * 255).astype(np.uint8)).save(path)
        files.append(path)
        index.append({"file": path.name, "t": round(t, 4), "area_frac": round(float(m.mean()), 5)})
    data = {"object": masks.object_id, "frames": index}
    atomic_write_text(folder / "index.json", json.dumps(data, indent=1))
    return files


def write_rle(masks: ObjectMasks, path: Path, video: str) -> Path:
    """All masks in one JSON file: COCO uncompressed RLE per frame, with its time."""
    data = {
        "object": masks.object_id,
        "video": video,
        "frames": [
            {"t": round(t, 4), "rle": {"size": list(r.size), "counts": r.counts}}
            for t, r in masks.masks
        ],
    }
    return atomic_write_text(path, json.dumps(data, separators=(",", ":")))


def _sam2_profile(args: argparse.Namespace):  # -> Profile
    from vidchat.pipeline.profiles import load_profile, parse_profile

    base = load_profile(args.profile)
    data = base.model_dump(exclude={"source"})
    perceivers = {"detect": data["perceivers"].get("detect")}
    sam2 = dict(data["perceivers"].get("sam2") or {})
    if args.sam2_model:
        sam2["model"] = args.sam2_model
    if args.sam2_config:
        sam2["config"] = args.sam2_config
    perceivers["sam2"] = sam2
    data["perceivers"] = perceivers
    return parse_profile(data, f"{base.source or base.name} + sam2")


def _load(args: argparse.Namespace) -> VideoContext:
    target = Path(args.video).expanduser()
    if target.suffix.lower() == ".json":
        from vidchat.pipeline.open import open_context as load_context

        return load_context(target)
    from vidchat.pipeline.core import Pipeline

    pipeline = Pipeline(_sam2_profile(args), progress=not args.quiet)
    ctx = pipeline.run(target)
    bad = {p.name: p for p in ctx.provenance if p.status != "ok"}
    if "sam2" in bad or "detect" in bad:
        name = "detect" if "detect" in bad else "sam2"
        raise ConfigError(f"{name} {bad[name].status}: {bad[name].reason}")
    return ctx


def run(args: argparse.Namespace, err: TextIO | None = None) -> int:
    """The ``segment`` command; prints where the masks went."""
    err = err or sys.stderr
    ctx = _load(args)
    object_id = resolve_object(ctx, args.object)
    if object_id != args.object.strip():
        print(f"{args.object!r} -> {object_id}", file=err)
    masks = object_masks(ctx, object_id)
    safe = object_id.replace("#", "_").replace(" ", "_")
    out = Path(args.output) if args.output else Path(f"{Path(ctx.video.path).stem}_{safe}_masks")
    if args.format == "png":
        files = write_png(masks, out)
        print(f"{len(files)} masks of {object_id} -> {out}/ (index.json)")
    else:
        path = out if out.suffix == ".json" else out / f"{safe}.json"
        write_rle(masks, path, ctx.video.path)
        print(f"{len(masks.masks)} masks of {object_id} -> {path}")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``segment`` to the ``vidchat`` command line (handler set as ``func``)."""
    s = sub.add_parser("segment", help="export one object's masks through the video (SAM-2)")
    s.add_argument("video", help="a video, or a saved record .json with sam2 masks")
    s.add_argument("--object", required=True, help="an object id (person#3) or a phrase")
    s.add_argument("-o", "--output", default=None, help="output folder (png) or file/folder (rle)")
    s.add_argument("--format", choices=["png", "rle"], default="png")
    s.add_argument("--profile", default=None, help="profile whose detect/sam2 options are used")
    s.add_argument("--sam2-model", default=None, help="SAM-2 hub id or local checkpoint")
    s.add_argument("--sam2-config", default=None, help="SAM-2 config name or YAML path")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    s.set_defaults(func=run)


def main(argv: Sequence[str] | None = None) -> int:
    """``vidchat segment`` through the ``vidchat`` command line."""
    from vidchat.cli.main import main as cli_main

    return cli_main(argv)
