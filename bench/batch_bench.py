"""Batch benchmark: videos per minute with 1 and 2 workers on the local engine and on a local Ray
instance, on the same set of real and synthetic videos; Ray's overhead as a ratio of its wall
time to the local engine's at the same worker count.

    python bench/batch_bench.py [--profile offline] [--workers 1 2] [--engines local ray]

Every configuration runs the whole job with no perceiver cache into a fresh folder, worker
start-up and model loading included (that is what a job costs), after one untimed warm-up
textualization (page cache). Prints a table and writes
bench/results/batch.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from bench.results_io import write_results

RESULTS = Path(__file__).parent / "results"
REAL = ["bigbuckbunny", "bikes", "megamind"]


def make_videos(dest: Path) -> list[Path]:
    """The real sample videos plus synthetic ones from the test generators (made with ffmpeg)."""
    from vidchat.kernel.samples import sample_path
    from vidchat.testing import videos as gen

    vids = [Path(sample_path(n)) for n in REAL]
    for name in ("shot_cuts", "vfr", "no_audio", "rotated_90", "odd_size", "color_pattern"):
        vids.append(gen.AWKWARD[name](dest / name))
    return vids


def run_config(vids: list[Path], profile: str, engine: str, workers: int, root: Path) -> dict:
    from vidchat.apps.batch import run_batch

    out = root / f"{engine}-{workers}"
    t0 = time.perf_counter()
    s = run_batch(vids, out, profile=profile, engine=engine, workers=workers, cache=False)  # type: ignore[arg-type]
    wall = time.perf_counter() - t0
    records = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")
               if p.name not in ("summary.json",)}  # fmt: skip
    return {
        "engine": engine,
        "workers": workers,
        "videos": len(vids),
        "ok": s.ok,
        "not_ok": s.not_ok,
        "seconds": round(wall, 2),
        "videos_per_minute": round(len(vids) / wall * 60, 2),
        "records": records,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="offline")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--engines", nargs="+", default=["local", "ray"], choices=["local", "ray"])
    args = ap.parse_args(argv)
    from vidchat.apps.batch import comparable_record
    from vidchat.pipeline.profiles import load_profile

    rows = []
    with tempfile.TemporaryDirectory(prefix="vidchat-batch-bench-") as tmp:
        root = Path(tmp)
        vids = make_videos(root / "videos")
        # Warm-up (untimed): the model files and videos into the page cache, so the first timed
        # configuration does not pay for cold disk reads the others skip.
        from vidchat.pipeline.core import Pipeline

        for v in vids[:1]:
            Pipeline(args.profile, cache=False).run(v)
        for workers in args.workers:
            for engine in args.engines:
                r = run_config(vids, args.profile, engine, workers, root)
                print(f"{engine:<6} {workers} workers: {r['seconds']:7.1f} s  "
                      f"{r['videos_per_minute']:6.1f} videos/min  ok {r['ok']}/{r['videos']}",
                      file=sys.stderr, flush=True)  # fmt: skip
                rows.append(r)
    # Same inputs, same outputs: every engine/worker count must give the same records.
    base = {k: comparable_record(v) for k, v in rows[0]["records"].items()}
    same = all({k: comparable_record(v) for k, v in r["records"].items()} == base for r in rows)
    for r in rows:
        del r["records"]
    by = {(r["engine"], r["workers"]): r for r in rows}
    overhead = {
        str(w): round(by[("ray", w)]["seconds"] / by[("local", w)]["seconds"], 3)
        for w in args.workers
        if ("ray", w) in by and ("local", w) in by
    }
    print(f"\n{'engine':<8}{'workers':>8}{'seconds':>10}{'videos/min':>12}{'ok':>6}")
    for r in rows:
        print(f"{r['engine']:<8}{r['workers']:>8}{r['seconds']:>10.1f}"
              f"{r['videos_per_minute']:>12.1f}{r['ok']:>4}/{r['videos']}")  # fmt: skip
    for w, ratio in overhead.items():
        print(f"Ray / local wall time, {w} worker(s): {ratio:.2f}x")
    print(f"records identical across engines and worker counts: {same}")
    result = {
        "profile": args.profile,
        "perceivers": list(load_profile(args.profile).perceivers),
        "videos": [str(v.name) for v in make_videos_names()],
        "runs": rows,
        "ray_overhead_ratio": overhead,
        "records_identical": same,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    write_results(RESULTS / "batch.json", result)
    print(f"wrote {RESULTS / 'batch.json'}")
    return 0 if same else 1


def make_videos_names() -> list[Path]:
    """Names of the benchmark's videos (for the results file)."""
    synthetic = ["shot_cuts", "vfr", "no_audio", "rotated_90", "odd_size", "color_pattern"]
    return [Path(n) for n in REAL + synthetic]


if __name__ == "__main__":
    sys.exit(main())
