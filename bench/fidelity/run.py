"""Fidelity benchmark: generate a small suite, textualize it, score it, print and save the table.

    python -m bench.fidelity.run [--profile offline] [--suite clip10:0,clip30:1,clip60:2]
                                 [--out bench/results/fidelity.json] [--keep DIR] [--no-animals]

Each video is generated with a fixed seed, textualized with the profile (perceiver cache in a
temporary folder, so every run measures the perceivers, not an old cache), scored against its
truth, and reported in one table with the targets: speech WER <= 0.10, on-screen text recall
>= 0.9, shot cut F1 >= 0.95, facts kept in the rendered text >= 0.95 at the default budget,
person IDF1 >= 0.85, vehicle and animal recall >= 0.8. The clips carry the cut-out animal
photographs (``PRESET-sSEED-animals``) unless ``--no-animals`` (the suite of rounds 1-4).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from bench.results_io import write_results
from vidchat.apps.fidelity.generate import PRESETS, GeneratorError, generate
from vidchat.apps.fidelity.score import Score, ScoreConfig, score, table
from vidchat.kernel.errors import InputError

if TYPE_CHECKING:
    from vidchat.pipeline.profiles import Profile

RESULTS = Path(__file__).resolve().parent.parent / "results"
DEFAULT_SUITE = "clip10:0,clip30:1,clip60:2"


def parse_suite(text: str) -> list[tuple[str, int]]:
    """``"clip10:0,clip30:1"`` → [("clip10", 0), ("clip30", 1)]; GeneratorError on a bad item."""
    out = []
    for item in filter(None, (x.strip() for x in text.split(","))):
        preset, _, seed = item.partition(":")
        if preset not in PRESETS or not (seed or "0").isdigit():
            raise GeneratorError(
                f"suite item {item!r}: expected PRESET:SEED with PRESET one of {', '.join(PRESETS)}"
            )
        out.append((preset, int(seed or 0)))
    if not out:
        raise GeneratorError(f"empty suite {text!r} (expected e.g. {DEFAULT_SUITE})")
    return out


def with_perceivers(profile: str | Profile, extra: Sequence[str]) -> Profile:
    """The profile with `extra` perceivers added at their default options (e.g. ``ocr``)."""
    from vidchat.pipeline.profiles import load_profile

    p = load_profile(profile)
    if not extra:
        return p
    added = {name: None for name in extra if name not in p.perceivers}
    return p.model_copy(
        update={"perceivers": {**p.perceivers, **added}, "name": "+".join([p.name, *added])}
    )


def run_suite(
    suite: list[tuple[str, int]],
    profile: str | Profile = "offline",
    work_dir: Path | None = None,
    cfg: ScoreConfig | None = None,
    tight_budget: int | None = None,
    animals: bool = True,
) -> tuple[list[Score], list[Score], dict]:
    """Generate, textualize and score every (preset, seed).

    Returns the scores at the configured budget, the scores at `tight_budget` (empty when None;
    only rendering differs: the suite's short videos fit the default budget whole, so a tight
    budget is what shows rendering's dropping at work), and timings per video.
    """
    from vidchat.kernel.cache import Cache
    from vidchat.pipeline.core import Pipeline

    cfg = cfg or ScoreConfig()
    with tempfile.TemporaryDirectory(prefix="vidchat-fidelity-") as tmp:
        work = Path(work_dir or tmp)
        pipeline = Pipeline(profile, cache=Cache(Path(tmp) / "cache"))
        scores, tight, timings = [], [], {}
        for preset, seed in suite:
            name = f"{preset}-s{seed}" + ("-animals" if animals else "")
            t0 = time.perf_counter()
            truth = generate(name, work, preset=preset, seed=seed, animals=animals)
            t1 = time.perf_counter()
            ctx = pipeline.run(truth.video)
            t2 = time.perf_counter()
            ctx.save(work / f"{name}.record.json")
            scores.append(score(ctx, truth, cfg))
            if tight_budget:
                tight.append(score(ctx, truth, replace(cfg, budget=tight_budget)))
            timings[name] = {
                "generate_s": round(t1 - t0, 2),
                "textualize_s": round(t2 - t1, 2),
                "rtf": round((t2 - t1) / truth.duration, 3),
            }
    return scores, tight, timings


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite, print the tables, write the JSON report; returns the exit status."""
    ap = argparse.ArgumentParser(
        prog="python -m bench.fidelity.run", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--profile", default="offline")
    ap.add_argument(
        "--add",
        action="append",
        default=[],
        metavar="PERCEIVER",
        help="add a perceiver to the profile at its default options (repeatable; e.g. ocr)",
    )
    ap.add_argument(
        "--suite", default=DEFAULT_SUITE, help=f"PRESET:SEED,… (default {DEFAULT_SUITE})"
    )
    ap.add_argument("--out", type=Path, default=RESULTS / "fidelity.json")
    ap.add_argument("--keep", type=Path, help="keep videos, truths and records in this folder")
    ap.add_argument("--budget", type=int, help="render budget (default: the record's profile's)")
    ap.add_argument(
        "--tight-budget", type=int, default=400, help="second render budget (0: skip; default 400)"
    )
    ap.add_argument(
        "--animals",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="clips with the cut-out animal photographs (default; --no-animals: without)",
    )
    args = ap.parse_args(argv)
    try:
        suite = parse_suite(args.suite)
    except GeneratorError as e:
        ap.error(str(e))  # one line and exit status 2, not a traceback
    profile = with_perceivers(args.profile, args.add)
    t0 = time.perf_counter()
    try:
        scores, tight, timings = run_suite(
            suite,
            profile,
            args.keep,
            ScoreConfig(budget=args.budget),
            args.tight_budget or None,
            animals=args.animals,
        )
    except InputError as e:  # a missing tool or photograph: one line, not a traceback
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"profile: {profile.name} ({', '.join(profile.perceivers)})")
    print(table(scores))
    if tight:
        print(f"\nrendering at a tight budget of {args.tight_budget} tokens:")
        print(table(tight, only=("facts", "tokens")))
    for s in [*scores, *tight]:
        if s.render.missing:
            missing = "; ".join(s.render.missing)
            print(f"{s.video} @ {s.render.budget}: in the record, not rendered: {missing}")
    report = {
        "profile": profile.name,
        "perceivers": list(profile.perceivers),
        "animals": args.animals,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "machine": f"{platform.machine()} {os.cpu_count()} cpu",
        "seconds": round(time.perf_counter() - t0, 1),
        "timings": timings,
        "scores": [s.model_dump(mode="json") for s in scores],
        "tight_budget": args.tight_budget or None,
        "tight_render": [s.render.model_dump(mode="json") for s in tight],
    }
    write_results(args.out, report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
