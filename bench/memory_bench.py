"""Memory by resolution: peak RSS of textualizing a 12288x12288 clip, with the slow stream's
pixel bound (the default) and without it (the old behaviour: slow frames at full resolution),
side by side in one run.

    python bench/memory_bench.py [--seconds 2]
    python bench/memory_bench.py --long [--minutes 10] [--profile offline]

``--long`` instead measures a long real clip through a whole profile (issue 14's target: a
10-minute 720p clip with speech under 2 GiB with the offline profile): vtest.avi looped and
scaled to 1280x720, with an espeak-ng speech track (the fidelity sentences, looped) — made with
ffmpeg from shipped material — textualized in a fresh process whose peak RSS (with ffmpeg's) is
sampled every 10 ms. Writes bench/results/memory_long.json.

Each mode runs in a fresh process (a real perceiver-shaped consumer: the toy `brightness`, which
reads every slow and fast frame); the peak is the highest sum of its RSS and its children's
(ffmpeg decodes beside it), sampled every 10 ms; each part's own peak is shown too.
Prints a table and writes bench/results/memory.json.
Target: under 2 GiB for the 12K clip with the defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.results_io import write_results

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parent.parent

# Both child scripts start this first: peak resident memory of the process and of its children
# (ffmpeg), sampled every 10 ms (getrusage's ru_maxrss would also count the parent's pages from
# before the exec). `stop.set(); t.join()` ends it; `peak` holds the result.
_SAMPLER = """
me = psutil.Process()
peak = {"self": 0, "children": 0, "total": 0}
stop = threading.Event()
def sample():
    while not stop.is_set():
        try:
            own = me.memory_info().rss
            kids = sum(c.memory_info().rss for c in me.children(recursive=True))
        except psutil.Error:
            continue
        peak["self"] = max(peak["self"], own)
        peak["children"] = max(peak["children"], kids)
        peak["total"] = max(peak["total"], own + kids)
        stop.wait(0.01)
t = threading.Thread(target=sample, daemon=True)
t.start()
"""


_CHILD = (
    """
import json, sys, threading
import psutil
from vidchat import perceivers
from vidchat.testing.toys import Brightness
perceivers.register_perceiver("brightness", Brightness)
from vidchat.pipeline.core import Pipeline
from vidchat.pipeline.profiles import parse_profile
"""
+ _SAMPLER
+ """
sampling = {"slow_fps": 1.0, "fast_fps": 2.0, **json.loads(sys.argv[2])}
prof = parse_profile({"name": "mem", "perceivers": {"brightness": None}, "sampling": sampling})
ctx = Pipeline(prof, cache=False).run(sys.argv[1])
stop.set()
t.join()
slow = [e for e in ctx.events if e.kind == "brightness"]
print(json.dumps({**peak, "slow": [slow[0].data["w"], slow[0].data["h"]], "n": len(slow),
                  "size": [ctx.video.width, ctx.video.height]}))
"""
)


_PROFILE_CHILD = (
    """
import json, sys, threading, time
import psutil
from vidchat.pipeline.core import Pipeline
"""
+ _SAMPLER
+ """
t0 = time.perf_counter()
ctx = Pipeline(sys.argv[2], cache=False).run(sys.argv[1])
seconds = time.perf_counter() - t0
stop.set()
t.join()
print(json.dumps({**peak, "seconds": round(seconds, 1), "duration": ctx.video.duration,
                  "size": [ctx.video.width, ctx.video.height], "speech": len(ctx.speech),
                  "objects": len(ctx.objects), "events": len(ctx.events),
                  "perceivers": {p.name: [p.status, p.seconds] for p in ctx.provenance}}))
