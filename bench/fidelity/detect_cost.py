"""What a detect change costs: profiles run side by side on one video, alternated, in one run.

    python -m bench.fidelity.detect_cost [--video vtest] [--repeat 2]
        [--profile bench/fidelity/detect-only-r5.yaml --profile bench/fidelity/detect-only.yaml]
        [--out bench/results/seemore/detect_cost_r6.json]

Each round runs every profile once, in turn (A B A B ...), each with an empty cache, and records
the process CPU seconds (this process's threads: the detector, the tracker, the post-processing;
not ffmpeg's decode, which is the same for all) and wall seconds, after one uncounted warm-up
round, plus the record's object labels (a cost change must not change what vtest's record
says, or say so). Medians per profile and the ratio to the first profile are printed and
written. CPU seconds are steadier than wall seconds on a shared machine; both are reported with
the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from bench.fidelity.run import RESULTS
from bench.results_io import write_results


def main(argv: Sequence[str] | None = None) -> int:
    """Run the rounds, print medians and ratios, write the JSON; returns the exit status."""
    ap = argparse.ArgumentParser(
        prog="python -m bench.fidelity.detect_cost", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--video", default="vtest", help="a sample name or a path")
    ap.add_argument("--profile", action="append", help="profiles to compare (first: the base)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=RESULTS / "seemore" / "detect_cost_r6.json")
    args = ap.parse_args(argv)
    from vidchat.kernel.cache import Cache
    from vidchat.kernel.samples import sample_path
    from vidchat.pipeline.core import Pipeline

    profiles = args.profile or [
        "bench/fidelity/detect-only-r5.yaml",
        "bench/fidelity/detect-only.yaml",
    ]
    video = Path(args.video) if Path(args.video).exists() else sample_path(args.video)
    load_before = [round(x, 2) for x in os.getloadavg()]
    runs: dict[str, list[dict]] = {p: [] for p in profiles}
    for i in range(args.repeat + 1):
        for p in profiles:
            with tempfile.TemporaryDirectory(prefix="vidchat-cost-") as tmp:
                pipeline = Pipeline(p, cache=Cache(Path(tmp)))
                c0, w0 = time.process_time(), time.perf_counter()
                ctx = pipeline.run(video)
                cpu, wall = time.process_time() - c0, time.perf_counter() - w0
            if i == 0:
                continue  # a warm-up round: imports, model loads and file caches
            runs[p].append(
                {
                    "cpu_s": round(cpu, 2),
                    "wall_s": round(wall, 2),
                    "objects": dict(Counter(o.label for o in ctx.objects)),
                }
            )
            print(f"{p}: cpu {cpu:.2f} s, wall {wall:.2f} s, {runs[p][-1]['objects']}")
    base = statistics.median(r["cpu_s"] for r in runs[profiles[0]])
    summary = {
        p: {
            "cpu_s_median": statistics.median(r["cpu_s"] for r in rs),
            "wall_s_median": statistics.median(r["wall_s"] for r in rs),
            "cpu_ratio_to_first": round(statistics.median(r["cpu_s"] for r in rs) / base, 3),
        }
        for p, rs in runs.items()
    }
    print(json.dumps(summary, indent=1))
    report = {
        "video": str(video),
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "summary": summary,
        "runs": runs,
    }
    write_results(args.out, report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
