"""Batch jobs under faults: a corpus of awkward inputs (with hangs) in one job, the job killed
with SIGKILL then resumed, a worker killed mid-video (local pool and Ray).

"Identical outputs" means: every ``<id>.txt`` byte-equal and every ``<id>.json`` equal after
`vidchat.apps.batch.comparable_record` (which drops only each perceiver's ``seconds`` and
``cached``, the two fields a resumed run legitimately changes)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from tests.apps.batch_helpers import (
    assert_same_outputs,
    good_videos,
    manifest_rows,
    profile_dict,
    register_toys,
    start_job,
)
from vidchat.apps.batch import run_batch
from vidchat.kernel.record import VideoContext
from vidchat.pipeline.profiles import parse_profile
from vidchat.testing.videos import AWKWARD, X264, ffmpeg

# Awkward inputs that must give a clean recorded error, with a word the error must contain.
EXPECT_ERROR = {
    "zero_bytes": "empty file",
    "text_as_mp4": "not a readable video",
    "audio_only": "no video stream",
    "directory": "is a directory",
    "truncated_no_index": "not a readable video",
    "missing": "no such file",
    "fifo": "not a regular file",  # a named pipe: refused before anything opens it
    "dev_zero": "not a regular file",
    "dev_urandom": "not a regular file",
    "png_as_mp4": "a still image",
}
# Inputs that hang (ffprobe stuck on it; the pause toy stuck on it): killed at the timeout.
EXPECT_TIMEOUT = {"hang_ffprobe", "stall_model"}
TIMEOUT_S = 12.0


def _extra_awkward(dest: Path) -> dict[str, Path]:
    """Awkward inputs beyond vidchat.testing.videos.AWKWARD."""
    out = {}
    dest.mkdir(parents=True, exist_ok=True)
    p = dest / "really_mp4.avi"  # a valid mp4 with another container's extension
    ffmpeg("-f", "lavfi", "-i", "testsrc=s=160x96:r=10:d=1", *X264, "-f", "mp4", str(p))
    out["wrong_extension"] = p
    fifo = dest / "pipe.mp4"
    os.mkfifo(fifo)
    out["fifo"] = fifo
    p = dest / "hang_ffprobe.mp4"  # see `hanging_ffprobe`
    ffmpeg("-f", "lavfi", "-i", "testsrc=s=160x96:r=10:d=1", *X264, str(p))
    out["hang_ffprobe"] = p
    p = dest / "stall_model.mp4"  # content of its own: a cached result would not hang
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=160x96:r=10:d=1.3", *X264, str(p))
    out["stall_model"] = p
    out["missing"] = dest / "gone.mp4"
    p = dest / "space name tiny 2x2.mp4"  # smallest frame size x264 takes, with spaces
    ffmpeg("-f", "lavfi", "-i", "color=c=white:s=2x2:r=5:d=1", *X264, str(p))
    out["tiny_2x2"] = p
    return out


@pytest.fixture
def hanging_ffprobe(tmp_path, monkeypatch) -> None:
    """An ``ffprobe`` first on PATH (workers inherit it) that hangs for good on any file whose
    name contains ``hang_ffprobe`` — a stuck ffmpeg process (a shell whose command line names the
    file, waiting on a ``sleep`` child) — and is the real one otherwise."""
    real = shutil.which("ffprobe")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "ffprobe"
    wrapper.write_text(f'#!/bin/sh\ncase "$*" in *hang_ffprobe*) sleep 1000; exit 1;; esac\n'
                       f'exec {real} "$@"\n')  # fmt: skip
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.slow
def test_awkward_corpus_in_one_batch(tmp_path, cache_dir, hanging_ffprobe):
    import json

    register_toys()  # the job process validates the profile; workers register via setup
    src = tmp_path / "src"
    paths = {name: gen(src / name) for name, gen in AWKWARD.items()}
    paths.update(_extra_awkward(src / "extra"))
    good = good_videos(src / "good", 2)
    assert len(paths) >= 20
    manifest = tmp_path / "list.jsonl"
    rows = [{"id": n, "path": str(p)} for n, p in paths.items()]
    rows += [{"id": p.stem, "path": str(p)} for p in good]
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    t0 = time.monotonic()
    s = run_batch([manifest], out, profile=parse_profile(profile_dict(pause=0.0)), workers=2,
                  timeout_per_video=TIMEOUT_S, setup=register_toys)  # fmt: skip
    wall = time.monotonic() - t0
    by_id = {r["id"]: r for r in manifest_rows(out)}
    assert set(by_id) == {r["id"] for r in rows}  # every input recorded, once
    for name, word in EXPECT_ERROR.items():
        r = by_id[name]
        assert r["status"] == "failed" and word in r["error"] and "\n" not in r["error"], r
        assert not (out / f"{name}.json").exists()
    for name in EXPECT_TIMEOUT:
        r = by_id[name]
        assert r["status"] == "timeout", r
        assert TIMEOUT_S <= r["total_seconds"] < TIMEOUT_S + 5
    ok = set(by_id) - set(EXPECT_ERROR) - EXPECT_TIMEOUT
    for name in ok:
        assert by_id[name]["status"] == "ok", by_id[name]
        ctx = VideoContext.load(out / f"{name}.json")
        assert ctx.video.sha256 == by_id[name]["sha256"]
        assert all(p.status == "ok" for p in ctx.provenance), ctx.provenance
    facts = {n: VideoContext.load(out / f"{n}.json").video for n in ok}
    assert (facts["rotated_90"].width, facts["rotated_90"].height) == (96, 160)
    assert (facts["odd_size"].width, facts["odd_size"].height) == (333, 199)
    assert facts["long_sparse"].duration == pytest.approx(600, abs=1)
    assert facts["vfr"].variable_frame_rate
    assert not facts["no_audio"].has_audio
    frames = {n: VideoContext.load(out / f"{n}.json") for n in ("single_frame", "long_sparse")}
    assert frames["single_frame"].events[0].text == "1"  # the pause toy counted one fast frame
    # 600 s of 1 fps frames sampled at 4 fps: every one of the 600 frames, none invented.
    assert frames["long_sparse"].events[0].text == "600"
    assert s.exit_code == 1 and s.failed == len(EXPECT_ERROR) and s.timeout == 2
    # The two hangs overlap on two workers; everything else is quick.
    assert wall < 2 * TIMEOUT_S + 60
    # No ffmpeg, ffprobe or worker left behind by the killed workers.
    assert _probing(paths["hang_ffprobe"]) == [] and _leftovers() == []


def _leftovers() -> list[list[str]]:
    """Command lines of this process's live descendants, but multiprocessing's resource
    tracker (a stdlib helper that lives as long as the process that started it)."""
    time.sleep(0.5)
    left = []
    for c in psutil.Process().children(recursive=True):
        try:
            if c.status() != psutil.STATUS_ZOMBIE:
                left.append(c.cmdline())
        except psutil.NoSuchProcess:
            continue
    return [c for c in left if not any("resource_tracker" in a for a in c)]


def _probing(path: Path) -> list[list[str]]:
    """Processes anywhere on this machine (orphans included) whose command line names `path`."""
    time.sleep(0.5)
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(str(path) in a for a in proc.info["cmdline"] or []):
            found.append(proc.info["cmdline"])
    return found


def _wait_rows(out: Path, n: int, proc: subprocess.Popen, limit: float = 120) -> None:
    t0 = time.monotonic()
    while len(manifest_rows(out)) < n:
        assert proc.poll() is None, "the job ended before it could be killed"
        assert time.monotonic() - t0 < limit, "the job made no progress"
        time.sleep(0.05)


def _kill_tree(proc: subprocess.Popen) -> list[str]:
    """SIGKILL a job, give its orphans 10 s to exit on their own, then kill those left and
    return their command lines."""
    kids = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _, alive = psutil.wait_procs(kids, timeout=10)
    left = []
    for k in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            left.append(" ".join(k.cmdline()))
            k.kill()
    return left


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[list[Path], Path, dict]:
    """Six good videos and their reference outputs from one uninterrupted run."""
    d = tmp_path_factory.mktemp("kill")
    vids = good_videos(d / "in", 6)
    job = {"profile": profile_dict(pause=0.4), "workers": 1, "cache": False}
    register_toys()
    ref = d / "ref"
    s = run_batch(vids, ref, **{**job, "profile": parse_profile(job["profile"])},
                  setup=register_toys)  # fmt: skip
    assert s.ok == 6
    return vids, ref, job


def _check_after(out: Path, ref: Path, ids: list[str]) -> None:
    rows = manifest_rows(out)
    done = Counter(r["id"] for r in rows if r["status"] == "ok")
    assert done == Counter(ids), rows  # none lost, none done (or recorded) twice
    assert_same_outputs(out, ref, ids)


@pytest.mark.slow
def test_sigkill_job_then_resume(corpus, tmp_path, cache_dir):
    vids, ref, job = corpus
    out = tmp_path / "out"
    proc = start_job({**job, "inputs": [str(v) for v in vids], "outdir": str(out),
                      "cache": True}, tmp_path / "job.log")  # fmt: skip
    _wait_rows(out, 2, proc)
    # Its workers notice the job is gone and end (with their ffmpeg) by themselves.
    left = _kill_tree(proc)
    assert [c for c in left if "resource_tracker" not in c] == []
    before = manifest_rows(out)
    assert 2 <= len(before) < 6
    s = run_batch(vids, out, profile=parse_profile(job["profile"]), resume=True, cache=True,
                  setup=register_toys)  # fmt: skip
    # Lines written before the kill are skipped; the video cut off between its files and its
    # line (if any) is recovered from its record; the rest are done now.
    assert s.skipped == len(before) and s.exit_code == 0
    assert s.ok == 6 - s.skipped
    _check_after(out, ref, [v.stem for v in vids])


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["local", "ray"])
def test_worker_killed_mid_video(engine, corpus, tmp_path, cache_dir):
    if engine == "ray":
        pytest.importorskip("ray")
    vids, ref, job = corpus
    out = tmp_path / "out"
    proc = start_job({**job, "inputs": [str(v) for v in vids], "outdir": str(out),
                      "engine": engine, "timeout_per_video": 60}, tmp_path / "job.log")  # fmt: skip
    try:
        _wait_rows(out, 1, proc, limit=180)
        worker = manifest_rows(out)[0]["worker"]
        pid = int(worker.rsplit("-", 1)[1])
        # It is busy with the next video (each takes >= 0.4 s): kill it mid-video.
        os.kill(pid, signal.SIGKILL)
        assert proc.wait(180) == 0, (tmp_path / "job.log").read_text()
    finally:
        if proc.poll() is None:
            _kill_tree(proc)
    rows = manifest_rows(out)
    assert any(r["worker"] != worker for r in rows)  # a fresh worker took over
    assert any(r["attempts"] == 2 for r in rows), rows  # the killed video, retried
    _check_after(out, ref, [v.stem for v in vids])


def test_timeout_kills_ffmpeg_with_the_worker(tmp_path, cache_dir, hanging_ffprobe):
    """A worker killed at the timeout takes its ffmpeg children with it (process group)."""
    ok, hang = good_videos(tmp_path / "good", 2)
    hang = hang.rename(hang.with_name("hang_ffprobe.mp4"))
    register_toys()
    s = run_batch([hang, ok], tmp_path / "out", profile=parse_profile(profile_dict()),
                  timeout_per_video=3, setup=register_toys)  # fmt: skip
    assert (s.ok, s.timeout) == (1, 1) and "no result after 3 s" in s.not_ok["hang_ffprobe"]
    assert _probing(hang) == [] and _leftovers() == []


@pytest.mark.slow
def test_ray_timeout_kills_hung_actor(tmp_path, cache_dir, hanging_ffprobe):
    """On Ray too: a hung video is stopped at its timeout (the actor and its stuck ffprobe are
    killed, a fresh actor takes over) and the rest of the job is done."""
    pytest.importorskip("ray")
    vids = good_videos(tmp_path / "good", 3)
    hang = vids[0].rename(vids[0].with_name("hang_ffprobe.mp4"))
    s = run_batch([hang, *vids[1:]], tmp_path / "out", profile=parse_profile(profile_dict()),
                  engine="ray", workers=1, timeout_per_video=6)  # fmt: skip
    assert (s.ok, s.timeout) == (2, 1), s.not_ok
    assert "no result after 6 s" in s.not_ok["hang_ffprobe"]
    assert s.resources == {"num_cpus": 1.0, "num_gpus": 0.0}
    assert _probing(hang) == []


def test_unguarded_script_gets_a_hint(tmp_path, cache_dir):
    """A script calling vidchat.batch at module level (no __main__ guard) makes every spawned
    worker die at start; the error says why instead of a bare exit status."""
    video = tmp_path / "a.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=s=160x96:r=10:d=1", *X264, str(video))
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import vidchat\n"
        f"vidchat.batch([{str(video)!r}], out_dir={str(tmp_path / 'out')!r}, workers=1)\n"
    )
    # cache_dir has set VIDCHAT_CACHE in this process's environment, which the script inherits
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "workers die while starting" in last
    assert 'if __name__ == "__main__":' in last
