"""``vidchat score RECORD TRUTH`` and ``vidchat fidelity-gen OUT_DIR``: the fidelity suite's CLI.

`score` compares a saved record (``vidchat textualize VIDEO -o record.json``) with the ground
truth the generator wrote beside a video, prints a table (and the full scores as JSON with
``--json FILE``, ``-`` for stdout). `fidelity-gen` writes a generated video and its truth.
The work is done by `vidchat.apps.fidelity` (run from the repository root, where ``bench/`` lives).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vidchat.kernel.errors import InputError

__all__ = ["add_commands", "run_fidelity_gen", "run_score"]


def _fidelity() -> object:
    try:
        import vidchat.apps.fidelity.generate
        import vidchat.apps.fidelity.score  # noqa: F401
    except ImportError as e:
        raise InputError(
            f"the fidelity suite is bench/fidelity: run vidchat from the repository root ({e})"
        ) from None
    import vidchat.apps.fidelity as fidelity

    return fidelity


def run_score(args: argparse.Namespace) -> int:
    """Score ``args.record`` against ``args.truth``; print the table, optionally JSON."""
    _fidelity()
    from pydantic import ValidationError

    from vidchat.apps.fidelity.score import ScoreConfig, score, table
    from vidchat.apps.fidelity.truth import Truth
    from vidchat.kernel.record import VideoContext

    for p, what in ((args.record, "record (.json)"), (args.truth, "truth (.truth.json)")):
        if not Path(p).is_file():
            raise InputError(f"no such file: {p} (expected a {what})")
    try:
        ctx = VideoContext.load(args.record)
    except (ValueError, ValidationError) as e:
        raise InputError(
            f"{args.record}: not a vidchat record ({str(e).splitlines()[0]})"
        ) from None
    try:
        truth = Truth.load(args.truth)
    except (ValueError, ValidationError) as e:
        raise InputError(
            f"{args.truth}: not a fidelity truth file ({str(e).splitlines()[0]})"
        ) from None
    cfg = ScoreConfig(budget=args.budget, cut_tolerance=args.cut_tolerance, tag_top_k=args.top_k)
    try:
        s = score(ctx, truth, cfg)
    except ValueError as e:
        raise InputError(str(e)) from None
    if args.json == "-":
        sys.stdout.write(s.model_dump_json(indent=1) + "\n")
        return 0
    print(table([s]))
    if args.json:
        Path(args.json).write_text(s.model_dump_json(indent=1) + "\n", encoding="utf-8")
    return 0


def run_fidelity_gen(args: argparse.Namespace) -> int:
    """Generate one video and its truth into ``args.out_dir``; print what was made."""
    _fidelity()
    from vidchat.apps.fidelity.generate import generate

    stem = f"{args.preset}-s{args.seed}" + ("-animals" if args.animals else "")
    truth = generate(
        args.name or stem, args.out_dir, preset=args.preset, seed=args.seed, animals=args.animals
    )
    print(f"{truth.video}\t{Path(truth.video).with_suffix('.truth.json')}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``score`` and ``fidelity-gen`` to the ``vidchat`` subcommands."""
    s = sub.add_parser("score", help="score a record against a generated video's ground truth")
    s.add_argument("record", type=Path, help="record JSON (vidchat textualize … -o FILE)")
    s.add_argument("truth", type=Path, help="ground truth JSON written by fidelity-gen")
    s.add_argument("--json", help="also write the scores as JSON to this file ('-': stdout only)")
    s.add_argument("--budget", type=int, help="render budget (default: the record's profile's)")
    s.add_argument("--cut-tolerance", type=float, default=0.6, help="seconds (default 0.6)")
    s.add_argument("--top-k", type=int, default=5, help="tags: expected label in the top k")
    s.set_defaults(func=run_score)

    g = sub.add_parser("fidelity-gen", help="generate a test video with known facts")
    g.add_argument("out_dir", type=Path)
    g.add_argument("--preset", default="clip10", choices=["clip10", "clip30", "clip60", "hour"])
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--name", help="file stem (default PRESET-sSEED[-animals])")
    g.add_argument("--animals", action="store_true", help="add cut-out animal photographs")
    g.set_defaults(func=run_fidelity_gen)
