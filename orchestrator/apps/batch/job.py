"""The job: `run_batch` collects the inputs, skips what a resumed job already finished, starts
the engine, hands one video at a time to each ready worker, retries a video whose worker died
under it, kills a worker that overruns ``timeout_per_video``, and writes every result as it
comes (outputs, then the manifest line), then the summary."""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from vidchat.apps.batch.engine import BatchEngine
from vidchat.apps.batch.inputs import BatchItem, collect_inputs
from vidchat.apps.batch.local_engine import LocalEngine
from vidchat.apps.batch.outputs import Outputs
from vidchat.apps.batch.ray_engine import RayEngine
from vidchat.apps.batch.results import (
    BatchError,
    BatchSummary,
    Status,
    VideoResult,
    result_from_record,
)

if TYPE_CHECKING:
    from vidchat.pipeline.profiles import Profile

__all__ = ["Engine", "run_batch"]

log = logging.getLogger("vidchat.batch")

Engine = Literal["local", "ray"]


class _Bar:
    """One rich progress bar on stderr: videos done, failed, rate and time left."""

    def __init__(self, total: int, enabled: bool) -> None:
        self._p = None
        self.t0 = time.monotonic()
        self.done = self.bad = 0
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._p = Progress(
                TextColumn("batch"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[failed]} failed · {task.fields[rate]}"),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self._p.__enter__()
            self._task = self._p.add_task("batch", total=total, failed=0, rate="– videos/min")

    def advance(self, ok: bool) -> None:
        self.done += 1
        self.bad += not ok
        if self._p is not None:
            minutes = max(time.monotonic() - self.t0, 1e-6) / 60
            self._p.update(self._task, advance=1, failed=self.bad,
                           rate=f"{self.done / minutes:.1f} videos/min")  # fmt: skip

    def close(self) -> None:
        if self._p is not None:
            self._p.__exit__(None, None, None)


def run_batch(
    inputs: Sequence[str | os.PathLike[str]],
    outdir: str | os.PathLike[str],
    *,
    profile: str | Profile | None = None,
    workers: int = 1,
    engine: Engine = "local",
    ray_address: str | None = None,
    resume: bool = False,
    timeout_per_video: float | None = None,
    cache: bool = True,
    progress: bool = False,
    setup: Callable[[], None] | None = None,
    retries: int = 1,
) -> BatchSummary:
    """Textualize every input video into `outdir`; see `vidchat.apps.batch`.

    `setup` is a picklable (module-level) function each worker calls before building its
    pipeline (e.g. to register plugin perceivers). `retries`: how many more times a video is
    tried when its worker dies under it (a timeout is not retried).
    """
    from vidchat.pipeline.profiles import load_profile

    if workers < 1:
        raise BatchError(f"--workers must be at least 1, got {workers}")
    if timeout_per_video is not None and timeout_per_video <= 0:
        raise BatchError(f"--timeout-per-video must be positive, got {timeout_per_video}")
    if engine not in ("local", "ray"):
        raise BatchError(f"unknown engine {engine!r}; expected local or ray")
    prof = load_profile(profile)
    items = collect_inputs(inputs)
    out = Outputs(Path(outdir))
    summary = BatchSummary(total=len(items), engine=engine, workers=workers)
    t0 = time.monotonic()
    todo: deque[tuple[BatchItem, int]] = deque()
    logged = out.logged_ok() if resume else set()
    for item in items:
        record = out.done(item) if resume else None
        if record is None:
            todo.append((item, 1))
        elif item.id in logged:
            summary.skipped += 1
        else:  # complete outputs, manifest line lost to a kill: rebuild the line, do not redo
            r = result_from_record(item, record, None)
            r.recovered = True
            out.append(r)
            summary.recovered += 1
            _count(summary, r)
    bar = _Bar(len(todo), progress)

    def finish(r: VideoResult) -> None:
        out.write(r)
        out.append(r)
        _count(summary, r)
        bar.advance(r.status == "ok")

    eng: LocalEngine | RayEngine | None = None
    try:
        if todo:
            n = min(workers, len(todo))
            eng = (
                LocalEngine(prof, n, cache, setup)
                if engine == "local"
                else RayEngine(prof, n, cache, setup, ray_address)
            )
            if isinstance(eng, RayEngine):
                summary.resources = eng.resources
            _schedule(eng, todo, timeout_per_video, retries, finish)
    finally:
        bar.close()
        if eng is not None:
            eng.close()
    summary.seconds = round(time.monotonic() - t0, 3)
    processed = summary.total - summary.skipped - summary.recovered
    summary.videos_per_minute = round(processed / max(summary.seconds, 1e-9) * 60, 2)
    out.summary(summary)
    return summary


def _count(summary: BatchSummary, r: VideoResult) -> None:
    setattr(summary, r.status, getattr(summary, r.status) + 1)
    if r.status != "ok":
        summary.not_ok[r.id] = f"{r.status}: {r.error}"


def _schedule(
    eng: BatchEngine,
    todo: deque[tuple[BatchItem, int]],
    timeout: float | None,
    retries: int,
    finish: Callable[[VideoResult], None],
) -> None:
    """Hand one item at a time to each ready worker; collect results; kill what overruns."""
    running: dict[int, tuple[BatchItem, float, int]] = {}
    while todo or running:
        for i, s in enumerate(eng.slots):
            if todo and s.ready and not s.busy:
                item, attempt = todo.popleft()
                eng.submit(i, item)
                running[i] = (item, time.monotonic(), attempt)
        wait_s = 0.5
        if timeout is not None and running:
            nearest = min(t for _, t, _ in running.values()) + timeout - time.monotonic()
            wait_s = max(0.01, min(wait_s, nearest))
        for i, ev in eng.wait(wait_s):
            if i not in running:
                continue
            item, started, attempt = running.pop(i)
            if isinstance(ev, VideoResult):
                ev.attempts = attempt
                finish(ev)
            elif attempt <= retries:
                log.warning("%s: %s; trying again on a new worker", item.path, ev.reason)
                todo.appendleft((item, attempt + 1))
            else:
                finish(_failed(item, ev.reason, "failed", attempt, started))
        if timeout is not None:
            now = time.monotonic()
            for i, (item, started, attempt) in list(running.items()):
                if now - started > timeout:
                    running.pop(i)
                    eng.replace(i)  # kill the hung worker (and its ffmpeg), start a fresh one
                    why = f"no result after {timeout:g} s: worker killed"
                    finish(_failed(item, why, "timeout", attempt, started))


def _failed(
    item: BatchItem, error: str, status: Status, attempt: int, started: float
) -> VideoResult:
    return VideoResult(
        id=item.id, path=item.path, status=status, error=error, attempts=attempt,
        total_seconds=round(time.monotonic() - started, 3),
        # Never hash here: the job process must not block on a FIFO or a hung network mount.
        sha256=None,
    )  # fmt: skip
