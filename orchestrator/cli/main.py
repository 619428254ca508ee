"""The ``vidchat`` command line.

Every user error (bad input, bad profile, missing model) ends as one line on stderr,
``vidchat: error: …``, and exit status 2; an interrupted run exits 130. Tracebacks are shown only
with ``--debug``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vidchat.kernel.errors import VidchatError

if TYPE_CHECKING:
    from vidchat.kernel.record import Provenance, VideoContext
    from vidchat.pipeline.profiles import Profile

# Modules that add their own subcommands (each has `add_commands(subparsers)`).
COMMAND_MODULES = (
    "vidchat.cli.chat",
    "vidchat.cli.score",
    "vidchat.cli.visual",
    "vidchat.cli.serve",
    "vidchat.cli.models",
    "vidchat.cli.segment",
    "vidchat.cli.instruct",
    "vidchat.cli.batch",
    "vidchat.cli.zoom",
    "vidchat.cli.mcp",
)


def _cmd_textualize(args: argparse.Namespace) -> int:
    from vidchat.kernel.outputs import check_output_path, write_output
    from vidchat.kernel.video import check_video_file
    from vidchat.pipeline.core import Pipeline
    from vidchat.pipeline.profiles import load_profile
    from vidchat.text.render import render

    # Before minutes of computing: the video is a readable file, the output can be written.
    check_video_file(args.video)
    target = check_output_path(args.output, "-o") if args.output else None
    profile = _with_audio_track(load_profile(args.profile), args.audio_track)
    pipeline = Pipeline(profile, cache=not args.no_cache, strict=args.strict,
                        progress=not args.quiet)  # fmt: skip
    ctx = pipeline.run(args.video)
    if target is not None:
        write_output(target, ctx.to_json() + ("\n" if target.kind != "file" else ""))
    if target is not None and target.kind == "stdout":
        pass  # the record is what goes to stdout (`-o -`): nothing else is printed there
    elif args.format == "json":
        sys.stdout.write(ctx.to_json() + "\n")
    else:
        budget = args.budget or profile.render.budget_tokens
        r = render(ctx, budget_tokens=budget, window_s=profile.render.window_s)
        sys.stdout.write(r.text + "\n")
        if not args.quiet:
            print(f"[{r.tokens} tokens of {budget}; record: {args.output or 'not saved'}]",
                  file=sys.stderr)  # fmt: skip
    if not args.quiet:
        for line in provenance_warnings(ctx.provenance):
            print(line, file=sys.stderr)
    _warn_record(ctx, args.quiet)
    return 0


def _with_audio_track(profile: Profile, track: int | None) -> Profile:
    """The profile with ``--audio-track`` applied (a copy: loaded profiles may be shared)."""
    if track is None:
        return profile
    if track < 0:
        from vidchat.kernel.errors import ConfigError

        raise ConfigError(f"--audio-track expects 0 or more (0 = the first track), got {track}")
    sampling = profile.sampling.model_copy(update={"audio_track": track})
    return profile.model_copy(update={"sampling": sampling})


def _warn_record(ctx: VideoContext, quiet: bool) -> None:
    """What a user must know about the input: damaged data, which of several audio tracks."""
    if quiet:
        return
    for w in sorted({w for p in ctx.provenance for w in p.warnings}):
        print(f"vidchat: warning: {w}", file=sys.stderr)
    if ctx.video.audio_tracks > 1 and ctx.video.audio_note:
        print(f"vidchat: note: {ctx.video.audio_note}", file=sys.stderr)


def provenance_warnings(provenance: Sequence[Provenance]) -> list[str]:
    """One stderr line for the perceivers that failed and one for those skipped because they
    cannot run here (the record lacks their part); a skip for lack of input is not warned of."""
    from vidchat.kernel.record import UNAVAILABLE

    def why(p: Provenance) -> str:
        # Libraries' messages run to several lines; the record's provenance keeps them whole.
        text = (p.reason or "no reason given").removeprefix(UNAVAILABLE).strip()
        first = text.splitlines()[0] if text else text
        return first if len(first) <= 100 else first[:99] + "…"

    failed = [f"{p.name} ({why(p)})" for p in provenance if p.status == "failed"]
    skipped = [f"{p.name} ({why(p)})" for p in provenance if p.status == "skipped" and p.degraded]
    lines = []
    if failed:
        lines.append(f"vidchat: warning: perceivers failed: {'; '.join(failed)}")
    if skipped:
        lines.append(f"vidchat: warning: perceivers skipped, cannot run here: {'; '.join(skipped)}")
    return lines


def _cmd_perceivers(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from vidchat.perceivers import available_perceivers, get_perceiver

    options: dict[str, dict] = {}
    if args.profile:
        from vidchat.pipeline.profiles import load_profile

        options = {k: v or {} for k, v in load_profile(args.profile).perceivers.items()}
    table = Table("perceiver", "version", "inputs", "can run here", "why not / model")
    for name in sorted(available_perceivers()):
        try:
            cls = get_perceiver(name)
            p = cls(options.get(name))
            avail = p.can_run_here()
            ok = "yes" if avail.ok else "no"
            detail = avail.reason or _model_note(p)
            table.add_row(name, cls.version, ",".join(sorted(cls.inputs)), ok, detail or "")
        except Exception as e:
            table.add_row(name, "?", "?", "no", f"plugin failed to load: {e}")
    Console(width=args.width).print(table)
    return 0


def _model_note(p: object) -> str:
    """Where the perceiver's model comes from: a shipped package, a local path or the hub."""
    from vidchat.kernel.models import resolve

    name = getattr(getattr(p, "options", None), "model", None)
    if not isinstance(name, str):
        return getattr(p, "model_identity", lambda: "")() or ""
    m = resolve(name)
    where = {"package": "shipped package", "local": "local path", "hub": "hub"}[m.origin]
    return f"{name} ({where}{': ' + str(m.path) if m.path and m.origin == 'local' else ''})"


