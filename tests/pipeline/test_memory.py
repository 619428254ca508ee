"""Frames are streamed, never all held: peak memory does not grow with the video's length."""

from __future__ import annotations

import subprocess
import threading

import psutil
import pytest

from vidchat.pipeline.core import Pipeline
from vidchat.pipeline.profiles import parse_profile


def make_1080p(path, seconds):
    subprocess.run(
        [
            "ffmpeg",
            "-y",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=s=1920x1080:r=25:d={seconds}",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "35",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        check=True,
    )
    return path


def peak_rss_during(fn):
    me = psutil.Process()
    peak = [me.memory_info().rss]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], me.memory_info().rss)
            stop.wait(0.02)

    t = threading.Thread(target=sample)
    t.start()
    try:
        fn()
    finally:
        stop.set()
        t.join()
    return peak[0]


@pytest.mark.slow
def test_peak_memory_is_bounded_and_independent_of_length(toys, tmp_path, cache_dir):
    prof = parse_profile(
        {
            "name": "mem",
            "perceivers": {"brightness": None},
            "sampling": {"slow_fps": 1.0, "fast_fps": 4.0},
        }
    )
    short = make_1080p(tmp_path / "short.mp4", 10)
    long = make_1080p(tmp_path / "long.mp4", 60)
    pipe = Pipeline(prof, cache=False)
    pipe.run(short)  # warm-up: libraries and allocator pools
    base = psutil.Process().memory_info().rss
    peak_short = peak_rss_during(lambda: pipe.run(short)) - base
    peak_long = peak_rss_during(lambda: pipe.run(long)) - base
    # 60 s of 1080p at 4 fps is 240 full frames (1.5 GB of RGB) if they were all held.
    assert peak_long < 400 * 2**20, peak_long / 2**20
    assert peak_long < peak_short + 150 * 2**20, (peak_short / 2**20, peak_long / 2**20)


@pytest.mark.slow
def test_a_12k_video_stays_under_2_gib(tmp_path):
    from bench.memory_bench import run  # the bench's own measuring child process
    from vidchat.testing.videos import huge_12k

    clip = huge_12k(tmp_path)  # 12288x12288, 2 s at 2 fps: 453 MB a frame as RGB
    got = run(clip, {})
    assert got["size"] == [12288, 12288]
    # The slow stream is bounded by pixels (4K UHD area): 2880x2880 here, not 12288x12288.
    assert got["slow"] == [2880, 2880] and got["n"] == 2
    print(f"12K clip peak RSS (MiB): {got}")
    assert got["peak_mib"] < 2048, got  # vidchat and ffmpeg side by side
