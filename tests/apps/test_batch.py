"""Batch jobs: inputs, outputs, manifest, resume, output-folder errors, the CLI command, and one
end-to-end run with the real offline profile. Faults and kills: test_batch_faults.py."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.apps.batch_helpers import good_videos, manifest_rows, profile_dict
from vidchat.apps import batch as batch_mod
from vidchat.apps.batch import (
    BatchError,
    collect_inputs,
    comparable_record,
    file_sha256,
    run_batch,
    safe_id,
)
from vidchat.cli.batch import main as batch_main
from vidchat.kernel.record import VideoContext
from vidchat.pipeline.profiles import parse_profile
from vidchat.testing.videos import X264, ffmpeg
from vidchat.text.render import render

SHOTS = parse_profile(profile_dict())


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> list[Path]:
    return good_videos(tmp_path_factory.mktemp("good"), 3)


# ------------------------------------------------------------------------------------ inputs


def test_collect_inputs_files_folders_manifests(tmp_path):
    (tmp_path / "a" / "deep").mkdir(parents=True)
    for rel in ["a/x.mp4", "a/deep/y.MKV", "a/notes.txt", "b/x.mp4"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"v")
    (tmp_path / "a" / "clip.mov").mkdir()  # a folder named like a video: an input of its own
    (tmp_path / "list.csv").write_text("id,path\nfirst,a/x.mp4\nsecond,/abs/z.mp4\n")
    (tmp_path / "list.jsonl").write_text('{"id": "third one", "path": "b/x.mp4"}\n\n')
    items = collect_inputs([tmp_path / "a", tmp_path / "b" / "x.mp4", tmp_path / "list.csv",
                            tmp_path / "list.jsonl", tmp_path / "a" / "x.mp4"])  # fmt: skip
    by_id = {i.id: i.path for i in items}
    assert by_id["first"] == str(tmp_path / "a/x.mp4")  # relative to the manifest's folder
    assert by_id["second"] == "/abs/z.mp4"
    assert by_id["third_one"] == str(tmp_path / "b/x.mp4")
    assert by_id["y"] == str(tmp_path / "a/deep/y.MKV")  # recursive, any case of extension
    assert by_id["clip"] == str(tmp_path / "a/clip.mov")
    # Two different files with stem x: both get a path hash; the same file twice is one input.
    xs = sorted(k for k in by_id if k.startswith("x-"))
    assert len(xs) == 2 and {by_id[k] for k in xs} == {str(tmp_path / "a/x.mp4"),
                                                       str(tmp_path / "b/x.mp4")}  # fmt: skip
    assert len(items) == 7  # notes.txt is not a video


def test_collect_inputs_errors(tmp_path):
    with pytest.raises(BatchError, match=r"manifest .*missing.csv: no such file"):
        collect_inputs([tmp_path / "missing.csv"])
    (tmp_path / "bad.csv").write_text("name,file\na,b\n")
    with pytest.raises(BatchError, match="expected a CSV header with 'id' and 'path'"):
        collect_inputs([tmp_path / "bad.csv"])
    (tmp_path / "dup.jsonl").write_text('{"id":"a","path":"1.mp4"}\n{"id":"a","path":"2.mp4"}\n')
    with pytest.raises(BatchError, match="manifest id 'a' used twice"):
        collect_inputs([tmp_path / "dup.jsonl"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(BatchError, match="no videos found"):
        collect_inputs([tmp_path / "empty"])
    assert safe_id("clip ünïcødé 日本語 (1) & 'q'") == "clip_ünïcødé_日本語_1_q"
    assert safe_id("../../etc/passwd") == "etc_passwd"


# ----------------------------------------------------------------------- outputs and resume


def test_local_batch_outputs_manifest_and_resume(videos, tmp_path, cache_dir):
    out = tmp_path / "out"
    s = run_batch(videos, out, profile=SHOTS, workers=2)
    assert (s.total, s.ok, s.exit_code) == (3, 3, 0)
    rows = manifest_rows(out)
    assert sorted(r["id"] for r in rows) == ["good_0", "good_1", "good_2"]
    for r in rows:
        ctx = VideoContext.load(out / f"{r['id']}.json")
        assert r["sha256"] == ctx.video.sha256 == file_sha256(r["path"])
        assert r["status"] == "ok" and r["error"] is None and set(r["seconds"]) == {"shots"}
        assert ctx.video.path == r["path"] and ctx.provenance[0].status == "ok"
        text = (out / f"{r['id']}.txt").read_text(encoding="utf-8")
        assert text == render(ctx, budget_tokens=3000, window_s=10).text + "\n"
    assert json.loads((out / "summary.json").read_text())["ok"] == 3
    assert not list(out.glob(".*.tmp"))

    # Resume with nothing to do: no worker starts, no new manifest line.
    s = run_batch(videos, out, profile=SHOTS, resume=True)
    assert (s.skipped, s.ok) == (3, 0) and len(manifest_rows(out)) == 3

    # A partial video (its .txt lost) and a changed input are redone; the rest skipped.
    (out / "good_0.txt").unlink()
    changed = videos[1].parent / "changed" / "good_1.mp4"
    changed.parent.mkdir(exist_ok=True)
    ffmpeg("-t", "1", "-f", "lavfi", "-i", "color=c=red:s=160x120:r=10", *X264, str(changed))
    s = run_batch([videos[0], changed, videos[2]], out, profile=SHOTS, resume=True)
    assert (s.skipped, s.ok) == (1, 2)
    rows = manifest_rows(out)
    assert [r["id"] for r in rows[3:]].count("good_0") == 1
    assert VideoContext.load(out / "good_1.json").video.sha256 == file_sha256(changed)

    # Complete outputs whose manifest line was lost (a kill between the writes): the line is
    # rebuilt from the record, the video is not redone.
    lines = (out / "manifest.jsonl").read_text().splitlines()
    keep = [ln for ln in lines if json.loads(ln)["id"] != "good_2"]
    (out / "manifest.jsonl").write_text("\n".join(keep) + "\n" + '{"id": "torn')  # torn line
    s = run_batch([videos[0], changed, videos[2]], out, profile=SHOTS, resume=True)
    assert (s.skipped, s.recovered, s.ok) == (2, 1, 1)
    last = manifest_rows(out)[-1]
    assert last["id"] == "good_2" and last["recovered"] and last["seconds"]["shots"] > 0


def test_comparable_record_drops_only_timings():
    rec = {"video": {"path": "a"}, "provenance": [{"name": "x", "seconds": 1.5, "cached": True,
                                                  "status": "ok"}]}  # fmt: skip
    other = json.loads(json.dumps(rec))
    other["provenance"][0].update(seconds=0.1, cached=False)
    assert comparable_record(rec) == comparable_record(json.dumps(other))
    other["provenance"][0]["status"] = "failed"
    assert comparable_record(rec) != comparable_record(other)


# ------------------------------------------------------------------ unwritable or full disk


def test_unwritable_output_folder_fails_before_any_work(videos, tmp_path, cache_dir):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(BatchError, match=r"output folder .*file/out is not writable"):
        run_batch(videos, blocker / "out", profile=SHOTS)
    # As a command: one line, exit status 2.
    assert batch_main(["batch", str(videos[0]), "-o", str(blocker / "out"), "-q"]) == 2


def test_full_disk_at_first_write_leaves_no_complete_looking_file(
    videos, tmp_path, cache_dir, monkeypatch
):
    real_fdopen = os.fdopen

    class Full:
        """A file on a full disk: half of the first write lands, then ENOSPC."""

        def __init__(self, f):
            self.f = f

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def __getattr__(self, name):
            return getattr(self.f, name)

    def fdopen(fd, *a, **kw):
        f = real_fdopen(fd, *a, **kw)
        # The folder check passes (space for it); the first output does not fit.
        return (
            f
            if getattr(f, "name", None) is None
            or ".vidchat-write-test" in str(os.readlink(f"/proc/self/fd/{fd}"))
            else Full(f)
        )

    monkeypatch.setattr(os, "fdopen", fdopen)
    out = tmp_path / "out"
    with pytest.raises(BatchError, match=r"cannot write the outputs of good_0 .*no space left"):
        run_batch(videos[:1], out, profile=SHOTS)
    assert sorted(p.name for p in out.iterdir()) == []  # no record, no rendering, no temp file


def _mount_tmpfs(path: Path, size: int) -> bool:
    path.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True)  # fmt: skip
    return proc.returncode == 0


def test_real_full_disk_on_a_tiny_tmpfs(videos, tmp_path, cache_dir):
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, 64 * 1024):
        pytest.skip("cannot mount a tmpfs here (needs root); the ENOSPC test above covers it")
    try:
        out = disk / "out"
        out.mkdir()
        # Fill the disk but one page: the folder check fits, the first record and its
        # rendering (two files, a page or more each) do not.
        st = os.statvfs(disk)
        (disk / "filler").write_bytes(b"\0" * ((st.f_bavail - 1) * st.f_frsize))
        with pytest.raises(BatchError, match=r"cannot write the outputs .*no space left"):
            run_batch(videos[:2], out, profile=SHOTS)
        assert [p.name for p in out.iterdir()] == []
        # Space again: the same job completes.
        (disk / "filler").unlink()
        assert run_batch(videos[:2], out, profile=SHOTS, resume=True).ok == 2
    finally:
        subprocess.run(["umount", str(disk)], check=False)


# ---------------------------------------------------------------------------------- the CLI


def test_cli_batch_exit_codes_and_summary(videos, tmp_path, cache_dir, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_text("not a video")
    out = tmp_path / "out"
    prof = tmp_path / "p.yaml"
    prof.write_text("name: shots-only\nperceivers:\n  shots:\n    detector: content\n")
    assert batch_main(["batch", str(videos[0]), "-o", str(out), "--profile", str(prof)]) == 0
    err = capsys.readouterr().err
    assert "vidchat batch: 1 videos: 1 ok" in err and "videos/min" in err
    code = batch_main(["batch", str(videos[0]), str(bad), "-o", str(out), "--profile", str(prof),
                       "--resume"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert "1 failed" in err and "1 already done" in err and "broken: failed:" in err
    assert batch_main(["batch", str(bad), "-o", str(out), "--ray-address", "x:1"]) == 2
    assert "--ray-address needs --engine ray" in capsys.readouterr().err


def test_ray_missing_names_the_extra(videos, tmp_path, cache_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(BatchError, match=r"pip install 'vidchat\[ray\]'"):
        run_batch(videos[:1], tmp_path / "out", profile=SHOTS, engine="ray")


def test_resources_per_perceiver():
    res = batch_mod.perceiver_resources(parse_profile({"name": "x", "perceivers": {
        "shots": None, "detect": {"device": "cuda:0"}}}))  # fmt: skip
    assert res["shots"] == batch_mod.PerceiverResources(1.0, 0.0)
    assert res["detect"] == batch_mod.PerceiverResources(1.0, 1.0)


# ------------------------------------------------------------------------ real offline models


@pytest.mark.slow
def test_offline_profile_end_to_end(tmp_path, cache_dir):
    """The real offline models (Whisper tiny.en, NanoDet, PySceneDetect, …) in a worker
    that loads them once for both videos."""
    from vidchat.kernel.samples import sample_path
    from vidchat.pipeline.profiles import load_profile

    vids = [sample_path("bigbuckbunny"), sample_path("bikes")]
    out = tmp_path / "out"
    s = run_batch(vids, out, profile="offline", workers=1, timeout_per_video=300)
    assert (s.ok, s.exit_code) == (2, 0), s.not_ok
    rows = {r["id"]: r for r in manifest_rows(out)}
    assert rows["bikes"]["worker"] == rows["bigbuckbunny"]["worker"]  # one worker, kept
    bbb = VideoContext.load(out / "bigbuckbunny.json")
    bikes = VideoContext.load(out / "bikes.json")
    names = set(load_profile("offline").perceivers)
    assert {"asr", "detect", "shots"} <= names
    # speakers needs speech to attribute: Big Buck Bunny's soundtrack has none that survives VAD.
    needs_speech = {"speakers"}
    st = {p.name: p for p in bbb.provenance}
    assert set(st) == names
    assert all(p.status == "ok" for n, p in st.items() if n not in needs_speech), st
    assert st["speakers"].status == "ok" or "no speech" in (st["speakers"].reason or "")
    asr = next(p for p in bikes.provenance if p.name == "asr")
    assert asr.status == "skipped" and "no audio" in asr.reason
    assert all(p.status == "ok" for p in bikes.provenance if p.name not in {"asr", *needs_speech})
    assert set(rows["bikes"]["seconds"]) == names
    assert (bikes.video.width, bikes.video.duration) == (640, 10.0)
    text = (out / "bikes.txt").read_text(encoding="utf-8")
    assert text == render(bikes, budget_tokens=3000, window_s=10).text + "\n"


def test_a_perceiver_that_cannot_run_here_makes_the_video_degraded(videos, tmp_path, cache_dir):
    # asr's weights are not on disk: the pipeline skips it as unavailable, so the record lacks
    # its speech. The video is degraded, not ok; the job says so.
    missing = tmp_path / "no-such-whisper"
    prof = parse_profile(
        {"name": "shots+asr", "perceivers": {"shots": {"detector": "content"},
                                             "asr": {"model": str(missing)}}}
    )  # fmt: skip
    s = run_batch(videos[:1], tmp_path / "out", profile=prof, workers=1)
    assert (s.ok, s.degraded, s.exit_code) == (0, 1, 1)
    (row,) = manifest_rows(tmp_path / "out")
    assert row["status"] == "degraded"
    assert row["error"].startswith("asr: unavailable: ") and str(missing) in row["error"]
