"""The `vidchat` command as a user runs it: real subprocesses, the installed console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from vidchat.kernel.samples import sample_path
from vidchat.testing import videos


def vidchat(*args, cache=None, timeout=300):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if cache:
        env["VIDCHAT_CACHE"] = str(cache)
    exe = shutil.which("vidchat")
    cmd = [exe] if exe else [sys.executable, "-m", "vidchat.cli.main"]
    return subprocess.run(
        [*cmd, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("maker", "message"),
    [
        (lambda d: d / "missing.mp4", "no such file"),
        (videos.zero_bytes, "empty file"),
        (videos.text_as_mp4, "not a readable video"),
        (videos.truncated_no_index, "not a readable video"),
        (videos.audio_only, "no video stream (audio-only file)"),
        (videos.directory, "is a directory"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(maker, message, tmp_path):
    r = vidchat("textualize", maker(tmp_path), "-q", cache=tmp_path / "c", timeout=60)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vidchat: error: "), r.stderr
    assert message in lines[0]
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_bad_profile_names_file_and_key(tmp_path):
    prof = tmp_path / "mine.yaml"
    prof.write_text("name: mine\nperceivers:\n  asr:\n    modle: tiny\n")
    r = vidchat("textualize", sample_path("bikes"), "--profile", prof, "-q")
    assert r.returncode == 2
    assert f"{prof}" in r.stderr and "unknown key 'modle'" in r.stderr
    r = vidchat("textualize", sample_path("bikes"), "--profile", "nope", "-q")
    assert r.returncode == 2 and "unknown profile 'nope'" in r.stderr


@pytest.mark.slow
def test_textualize_video_without_audio_skips_asr(tmp_path):
    out = tmp_path / "rec.json"
    r = vidchat(
        "textualize",
        videos.no_audio(tmp_path),
        "-o",
        out,
        "--format",
        "json",
        "-q",
        cache=tmp_path / "c",
    )
    assert r.returncode == 0, r.stderr
    rec = json.loads(out.read_text())
    assert json.loads(r.stdout) == rec
    status = {p["name"]: p for p in rec["provenance"]}
    assert status["asr"]["status"] == "skipped"
    assert status["asr"]["reason"] == "video has no audio track"
    assert status["detect"]["status"] == "ok" and status["shots"]["status"] == "ok"


def test_perceivers_lists_each_with_availability():
    r = vidchat("perceivers", "--width", "200")
    assert r.returncode == 0, r.stderr
    for name in ("asr", "detect", "shots"):
        assert name in r.stdout
    assert "yes" in r.stdout


def test_sample_and_profiles_commands():
    r = vidchat("sample", "vtest")
    assert r.returncode == 0 and r.stdout.strip().endswith("vtest.avi")
    r = vidchat("sample", "nope")
    assert r.returncode == 2 and "unknown sample" in r.stderr
    r = vidchat("profiles")
    assert r.returncode == 0 and "offline" in r.stdout and "full" in r.stdout