def _cmd_profiles(args: argparse.Namespace) -> int:
    from vidchat.pipeline.profiles import builtin_profiles, load_profile

    for name in builtin_profiles():
        p = load_profile(name)
        print(f"{name:<10} {', '.join(p.perceivers)} — {p.description}")
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    from vidchat.kernel.samples import sample_path

    print(sample_path(args.name))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidchat", description="Ask questions about a video: perceive, textualize, chat."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("textualize", help="turn a video into its record and text rendering")
    t.add_argument("video", type=Path)
    t.add_argument("--profile", help="profile name (offline, full) or YAML path")
    t.add_argument("-o", "--output", type=Path,
                   help="write the record (JSON) here ('-' for standard output)")  # fmt: skip
    t.add_argument("--audio-track", type=int, default=None, metavar="N",
                   help="audio track to use (0 = first; default: chosen, see the record)")
    t.add_argument("--format", choices=["text", "json"], default="text",
                   help="what to print: the text rendering or the record JSON")  # fmt: skip
    t.add_argument("--budget", type=int, help="token budget of the text rendering")
    t.add_argument("--no-cache", action="store_true", help="recompute every perceiver")
    t.add_argument("--strict", action="store_true", help="fail when any perceiver fails")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress or notes on stderr")
    t.set_defaults(func=_cmd_textualize)

    p = sub.add_parser("perceivers", help="list perceivers and whether each can run here")
    p.add_argument("--profile", help="check with this profile's options and models")
    p.add_argument("--width", type=int, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=_cmd_perceivers)

    pr = sub.add_parser("profiles", help="list the built-in profiles")
    pr.set_defaults(func=_cmd_profiles)

    s = sub.add_parser("sample", help="print the path of a shipped sample video")
    s.add_argument("name", help="bigbuckbunny, bikes, carphone, vtest, megamind, tree")
    s.set_defaults(func=_cmd_sample)

    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(name)s: %(message)s")  # fmt: skip
    try:
        return int(args.func(args) or 0)
    except VidchatError as e:
        if args.debug:
            raise
        print(f"vidchat: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("vidchat: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