"""
)


def make_long_clip(dest: Path, minutes: float) -> Path:
    """vtest.avi looped to `minutes`, 1280x720 at 10 fps, with looped espeak-ng speech (AAC)."""
    from vidchat.apps.fidelity.generate import SENTENCES
    from vidchat.kernel.samples import sample_path

    speech = dest / "speech.wav"
    subprocess.run(
        ["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(speech), ". ".join(SENTENCES) + "."],
        check=True, capture_output=True,
    )  # fmt: skip
    path = dest / "long_720p_speech.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y",
         "-stream_loop", "-1", "-i", str(sample_path("vtest")),
         "-stream_loop", "-1", "-i", str(speech),
         "-map", "0:v", "-map", "1:a", "-t", f"{minutes * 60:.0f}",
         "-vf", "scale=1280:960,crop=1280:720", "-r", "10",
         "-c:v", "libx264", "-preset", "ultrafast", "-threads", "2", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-b:a", "64k", "-ar", "16000", "-ac", "1", str(path)],
        check=True,
    )  # fmt: skip
    return path


def run_profile(clip: Path, profile: str) -> dict:
    """Textualize `clip` with `profile` in a fresh process; its peaks in MiB and its timings."""
    env = {**os.environ, "VIDCHAT_CACHE": str(clip.parent / "cache")}
    out = subprocess.run(
        [sys.executable, "-c", _PROFILE_CHILD, str(clip), profile],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=3600,
    )  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"run failed: {out.stderr[-1000:]}")
    got = json.loads(out.stdout.strip().splitlines()[-1])
    got["peak_mib"] = round(got.pop("total") / 2**20)
    got["vidchat_mib"] = round(got.pop("self") / 2**20)
    got["ffmpeg_mib"] = round(got.pop("children") / 2**20)
    return got


def main_long(minutes: float, profile: str) -> dict:
    """The long-clip mode: make the clip, textualize it once, print and write the peak."""
    import time

    with tempfile.TemporaryDirectory() as d:
        clip = make_long_clip(Path(d), minutes)
        load = os.getloadavg()[0]
        got = run_profile(clip, profile)
    ok = got["peak_mib"] < 2048
    print(f"{minutes:g} min 1280x720 with speech, profile {profile}: peak {got['peak_mib']} MiB "
          f"(vidchat {got['vidchat_mib']}, ffmpeg {got['ffmpeg_mib']}); {got['seconds']} s "
          f"(RTF {got['seconds'] / got['duration']:.3f}); {got['speech']} speech segments, "
          f"{got['objects']} objects; target < 2048 MiB: {'met' if ok else 'MISSED'}")  # fmt: skip
    out = {
        "clip": f"vtest.avi looped to {minutes:g} min, 1280x720, 10 fps, h264 + espeak-ng speech",
        "profile": profile,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average_1m_before": round(load, 2),
        "target_peak_mib": 2048,
        "target_met": ok,
        **got,
    }
    RESULTS.mkdir(exist_ok=True)
    write_results(RESULTS / "memory_long.json", out)
    print(f"wrote {RESULTS / 'memory_long.json'}")
    return out


def make_clip(dest: Path, seconds: float) -> Path:
    path = dest / "huge_12k.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", f"color=c=0x3366cc:s=12288x12288:r=2:d={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-threads", "1", "-pix_fmt", "yuv420p",
         str(path)],
        check=True,
    )  # fmt: skip
    return path


def run(clip: Path, sampling: dict) -> dict:
    env = {**os.environ, "VIDCHAT_CACHE": str(clip.parent / "cache")}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(clip), json.dumps(sampling)],
        capture_output=True, text=True, env={**env, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
        timeout=1200,
    )  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"run failed: {out.stderr[-1000:]}")
    got = json.loads(out.stdout.strip().splitlines()[-1])
    got["peak_mib"] = round(got.pop("total") / 2**20)
    got["vidchat_mib"] = round(got.pop("self") / 2**20)
    got["ffmpeg_mib"] = round(got.pop("children") / 2**20)
    return got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--long", action="store_true", help="the long 720p clip with speech instead")
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the --long clip")
    ap.add_argument("--profile", default="offline", help="profile for --long")
    args = ap.parse_args()
    if args.long:
        main_long(args.minutes, args.profile)
        return
    with tempfile.TemporaryDirectory() as d:
        clip = make_clip(Path(d), args.seconds)
        modes = {
            "bounded (default slow_max_pixels = 3840x2160)": run(clip, {}),
            "unbounded (slow frames at 12288x12288)": run(
                clip, {"slow_max_pixels": 12288 * 12288}
            ),
        }
    print(f"{'mode':<48} {'slow frame':>12} {'vidchat':>9} {'ffmpeg':>8} {'peak':>8}")
    for name, m in modes.items():
        print(f"{name:<48} {m['slow'][0]:>5}x{m['slow'][1]:<6} {m['vidchat_mib']:>6} MiB "
              f"{m['ffmpeg_mib']:>5} MiB {m['peak_mib']:>5} MiB")  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    out = {
        "clip": f"12288x12288, {args.seconds:g} s at 2 fps, solid colour, h264",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "modes": modes,
    }
    write_results(RESULTS / "memory.json", out)
    print(f"wrote {RESULTS / 'memory.json'}")


if __name__ == "__main__":
    main()
