"""Helpers for the batch tests: toy perceivers that pause or hang (registered in every worker
through `run_batch(setup=register_toys)`), small distinct good videos, a job runner for
subprocesses (``python -m tests.apps.batch_helpers JOB.json``) and output comparison."""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from vidchat.apps.batch import MANIFEST_NAME, comparable_record
from vidchat.kernel.record import Event
from vidchat.perceivers.base import Media, Perceiver, PerceiverOptions
from vidchat.testing.videos import X264, ffmpeg


class PauseOptions(PerceiverOptions):
    seconds: float = 0.5


class Pause(Perceiver):
    """Counts the fast frames after a pause (a slow model); hangs for good on a file whose name
    contains ``stall`` (a stuck model: only killing its worker ends it)."""

    name = "pause"
    version = "1"
    Options = PauseOptions
    inputs = frozenset({"fast"})

    def perceive(self, media: Media) -> Iterator[Event]:
        if "stall" in media.upstream.video.name:
            while True:
                time.sleep(1)
        time.sleep(self.options.seconds)  # type: ignore[attr-defined]
        n = sum(1 for _ in media.frames("fast"))
        yield Event(start=0, end=0, kind="frames", text=str(n), source=self.name)


def register_toys() -> None:
    """Make the toy perceivers discoverable in this process (the job's and each worker's)."""
    from vidchat import perceivers

    real = perceivers.available_perceivers
    if getattr(real, "_batch_toys", False):
        return

    def patched() -> dict[str, md.EntryPoint]:
        ep = md.EntryPoint("pause", "tests.apps.batch_helpers:Pause", "vidchat.perceivers")
        return {**real(), "pause": ep}

    patched._batch_toys = True  # type: ignore[attr-defined]
    perceivers.available_perceivers = patched  # type: ignore[assignment]


def profile_dict(pause: float | None = None, fast_fps: float = 4.0) -> dict:
    """shots (real, no model) plus, optionally, the pause toy."""
    ps: dict = {"shots": {"detector": "content"}}
    if pause is not None:
        ps["pause"] = {"seconds": pause}
    return {"name": "batch-test", "perceivers": ps, "sampling": {"fast_fps": fast_fps}}


def good_videos(dest: Path, n: int = 6) -> list[Path]:
    """`n` small distinct valid videos (different sources and lengths): a wrong output for one
    of them cannot equal another's."""
    sources = ["testsrc", "testsrc2", "smptebars", "rgbtestsrc", "mandelbrot", "yuvtestsrc"]
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = dest / f"good_{i}.mp4"
        src = sources[i % len(sources)]
        ffmpeg("-t", f"{1 + 0.5 * (i % 3)}", "-f", "lavfi", "-i", f"{src}=s=160x120:r=10",
                *X264, "-pix_fmt", "yuv420p", str(p))  # fmt: skip
        out.append(p)
    return out


def manifest_rows(outdir: Path) -> list[dict]:
    """Every whole line of the run manifest (a torn last line is skipped, as the job does)."""
    rows = []
    path = outdir / MANIFEST_NAME
    if not path.exists():
        return rows
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def assert_same_outputs(a: Path, b: Path, ids: list[str]) -> None:
    """Records equal up to `comparable_record` (timings and cache flags), renderings equal."""
    for vid in ids:
        ra = comparable_record((a / f"{vid}.json").read_text(encoding="utf-8"))
        rb = comparable_record((b / f"{vid}.json").read_text(encoding="utf-8"))
        assert ra == rb, vid
        assert (a / f"{vid}.txt").read_bytes() == (b / f"{vid}.txt").read_bytes(), vid


def start_job(job: dict, log: Path) -> subprocess.Popen:
    """Run `run_batch(**job, setup=register_toys)` in a child process (to be killed by tests)."""
    spec = log.with_suffix(".job.json")
    spec.write_text(json.dumps(job), encoding="utf-8")
    # Ray workers import `setup` by name: they need the repository (for `tests`) on their path.
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [root, *filter(None, [os.environ.get("PYTHONPATH")])])}  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "tests.apps.batch_helpers", str(spec)],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
    )  # fmt: skip


def _main(spec_path: str) -> int:
    from vidchat.apps.batch import run_batch
    from vidchat.pipeline.profiles import parse_profile

    register_toys()
    job = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    job["profile"] = parse_profile(job["profile"])
    summary = run_batch(setup=register_toys, **job)
    print(summary.model_dump_json())
    return summary.exit_code


if __name__ == "__main__":
    # Through the module's real name: workers must import `register_toys` and `Pause` by it.
    from tests.apps import batch_helpers

    sys.exit(batch_helpers._main(sys.argv[1]))
