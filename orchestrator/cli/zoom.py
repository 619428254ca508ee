"""``/zoom`` in the chat REPL and ``vidchat zoom`` on the command line (see `pipeline.zoom`).

In the REPL::

    /zoom 00:12 00:22                 the profile's frame perceivers, 10 fps
    /zoom 12 22 detect,ocr 15         chosen perceivers, 15 fps

The session then answers from the record with the zoom merged in. On the command line::

    vidchat zoom video.mp4 12 22 --perceivers detect,ocr --fps 10 -o record.json
"""

from __future__ import annotations

import argparse
import sys
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from vidchat.kernel.errors import InputError
from vidchat.kernel.timecode import parse_timecode

if TYPE_CHECKING:
    from vidchat.conversation.session import ChatSession
    from vidchat.pipeline.zoom import Zoomer, ZoomResult

__all__ = ["ZOOM_USAGE", "add_commands", "parse_zoom_args", "repl_zoom"]

ZOOM_USAGE = "/zoom START END [PERCEIVERS] [FPS]"

# One zoomer per chat session: its perceivers stay loaded between zooms.
_zoomers: weakref.WeakKeyDictionary[ChatSession, Zoomer] = weakref.WeakKeyDictionary()


def parse_zoom_args(args: list[str]) -> tuple[float, float, list[str] | None, float | None]:
    """START END [PERCEIVERS] [FPS] → (start, end, perceivers or None, fps or None).

    Perceivers are comma- or space-separated names; a plain number is the rate."""
    if len(args) < 2:
        raise InputError(f"usage: {ZOOM_USAGE}, e.g. /zoom 00:12 00:22 detect,ocr 10")
    # As typed: 1:90 is 150 s (the zoom checks the window against the video itself).
    start, end = (parse_timecode(a, strict=False) for a in args[:2])
    names: list[str] = []
    fps: float | None = None
    for word in args[2:]:
        try:
            value = float(word)
        except ValueError:
            names += [n for n in word.replace(",", " ").split() if n]
            continue
        if fps is not None:
            raise InputError(f"/zoom takes one rate, got {fps:g} and {word}")
        fps = value
    return start, end, names or None, fps


def repl_zoom(session: ChatSession, args: list[str], say: Callable[[str], None]) -> ZoomResult:
    """Run ``/zoom`` for a chat session: zoom, print what it added, answer from the new record."""
    from vidchat.pipeline.zoom import Zoomer

    start, end, names, fps = parse_zoom_args(args)
    zoomer = _zoomers.get(session)
    if zoomer is None:
        zoomer = _zoomers[session] = Zoomer(session.profile)
    say(f"zooming {args[0]}–{args[1]} (decoding and perceiving the window)…")
    result = zoomer.zoom(session.ctx, start, end, names, fps)
    session.update_record(result.context)
    say(result.summary())
    shown = [w for w in session.rendered.windows if w.end > start and w.start < end]
    for w in shown:
        say(w.text)
    return result


def _cmd_zoom(args: argparse.Namespace) -> int:
    from vidchat.pipeline.zoom import Zoomer

    names = [n for n in (args.perceivers or "").replace(",", " ").split() if n] or None
    result = Zoomer(args.profile, cache=not args.no_cache).zoom(
        args.target,
        parse_timecode(args.start, strict=False),
        parse_timecode(args.end, strict=False),
        names,
        args.fps,
    )
    if args.output:
        result.context.save(args.output)
    if args.format == "json":
        sys.stdout.write(result.run.model_dump_json(indent=1) + "\n")
    else:
        sys.stdout.write(result.summary() + "\n")
        for e in result.new_events:
            sys.stdout.write(f"  + {e.kind} {e.start:.1f}–{e.end:.1f} s: {e.text!r}\n")
        for oid in result.run.objects_added:
            o = result.context.object(oid)
            sys.stdout.write(f"  + {oid} {o.first_seen:.1f}–{o.last_seen:.1f} s\n")
        for s in result.new_speech:
            sys.stdout.write(f"  + speech {s.start:.1f}–{s.end:.1f} s: {s.text!r}\n")
    if not args.output and not args.quiet:
        print("[record not saved: add -o record.json to keep the zoom]", file=sys.stderr)
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``zoom`` to the ``vidchat`` command line."""
    z = sub.add_parser("zoom", help="look closer at a time window (re-run perceivers there)")
    z.add_argument("target", help="a video file or a saved record (.json)")
    z.add_argument("start", help="window start (mm:ss or seconds)")
    z.add_argument("end", help="window end (mm:ss or seconds)")
    z.add_argument("--perceivers", help="comma-separated (default: the profile's frame ones)")
    z.add_argument("--fps", type=float, help="frames a second in the window (default 10)")
    z.add_argument("--profile", help="profile for the perceivers' options (default: the record's)")
    z.add_argument("-o", "--output", help="write the record with the zoom merged (JSON)")
    z.add_argument("--format", choices=["text", "json"], default="text")
    z.add_argument("--no-cache", action="store_true", help="perceive the window again")
    z.add_argument("-q", "--quiet", action="store_true")
    z.set_defaults(func=_cmd_zoom)
