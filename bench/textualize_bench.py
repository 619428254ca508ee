"""Textualize benchmark: real-time factor, seconds per perceiver, peak memory, shared decode versus
a naive baseline (every perceiver decodes the video on its own), and a warm-cache re-run — all
measured side by side in one run, because this machine is noisy.

    python bench/textualize_bench.py [--video vtest] [--profile offline] [--repeat 1]

Prints a table and writes bench/results/textualize.json. Targets (2-core CPU): real-time factor
at most 0.5; shared decode at least 1.5x faster than the naive baseline; warm re-run at most 2% of
the cold time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import threading
import time
from pathlib import Path

import psutil

RESULTS = Path(__file__).parent / "results"


class PeakRSS:
    """Samples the resident memory of this process and its children (ffmpeg) every 50 ms."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            try:
                rss = me.memory_info().rss + sum(
                    c.memory_info().rss for c in me.children(recursive=True)
                )
            except psutil.Error:
                rss = 0
            self.peak = max(self.peak, rss)
            self._stop.wait(0.05)

    def __enter__(self) -> PeakRSS:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()


def run_once(video: Path, profile: str, cache_root: Path | None, shared: bool) -> dict:
    from orchestrator.cache import Cache
    from orchestrator.pipeline import Pipeline

    cache = Cache(cache_root) if cache_root else False
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        pipe = Pipeline(profile, cache=cache, shared_decode=shared)
        ctx = pipe.run(video)
        seconds = time.perf_counter() - t0
    return {
        "seconds": round(seconds, 3),
        "rtf": round(seconds / max(ctx.video.duration, 1e-9), 4),
        "peak_rss_mib": round(mem.peak / 2**20, 1),
        "perceivers": {
            p.name: {
                "status": p.status,
                "seconds": p.seconds,
                "items": p.items,
                "cached": p.cached,
            }
            for p in ctx.provenance
        },
        "objects": len(ctx.objects),
        "speech": len(ctx.speech),
        "events": len(ctx.events),
        "duration": ctx.video.duration,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", default="vtest", help="a sample name or a path")
    ap.add_argument("--profile", default="offline")
    ap.add_argument("--repeat", type=int, default=1, help="alternate shared/naive this often")
    ap.add_argument("--out", type=Path, default=RESULTS / "textualize.json")
    args = ap.parse_args()

    from orchestrator.samples import SAMPLES, sample_path

    video = sample_path(args.video) if args.video in SAMPLES else Path(args.video)
    rows: dict[str, list[dict]] = {"shared": [], "naive": [], "warm": []}
    with tempfile.TemporaryDirectory() as tmp:
        # A throwaway run first loads libraries into the page cache so order does not bias.
        run_once(video, args.profile, None, True)
        for i in range(args.repeat):
            cache = Path(tmp) / f"cache{i}"
            # Alternate the order between repeats so drift does not favour one side.
            order = ("shared", "naive") if i % 2 == 0 else ("naive", "shared")
            for mode in order:
                rows[mode].append(
                    run_once(
                        video, args.profile, cache if mode == "shared" else None, mode == "shared"
                    )
                )
            rows["warm"].append(run_once(video, args.profile, cache, True))

    def best(mode: str) -> dict:
        return min(rows[mode], key=lambda r: r["seconds"])

    shared, naive, warm = best("shared"), best("naive"), best("warm")
    summary = {
        "video": str(video.name),
        "duration_s": shared["duration"],
        "profile": args.profile,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
        "rtf_shared": shared["rtf"],
        "rtf_naive": naive["rtf"],
        "speedup_shared_vs_naive": round(naive["seconds"] / shared["seconds"], 3),
        "warm_fraction_of_cold": round(warm["seconds"] / shared["seconds"], 4),
        "peak_rss_mib": max(r["peak_rss_mib"] for r in rows["shared"]),
        "targets": {"rtf_max": 0.5, "speedup_min": 1.5, "warm_fraction_max": 0.02},
    }
    summary["targets_met"] = {
        "rtf": summary["rtf_shared"] <= 0.5,
        "speedup": summary["speedup_shared_vs_naive"] >= 1.5,
        "warm": summary["warm_fraction_of_cold"] <= 0.02,
    }
    print(f"\ntextualize {video.name} ({shared['duration']:.1f} s) with profile {args.profile}")
    print(f"{'mode':<8} {'seconds':>8} {'RTF':>7} {'peak MiB':>9}   per perceiver (s)")
    for mode, r in (("shared", shared), ("naive", naive), ("warm", warm)):
        per = ", ".join(f"{k} {v['seconds']:.1f}{'*' if v['cached'] else ''}"
                        for k, v in r["perceivers"].items())  # fmt: skip
        print(f"{mode:<8} {r['seconds']:>8.2f} {r['rtf']:>7.3f} {r['peak_rss_mib']:>9.0f}   {per}")
    print(f"shared decode speed-up over naive: {summary['speedup_shared_vs_naive']:.2f}x"
          f" (target >= 1.5); warm/cold: {summary['warm_fraction_of_cold']:.2%} (target <= 2%);"
          f" RTF {summary['rtf_shared']:.3f} (target <= 0.5)")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    from orchestrator.record import atomic_write_text

    atomic_write_text(args.out, json.dumps({"summary": summary, "runs": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
