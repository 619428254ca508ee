"""Textualize benchmark: real-time factor, seconds per perceiver, peak memory and a warm-cache
re-run, for three ways of running a profile — all side by side in one run, because this machine
is noisy:

- ``naive``: every perceiver decodes the video on its own, one after another;
- ``in_turn``: one shared decode per level, perceivers one after another (frames held in memory);
- ``shared``: the pipeline as it runs: one shared decode streaming into every perceiver, the
  perceivers in parallel threads.

naive → in_turn is what sharing the decode saves; in_turn → shared is what running perceivers
side by side saves; naive → shared is both.

    python bench/textualize_bench.py [--video vtest] [--profile offline] [--repeat 1]

Prints a table and writes bench/results/textualize.json. Targets (2-core CPU): real-time factor
at most 0.5; the pipeline at least 1.5x faster than the naive baseline; warm re-run at most 2% of
the cold time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
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


# mode → (shared_decode, parallel) of `vidchat.pipeline.core.Pipeline`
MODES = {"naive": (False, False), "in_turn": (True, False), "shared": (True, True)}


def run_once(video: Path, profile: str, cache_root: Path | None, mode: str) -> dict:
    from vidchat.kernel.cache import Cache
    from vidchat.pipeline.core import Pipeline

    shared, parallel = MODES[mode]
    cache = Cache(cache_root) if cache_root else False
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        pipe = Pipeline(profile, cache=cache, shared_decode=shared, parallel=parallel)
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


def order_of(repeat: int) -> tuple[str, ...]:
    """The modes' order in repeat `repeat`: reversed every other time, so drift in the machine's
    load does not always favour the same mode."""
    modes = tuple(MODES)
    return modes if repeat % 2 == 0 else modes[::-1]


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print the table, write the JSON; returns what it wrote."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--video", default="vtest", help="a sample name or a path")
    ap.add_argument("--profile", default="offline")
    ap.add_argument("--repeat", type=int, default=1, help="run the three modes this often")
    ap.add_argument("--out", type=Path, default=RESULTS / "textualize.json")
    args = ap.parse_args(argv)

    from vidchat.kernel.samples import SAMPLES, sample_path

    video = sample_path(args.video) if args.video in SAMPLES else Path(args.video)
    rows: dict[str, list[dict]] = {mode: [] for mode in (*MODES, "warm")}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        # A throwaway run first loads libraries into the page cache so order does not bias.
        run_once(video, args.profile, None, "shared")
        for i in range(args.repeat):
            cache = Path(tmp) / f"cache{i}"
            for mode in order_of(i):
                rows[mode].append(
                    run_once(video, args.profile, cache if mode == "shared" else None, mode)
                )
            rows["warm"].append(run_once(video, args.profile, cache, "shared"))

    def middle(mode: str) -> dict:
        """The median run of a mode (the lower middle one of an even count)."""
        return sorted(rows[mode], key=lambda r: r["seconds"])[(len(rows[mode]) - 1) // 2]

    def ratio(slow: str, fast: str) -> float:
        """Median over repeats of slow/fast seconds, each pair measured in the same repeat."""
        pairs = [a["seconds"] / b["seconds"] for a, b in zip(rows[slow], rows[fast], strict=True)]
        return round(statistics.median(pairs), 3)

    shared, in_turn = middle("shared"), middle("in_turn")
    naive, warm = middle("naive"), middle("warm")
    summary = {
        "video": str(video.name),
        "duration_s": shared["duration"],
        "profile": args.profile,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "repeats": args.repeat,
        "rtf_shared": shared["rtf"],
        "rtf_in_turn": in_turn["rtf"],
        "rtf_naive": naive["rtf"],
        "speedup_decode_sharing": ratio("naive", "in_turn"),
        "speedup_parallel_perceivers": ratio("in_turn", "shared"),
        "speedup_shared_vs_naive": ratio("naive", "shared"),
        "warm_fraction_of_cold": round(1 / ratio("shared", "warm"), 4),
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
    for mode, r in (("naive", naive), ("in_turn", in_turn), ("shared", shared), ("warm", warm)):
        per = ", ".join(f"{k} {v['seconds']:.1f}{'*' if v['cached'] else ''}"
                        for k, v in r["perceivers"].items())  # fmt: skip
        print(f"{mode:<8} {r['seconds']:>8.2f} {r['rtf']:>7.3f} {r['peak_rss_mib']:>9.0f}   {per}")
    print(f"decode sharing (naive / in_turn): {summary['speedup_decode_sharing']:.2f}x; "
          f"parallel perceivers (in_turn / shared): {summary['speedup_parallel_perceivers']:.2f}x")
    print(f"pipeline speed-up over naive: {summary['speedup_shared_vs_naive']:.2f}x"
          f" (target >= 1.5); warm/cold: {summary['warm_fraction_of_cold']:.2%} (target <= 2%);"
          f" RTF {summary['rtf_shared']:.3f} (target <= 0.5)")  # fmt: skip
    from vidchat.kernel.record import atomic_write_text

    result = {"summary": summary, "runs": rows}
    atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
