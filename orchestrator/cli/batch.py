"""``vidchat batch``: textualize many videos into a folder (see `vidchat.apps.batch`).

    vidchat batch videos/ more.mp4 list.csv -o out/ --workers 2 --timeout-per-video 600
    vidchat batch videos/ -o out/ --resume                  # after a crash or Ctrl-C
    vidchat batch videos/ -o out/ --engine ray --ray-address ray://head:10001

Exit status: 0 when every video is ok, 1 when any failed, timed out or lost a perceiver
(``summary.json`` and ``manifest.jsonl`` in the output folder say which), 2 for a usage error
(one line: ``vidchat: error: …``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["add_commands", "main", "run"]


def add_commands(sub: Any) -> None:
    """Add the ``batch`` subcommand to the CLI's subparsers."""
    b = sub.add_parser("batch", help="textualize many videos into a folder (resumable)")
    b.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="video files, folders (searched recursively) or .csv/.jsonl manifests "
                        "with 'id' and 'path'")  # fmt: skip
    b.add_argument("-o", "--output", required=True, type=Path, metavar="OUTDIR",
                   help="folder for <id>.json, <id>.txt, manifest.jsonl, summary.json")  # fmt: skip
    b.add_argument("--profile", help="profile name (offline, full) or YAML path")
    b.add_argument("--workers", type=int, default=1, help="worker processes / Ray actors")
    b.add_argument("--engine", choices=["local", "ray"], default="local")
    b.add_argument("--ray-address", help="an existing Ray cluster (default: start one here)")
    b.add_argument("--resume", action="store_true",
                   help="skip videos whose outputs exist and match their input hash")  # fmt: skip
    b.add_argument("--timeout-per-video", type=float, metavar="S",
                   help="kill and replace a worker that spends longer on one video")  # fmt: skip
    b.add_argument("--no-cache", action="store_true", help="recompute every perceiver")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    b.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the ``batch`` command from parsed arguments; returns the exit status."""
    from vidchat.apps.batch import run_batch

    if args.ray_address and args.engine != "ray":
        from vidchat.apps.batch import BatchError

        raise BatchError("--ray-address needs --engine ray")
    s = run_batch(
        args.inputs, args.output, profile=args.profile, workers=args.workers,
        engine=args.engine, ray_address=args.ray_address, resume=args.resume,
        timeout_per_video=args.timeout_per_video, cache=not args.no_cache,
        progress=not args.quiet,
    )  # fmt: skip
    if not args.quiet:
        parts = [f"{s.ok} ok"]
        parts += [f"{n} {k}" for k, n in (("degraded", s.degraded), ("failed", s.failed),
                                          ("timeout", s.timeout)) if n]  # fmt: skip
        if s.skipped or s.recovered:
            parts.append(f"{s.skipped + s.recovered} already done")
        print(f"vidchat batch: {s.total} videos: {', '.join(parts)} in {s.seconds:.1f} s "
              f"({s.videos_per_minute:g} videos/min); {args.output}", file=sys.stderr)  # fmt: skip
        for vid, why in list(s.not_ok.items())[:20]:
            print(f"  {vid}: {why}", file=sys.stderr)
        if len(s.not_ok) > 20:
            print(f"  … {len(s.not_ok) - 20} more in {args.output / 'summary.json'}",
                  file=sys.stderr)  # fmt: skip
    return s.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m vidchat.cli.batch batch …``: the same command, until cli.py wires it."""
    import logging

    from vidchat.kernel.errors import VidchatError

    parser = argparse.ArgumentParser(prog="vidchat")
    parser.add_argument("--debug", action="store_true")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(name)s: %(message)s")  # fmt: skip
    try:
        return int(args.func(args))
    except VidchatError as e:
        print(f"vidchat: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("vidchat: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
