"""bench/memory_bench.py --long: the clip it makes is what it says, and the child process really
textualizes it and reports a peak."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from bench import memory_bench

needs_tools = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or shutil.which("espeak-ng") is None,
    reason="ffmpeg and espeak-ng needed",
)


@needs_tools
def test_long_clip_is_720p_with_speech_and_its_peak_is_measured(tmp_path):
    clip = memory_bench.make_long_clip(tmp_path, minutes=0.05)  # 3 s
    probe = json.loads(
        subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries",
             "format=duration:stream=codec_type,width,height", "-of", "json", str(clip)],
            capture_output=True, text=True, check=True,
        ).stdout
    )  # fmt: skip
    video = next(s for s in probe["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (1280, 720)
    assert any(s["codec_type"] == "audio" for s in probe["streams"])
    assert float(probe["format"]["duration"]) == pytest.approx(3.0, abs=0.2)
    profile = tmp_path / "shots.yaml"
    profile.write_text("name: shots-only\nperceivers:\n  shots: {detector: content}\n")
    got = memory_bench.run_profile(clip, str(profile))
    assert got["size"] == [1280, 720] and got["duration"] == pytest.approx(3.0, abs=0.2)
    assert got["perceivers"]["shots"][0] == "ok"
    # Python, numpy and ffmpeg alone take tens of MiB: a zero would mean nothing was sampled.
    assert 30 < got["peak_mib"] < 2048 and got["vidchat_mib"] > 0
