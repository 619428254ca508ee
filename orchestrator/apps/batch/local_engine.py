"""The local engine: a pool of spawned worker processes, one video at a time each, killable one
by one. A worker runs in its own process group (killing it takes its ffmpeg children too) and
ends itself within a second when the job process dies."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from vidchat.apps.batch.engine import Died, Slot
from vidchat.apps.batch.inputs import BatchItem
from vidchat.apps.batch.results import BatchError, VideoResult
from vidchat.apps.batch.worker import init_worker, process_video

if TYPE_CHECKING:
    from vidchat.pipeline.profiles import Profile

__all__ = ["LocalEngine"]


def _threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def _die_with_parent() -> None:
    """When the job process dies (SIGKILL), end this worker's process group (it and its ffmpeg)
    within a second instead of finishing a video nobody will write."""
    import threading

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def _local_worker_main(
    conn: Any, profile: Profile, cache: bool, setup: Callable[[], None] | None, threads: int
) -> None:
    """A local worker process: build the pipeline, then answer one item at a time."""
    os.setpgrp()  # its own process group: the job kills it together with its ffmpeg children
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the job's to handle
    _die_with_parent()
    try:
        pipeline = init_worker(profile, cache, setup, threads)
    except BaseException as e:
        conn.send(("init_error", f"{type(e).__name__}: {e}"))
        return
    name = f"local-{os.getpid()}"
    conn.send(("ready", name))
    while True:
        try:
            item = conn.recv()
        except EOFError:
            return
        if item is None:
            return
        conn.send(("result", process_video(pipeline, item, name)))


class LocalEngine:
    """A pool of spawned worker processes, one item at a time each, killable one by one."""

    name = "local"

    def __init__(self, profile: Profile, workers: int, cache: bool, setup: Any) -> None:
        # spawn: a fresh interpreter (no forked threads or locks from the job process).
        self._ctx = multiprocessing.get_context("spawn")
        self._args = (profile, cache, setup, _threads_per_worker(workers))
        self.start_failures = 0
        self.slots = [self._start() for _ in range(workers)]

    def _start(self) -> Slot:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_local_worker_main, args=(child, *self._args), daemon=True)
        proc.start()
        child.close()
        return Slot(handle=proc, extra={"conn": parent})

    def submit(self, i: int, item: BatchItem) -> None:
        s = self.slots[i]
        s.busy = True
        s.extra["conn"].send(item)

    def wait(self, timeout: float) -> list[tuple[int, VideoResult | Died]]:
        from multiprocessing.connection import wait

        conns = {id(s.extra["conn"]): i for i, s in enumerate(self.slots)}
        sentinels = {s.handle.sentinel: i for i, s in enumerate(self.slots)}
        ready = wait([s.extra["conn"] for s in self.slots] + list(sentinels), timeout)
        out: list[tuple[int, VideoResult | Died]] = []
        hit: set[int] = set()
        for r in ready:
            i = conns.get(id(r), sentinels.get(r))
            if i is None or i in hit:
                continue
            hit.add(i)
            s = self.slots[i]
            try:
                kind, payload = s.extra["conn"].recv() if s.extra["conn"].poll() else (None, None)
            except (EOFError, OSError):
                kind, payload = None, None
            if kind == "ready":
                s.ready = True
            elif kind == "init_error":
                raise BatchError(f"a local worker could not build the pipeline: {payload}")
            elif kind == "result":
                s.busy = False
                out.append((i, cast(VideoResult, payload)))  # what the worker sends
            elif not s.handle.is_alive():
                code = s.handle.exitcode
                why = (
                    f"killed by {signal.Signals(-code).name}"
                    if code and code < 0
                    else f"exit status {code}"
                )
                was_busy, was_ready = s.busy, s.ready
                self.replace(i)
                if was_busy:
                    out.append((i, Died(f"worker process died ({why})")))
                elif not was_ready:
                    self.start_failures += 1
                    if self.start_failures >= 3:  # e.g. a crash loading a model: do not loop
                        raise BatchError(
                            f"local workers die while starting ({why}){_spawn_hint()}"
                        )
        return out

    def replace(self, i: int) -> None:
        s = self.slots[i]
        proc = s.handle
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # the worker and its ffmpeg children
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        s.extra["conn"].close()
        self.slots[i] = self._start()

    def close(self) -> None:
        for s in self.slots:
            with contextlib.suppress(OSError):
                s.extra["conn"].send(None)
        for s in self.slots:
            s.handle.join(5)
            if s.handle.is_alive():
                try:
                    os.killpg(s.handle.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    s.handle.kill()
                s.handle.join(5)


def _spawn_hint() -> str:
    """Why spawned workers may die at start when the job runs from a user's script.

    Spawned workers re-import the parent's main module; a script that calls `vidchat.batch` at
    module level (no ``if __name__ == "__main__":`` guard) makes every worker fail at start with
    multiprocessing's long message, which the parent would otherwise report as a bare exit status.
    """
    main = sys.modules.get("__main__")
    if main is None or not getattr(main, "__file__", None):
        return ""  # interactive session or `python -c`: nothing is re-imported
    return (
        "; if vidchat.batch is called from a script, put the call under "
        "`if __name__ == \"__main__\":` (workers are spawned processes that re-import it)"
    )
