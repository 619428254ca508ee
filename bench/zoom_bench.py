"""Zoom benchmark: what a closer look at one window costs, and what it adds to the record.

    python -m bench.zoom_bench [--video vtest] [--start 30] [--seconds 10] [--fps 10]
                              [--perceivers detect,ocr,tags] [--profile offline]

By default three short captions (0.65 s each, white boxes with black letters, burnt in with ffmpeg
drawtext) are added inside the window of a copy of the video, at times the profile's 1 fps slow
stream never samples: they are the known text a closer look should read (recall before and
after the zoom is reported; `--no-captions` zooms the video as it is).

Textualizes the video with the profile (its own cold cache, so the numbers are real), then zooms
the window at `--fps` three ways in one run: **cold** (empty zoom cache), **warm** (the same zoom
from the cache, with a fresh `Zoomer`) and **reused** (the identical zoom on the record that
already holds it). Reports seconds per perceiver, the real-time factor of the zoom (zoom seconds
/ window seconds) beside the whole textualize's, and what the zoom added inside the window:
objects (new, refined), trajectory points, OCR texts, tags. Writes bench/results/zoom.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from bench.results_io import write_results

RESULTS = Path(__file__).parent / "results"
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
# (text, start, end) relative to the window's start: between the slow stream's whole seconds.
CAPTIONS = (("EXIT 7", 1.3, 1.95), ("PLATFORM 4", 4.1, 4.75), ("NO ENTRY", 7.4, 8.05))


def with_captions(video: Path, out: Path, start: float) -> list[dict]:
    """A copy of `video` with `CAPTIONS` burnt in; returns them in video times."""
    import subprocess

    caps = [{"text": t, "start": start + a, "end": start + b} for t, a, b in CAPTIONS]
    draws = [
        f"drawtext=fontfile={FONT}:text='{c['text']}':fontsize=40:fontcolor=black:box=1:"
        f"boxcolor=white:boxborderw=8:x=(w-tw)/2:y=40+{k * 70}:"
        f"enable='between(t,{c['start']},{c['end']})'"
        for k, c in enumerate(caps)
    ]
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-y",
            "-loglevel",
            "error",
            "-i",
            str(video),
            "-vf",
            ",".join(draws),
            "-c:v",
            "libx264",
            "-crf",
            "18",
            "-an",
            str(out),
        ],
        check=True,
    )
    return caps


def _found(ctx, caption: dict) -> bool:
    want = "".join(caption["text"].lower().split())
    return any(
        want in "".join(e.text.lower().split())
        for e in ctx.events
        if e.kind == "ocr" and e.start <= caption["end"] + 1 and e.end >= caption["start"] - 1
    )


def _window_stats(ctx, start: float, end: float) -> dict:
    """What the record holds inside [start, end]."""
    objs = [o for o in ctx.objects if o.first_seen <= end and o.last_seen >= start]
    points = sum(1 for o in objs for p in o.trajectory if start <= p.t <= end)
    events = [e for e in ctx.events if e.start <= end and e.end >= start]
    by_kind: dict[str, list[str]] = {}
    for e in events:
        by_kind.setdefault(e.kind, []).append(e.text)
    return {
        "objects": len(objs),
        "trajectory_points": points,
        "events_by_kind": {k: len(v) for k, v in sorted(by_kind.items())},
        "ocr_texts": sorted(set(by_kind.get("ocr", []))),
        "tags": sorted(set(by_kind.get("tag", []))),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", default="vtest")
    ap.add_argument("--profile", default="offline")
    ap.add_argument("--start", type=float, default=30.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--fps", type=float, default=10.0)
    ap.add_argument("--perceivers", default="detect,ocr,tags")
    ap.add_argument("--out", type=Path, default=RESULTS / "zoom.json")
    ap.add_argument("--save-records", type=Path, help="folder for the base and zoomed records")
    ap.add_argument("--no-captions", action="store_true", help="zoom the video as it is")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="vidchat-zoom-bench-") as tmp:
        # A private cache: the base record and the zoom are computed here, not read from an
        # earlier run (the hash index stays shared: hashing is not what is measured).
        os.environ.setdefault("VIDCHAT_CACHE", str(Path(tmp) / "cache"))
        from vidchat.kernel.cache import Cache
        from vidchat.kernel.samples import sample_path
        from vidchat.pipeline.core import Pipeline
        from vidchat.pipeline.zoom import Zoomer

        video = Path(args.video) if Path(args.video).exists() else sample_path(args.video)
        names = [n for n in args.perceivers.split(",") if n]
        start, end = args.start, args.start + args.seconds
        captions: list[dict] = []
        if not args.no_captions:
            captioned = Path(tmp) / f"{video.stem}-captions.mp4"
            captions = with_captions(video, captioned, start)
            video = captioned

        t0 = time.perf_counter()
        base = Pipeline(args.profile, cache=Cache(Path(tmp) / "base")).run(video)
        base_s = time.perf_counter() - t0

        zoom_cache = Cache(Path(tmp) / "zoom")
        cold = Zoomer(args.profile, cache=zoom_cache).zoom(base, start, end, names, args.fps)
        warm = Zoomer(args.profile, cache=zoom_cache).zoom(base, start, end, names, args.fps)
        reused = Zoomer(args.profile, cache=zoom_cache).zoom(
            cold.context, start, end, names, args.fps
        )

    if args.save_records:
        base.save(args.save_records / "base.json")
        cold.context.save(args.save_records / "zoomed.json")
    before = _window_stats(base, start, end)
    after = _window_stats(cold.context, start, end)
    run = cold.run
    result = {
        "video": video.name,
        "duration_s": round(base.video.duration, 2),
        "profile": args.profile,
        "window": [start, end],
        "fps": args.fps,
        "perceivers": names,
        "base_textualize_s": round(base_s, 2),
        "base_rtf": round(base_s / max(base.video.duration, 1e-9), 3),
        "zoom_cold_s": round(cold.seconds, 2),
        "zoom_rtf": round(cold.seconds / args.seconds, 3),
        "zoom_warm_s": round(warm.seconds, 3),
        "zoom_reused_s": round(reused.seconds, 3),
        "warm_cached": warm.cached,
        "per_perceiver": {
            p.name: {"status": p.status, "seconds": p.seconds, "items": p.items, "reason": p.reason}
            for p in run.provenance
        },
        "added": {
            "objects_added": run.objects_added,
            "objects_refined": run.objects_refined,
            "events_added": run.events_added,
            "speech_added": run.speech_added,
            "new_events": [
                {"kind": e.kind, "start": e.start, "end": e.end, "text": e.text}
                for e in cold.new_events
            ],
        },
        "window_before": before,
        "window_after": after,
        "captions": [
            {**c, "found_before": _found(base, c), "found_after": _found(cold.context, c)}
            for c in captions
        ],
        "zoom_vs_textualize": round(cold.seconds / base_s, 3),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_results(args.out, result)

    print(
        f"{video.name} ({base.video.duration:.1f} s), window {start:g}-{end:g} s at {args.fps:g}"
        f" fps, perceivers {', '.join(names)}"
    )
    print(f"textualize (whole video, {args.profile}): {base_s:.1f} s, RTF {result['base_rtf']}")
    print(
        f"zoom cold: {cold.seconds:.1f} s (RTF {result['zoom_rtf']} of the window); "
        f"warm (cache): {warm.seconds:.2f} s; identical zoom again: {reused.seconds:.3f} s"
    )
    for name, p in result["per_perceiver"].items():
        print(f"  {name:<8} {p['status']:<7} {p['seconds']:>6.1f} s  {p['items']} items")
    print(
        f"objects in the window: {before['objects']} → {after['objects']} "
        f"(+{len(run.objects_added)} new, {len(run.objects_refined)} refined); "
        f"trajectory points {before['trajectory_points']} → {after['trajectory_points']}"
    )
    print(f"events in the window: {before['events_by_kind']} → {after['events_by_kind']}")
    print(f"OCR texts: {before['ocr_texts']} → {after['ocr_texts']}")
    print(f"tags: {before['tags']} → {after['tags']}")
    if captions:
        got = result["captions"]
        print(
            f"captions read: {sum(c['found_before'] for c in got)}/{len(got)} before, "
            f"{sum(c['found_after'] for c in got)}/{len(got)} after the zoom"
        )
    print(
        f"zoom / whole textualize: {result['zoom_vs_textualize']} (1-min load average at the "
        f"end: {result['machine']['load_average_1min_at_end']})"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
