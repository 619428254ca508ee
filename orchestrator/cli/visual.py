"""``vidchat annotate``, ``vidchat timeline`` and ``vidchat contact-sheet``: pictures of a record.

The record comes from ``--record record.json`` or from textualizing the video with ``--profile``
(through the cache, so a video already textualized is not perceived again)::

    vidchat annotate VIDEO [-o annotated.mp4] [--profile offline] [--record record.json]
    vidchat timeline RECORD_OR_VIDEO [-o timeline.png|timeline.html] [--profile …]
    vidchat contact-sheet VIDEO [-o sheet.jpg] [--profile …] [--record record.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from vidchat.kernel.errors import InputError

if TYPE_CHECKING:
    from vidchat.kernel.record import VideoContext

__all__ = ["add_commands", "run_annotate", "run_contact_sheet", "run_timeline"]


def _record_for(video: Path, record: Path | None, profile: str | None, quiet: bool) -> VideoContext:
    from vidchat.pipeline.open import open_context as load_context

    if record is not None:
        if record.suffix.lower() != ".json":
            raise InputError(f"--record expects a saved record (.json), got {record}")
        return load_context(record)
    return load_context(video, profile, progress=not quiet)


def _default_output(source: Path, suffix: str) -> Path:
    return Path.cwd() / f"{source.stem}{suffix}"


def run_annotate(args: argparse.Namespace) -> int:
    """Handler of ``vidchat annotate``."""
    from vidchat.apps.visual import annotate, check_annotate_output
    from vidchat.kernel.outputs import check_output_path

    video = Path(args.video).expanduser()
    out = args.output or _default_output(video, ".annotated.mp4")
    check_annotate_output(out)  # before any work: a bad -o costs nothing
    check_output_path(out, "-o")
    ctx = _record_for(video, args.record, args.profile, args.quiet)
    r = annotate(video, ctx, out, max_side=args.max_side)
    if str(r.path) == "-":
        return 0  # the video went to stdout
    if not args.quiet:
        print(
            f"wrote {r.path}: {r.frames} frames {r.width}x{r.height} at {r.fps:g} fps, "
            f"{r.boxes_drawn} boxes, audio {'kept' if r.has_audio else 'none in the source'}",
            file=sys.stderr,
        )
    print(r.path)
    return 0


def run_timeline(args: argparse.Namespace) -> int:
    """Handler of ``vidchat timeline``."""
    from vidchat.apps.visual import timeline, timeline_format
    from vidchat.kernel.outputs import check_output_path
    from vidchat.pipeline.open import open_context as load_context

    src = Path(args.record).expanduser()
    out = args.output or _default_output(src, ".timeline.png")
    timeline_format(out)  # before any work
    check_output_path(out, "-o")
    ctx = load_context(src, args.profile, progress=not args.quiet)
    path = timeline(ctx, out)
    if str(out) != "-":
        print(path)
    return 0


def run_contact_sheet(args: argparse.Namespace) -> int:
    """Handler of ``vidchat contact-sheet``."""
    from vidchat.apps.visual import contact_sheet, sheet_format
    from vidchat.kernel.outputs import check_output_path

    video = Path(args.video).expanduser()
    out = args.output or _default_output(video, ".sheet.jpg")
    sheet_format(out)  # before any work
    check_output_path(out, "-o")
    ctx = _record_for(video, args.record, args.profile, args.quiet)
    r = contact_sheet(video, ctx, out, columns=args.columns, rows=args.rows)
    if str(out) == "-":
        return 0
    if not args.quiet:
        print(f"wrote {r.path}: {len(r.times)} keyframes in {r.columns}x{r.rows}", file=sys.stderr)
    print(r.path)
    return 0


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return n


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``annotate``, ``timeline`` and ``contact-sheet`` to the ``vidchat`` command line."""
    a = sub.add_parser(
        "annotate",
        help="the video with the record drawn on it (boxes, ids, subtitles, OCR, shot cuts)",
    )
    a.add_argument("video", type=Path)
    a.add_argument("-o", "--output", type=Path,
                   help="output .mp4 (default VIDEO.annotated.mp4; '-': stdout)")
    a.add_argument("--profile", help="profile used to textualize the video (cached)")
    a.add_argument("--record", type=Path, help="use this saved record instead of textualizing")
    a.add_argument("--max-side", type=_positive, help="scale the output down to this many pixels")
    a.add_argument("-q", "--quiet", action="store_true", help="no progress or summary")
    a.set_defaults(func=run_annotate)

    t = sub.add_parser("timeline", help="plot the record over time (PNG or interactive HTML)")
    t.add_argument("record", type=Path, help="a saved record (.json) or a video")
    t.add_argument("-o", "--output", type=Path, help="timeline.png or timeline.html")
    t.add_argument("--profile", help="profile used when RECORD is a video")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress")
    t.set_defaults(func=run_timeline)

    c = sub.add_parser("contact-sheet", help="keyframes in a grid with times and objects")
    c.add_argument("video", type=Path)
    c.add_argument("-o", "--output", type=Path, help=".jpg or .png (default VIDEO.sheet.jpg)")
    c.add_argument("--profile", help="profile used to textualize the video (cached)")
    c.add_argument("--record", type=Path, help="use this saved record instead of textualizing")
    c.add_argument("--columns", type=_positive, default=4)
    c.add_argument("--rows", type=_positive, default=4)
    c.add_argument("-q", "--quiet", action="store_true", help="no progress or summary")
    c.set_defaults(func=run_contact_sheet)
