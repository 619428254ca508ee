"""``vidchat instruct`` (instruction data from records) and ``vidchat eval`` (text path vs
embed path vs the blind baseline vs chance on held-out multiple-choice questions).

Wired into ``orchestrator/cli/main.py`` beside the chat commands::

    from vidchat.cli import instruct as instruct_cli
    instruct_cli.add_commands(sub)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from vidchat.kernel.errors import InputError

__all__ = ["add_commands", "run_eval", "run_instruct"]


def run_instruct(args: argparse.Namespace) -> int:
    """Build instruction data from records (or videos, textualized through the cache)."""
    from vidchat.apps.instruct import build_dataset, write_jsonl
    from vidchat.kernel.outputs import check_output_path
    from vidchat.pipeline.open import open_context as load_context

    check_output_path(args.output, "-o")  # before textualizing anything
    contexts, paths = [], []
    for target in args.records:
        contexts.append(load_context(target, args.profile, progress=not args.quiet))
        paths.append(str(Path(target).resolve()) if target.endswith(".json") else None)
    llm = None
    if not args.no_llm:
        from vidchat.llm.config import resolve_llm_config
        from vidchat.llm.factory import make_chat_model
        from vidchat.pipeline.profiles import load_profile

        llm = make_chat_model(resolve_llm_config(load_profile(args.profile).llm, args.llm))
    data = build_dataset(
        contexts,
        record_paths=paths,
        llm=llm,
        seed=args.seed,
        n_choices=args.choices,
        max_per_type=args.max_per_type,
    )
    out = write_jsonl(data, args.output)
    counts: dict[str, int] = {}
    for r in data:
        counts[r.split] = counts.get(r.split, 0) + len(r.QA)
    by_split = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(f"wrote {out}: {len(data)} video(s), {sum(counts.values())} QA ({by_split})")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    """Score the chosen path(s), the blind baseline (the text path's LLM with the question and
    options only) and chance on the split's multiple-choice questions."""
    from vidchat.kernel.outputs import check_output_path

    if args.output:
        check_output_path(args.output, "-o")  # before minutes of answering
    if args.format != "vidchat":  # a public benchmark's question file (vidchat.apps.benchmarks)
        from vidchat.apps.benchmarks import run_eval_benchmark

        return run_eval_benchmark(args)
    from vidchat.apps.evaluate import (
        chance_report,
        comparison_table,
        evaluate_blind,
        evaluate_embed,
        evaluate_text,
        mc_items,
    )

    items = mc_items(args.data, None if args.split == "all" else args.split)
    if args.limit:
        items = items[: args.limit]
    paths = ["text", "embed"] if args.path == "both" else [args.path]
    if "embed" in paths and not args.checkpoint:
        raise InputError("--path embed needs --checkpoint (a checkpoint.pt from training)")

    def progress(n: int, total: int) -> None:
        if not args.quiet:
            print(f"\r{n}/{total}", end="", file=sys.stderr, flush=True)

    from vidchat.llm.config import resolve_llm_config
    from vidchat.pipeline.profiles import load_profile

    config = resolve_llm_config(load_profile(args.profile).llm, args.llm)
    reports = []
    if "text" in paths:
        reports.append(evaluate_text(items, llm=config, progress=progress))
    if "embed" in paths:
        reports.append(evaluate_embed(items, args.checkpoint, args.device, progress=progress))
    # Every table carries the blind baseline: the margin over it is what a path has learned
    # from the video rather than from the wording of the questions.
    reports.append(evaluate_blind(items, llm=config, progress=progress))
    reports.append(chance_report(items))
    if not args.quiet:
        print(file=sys.stderr)
    print(comparison_table(reports))
    if args.output:
        from vidchat.kernel.record import atomic_write_text

        atomic_write_text(
            Path(args.output), json.dumps([r.model_dump() for r in reports], indent=1)
        )
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``instruct`` and ``eval`` to the ``vidchat`` command line (handlers set as ``func``)."""
    i = sub.add_parser("instruct", help="make instruction data (JSONL) from records or videos")
    i.add_argument("records", nargs="+", help="saved records (.json) or videos")
    i.add_argument("-o", "--output", required=True, help="the JSONL file to write")
    i.add_argument("--profile", default=None, help="profile for videos and the LLM settings")
    i.add_argument("--llm", default=None, help="LLM for the written data (as in vidchat chat)")
    i.add_argument("--no-llm", action="store_true", help="grounded questions only (no LLM)")
    i.add_argument("--seed", type=int, default=0)
    i.add_argument("--choices", type=int, default=4, help="options per multiple-choice question")
    i.add_argument("--max-per-type", type=int, default=4, help="open questions per type per video")
    i.add_argument("-q", "--quiet", action="store_true")
    i.set_defaults(func=run_instruct)

    e = sub.add_parser(
        "eval", help="multiple-choice accuracy: text path, embed path, blind baseline, chance"
    )
    e.add_argument(
        "data",
        help="instruction JSONL from vidchat instruct, or a benchmark's "
        "question file (see --format)",
    )
    from vidchat.apps.benchmarks import add_eval_arguments

    add_eval_arguments(e)
    e.add_argument("--path", choices=["text", "embed", "both"], default="text")
    e.add_argument("--checkpoint", default=None, help="embed-model checkpoint (for --path embed)")
    e.add_argument("--split", default="test", help="train, val, test or all (default test)")
    e.add_argument("--limit", type=int, default=0, help="at most this many questions")
    e.add_argument("--profile", default=None)
    e.add_argument(
        "--llm", default=None, help="LLM of the text path and blind baseline (as in vidchat chat)"
    )
    e.add_argument("--device", default="cpu", help="device for the embed path")
    e.add_argument("-o", "--output", default=None, help="also write the reports as JSON")
    e.add_argument("-q", "--quiet", action="store_true")
    e.set_defaults(func=run_eval)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``instruct``/``eval`` on their own (before the lead wires them into ``vidchat``)."""
    from vidchat.kernel.errors import VidchatError

    parser = argparse.ArgumentParser(prog="vidchat")
    sub = parser.add_subparsers(dest="command", required=True)
    add_commands(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except VidchatError as e:
        print(f"vidchat: error: {e}", file=sys.stderr)
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main())
