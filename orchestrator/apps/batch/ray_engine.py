"""The Ray engine: Ray actors, each holding a `Pipeline` built once; a hung or dead actor is
killed (Ray takes its child processes, a stuck ffmpeg, with it) and replaced. Actors ask Ray for
the CPUs and GPUs the profile's perceivers declare (`actor_resources`), never more than a
worker's share of the cluster."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vidchat.apps.batch.engine import Died, Slot
from vidchat.apps.batch.inputs import BatchItem
from vidchat.apps.batch.results import BatchError, VideoResult
from vidchat.apps.batch.worker import init_worker, process_video

if TYPE_CHECKING:
    from vidchat.pipeline.profiles import Profile

__all__ = [
    "PerceiverResources",
    "RayEngine",
    "RayWorker",
    "actor_resources",
    "perceiver_resources",
]


class RayWorker:
    """The Ray actor's body: a Pipeline built once, one video per call."""

    def __init__(
        self, profile: Profile, cache: bool, setup: Callable[[], None] | None, threads: int
    ) -> None:
        self.pipeline = init_worker(profile, cache, setup, threads)
        self.name = f"ray-{os.getpid()}"

    def ready(self) -> str:
        """The worker's name, once its pipeline is built (the engine waits for this)."""
        return self.name

    def process(self, item: BatchItem) -> VideoResult:
        """Textualize one video (`vidchat.apps.batch.worker.process_video`)."""
        return process_video(self.pipeline, item, self.name)


@dataclass(frozen=True)
class PerceiverResources:
    """What one perceiver needs while it runs (Ray schedules actors by it)."""

    cpus: float
    gpus: float


def perceiver_resources(profile: Profile) -> dict[str, PerceiverResources]:
    """Per perceiver: ``num_cpus``/``num_gpus`` class attributes when it declares them, else 1
    CPU, plus 1 GPU when its options name a CUDA device."""
    from vidchat.perceivers import get_perceiver

    out = {}
    for name, opts in profile.perceivers.items():
        cls = get_perceiver(name)
        device = str((opts or {}).get("device") or "")
        gpus = float(getattr(cls, "num_gpus", 1.0 if device.startswith("cuda") else 0.0))
        out[name] = PerceiverResources(float(getattr(cls, "num_cpus", 1.0)), gpus)
    return out


def actor_resources(profile: Profile) -> PerceiverResources:
    """One actor runs a level's perceivers at once (threads) and levels one after another:
    CPUs = the largest sum over a level; GPUs = the largest single need (they share one)."""
    from vidchat.perceivers import get_perceiver
    from vidchat.pipeline.core import plan_levels

    res = perceiver_resources(profile)
    levels = plan_levels({n: get_perceiver(n)(o) for n, o in profile.perceivers.items()})
    cpus = max((sum(res[n].cpus for n in lv) for lv in levels), default=1.0)
    gpus = max((r.gpus for r in res.values()), default=0.0)
    return PerceiverResources(cpus, gpus)


def _ray_cause(e: BaseException) -> str:
    """The last line of a Ray error that names the cause (Ray's messages are pages long)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    named = [ln for ln in lines if "Error" in ln and not ln.startswith(("File ", "Traceback"))]
    return (named or lines or [type(e).__name__])[-1][:300]


class RayEngine:
    """Ray actors, each holding a Pipeline; a hung or dead actor is killed and replaced."""

    name = "ray"

    def __init__(
        self, profile: Profile, workers: int, cache: bool, setup: Any, address: str | None
    ) -> None:
        try:
            import ray
        except ImportError:
            raise BatchError(
                "the ray engine needs Ray: pip install 'vidchat[ray]' (or ray==2.60.0)"
            ) from None
        self.ray = ray
        self.owns_ray = False
        if not ray.is_initialized():
            kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address:
                kw["address"] = address
            else:
                kw["num_cpus"] = os.cpu_count() or 1
            try:
                ray.init(**kw)
            except Exception as e:
                raise BatchError(
                    f"could not start or reach Ray ({address or 'local'}): {_ray_cause(e)}"
                ) from None
            self.owns_ray = True
        need = actor_resources(profile)
        total = ray.cluster_resources()
        # Never ask for more than a worker's share of the cluster, or actors would wait forever.
        cpus = min(need.cpus, max(0.1, float(total.get("CPU", 1)) / workers))
        gpus = min(need.gpus, float(total.get("GPU", 0)) / workers) if need.gpus else 0.0
        self.resources = {"num_cpus": cpus, "num_gpus": gpus}
        # Any: Ray's stubs type an actor's methods as plain callables, not remote handles.
        self._actor_cls: Any = ray.remote(
            max_restarts=0, max_task_retries=0, num_cpus=cpus, num_gpus=gpus
        )(RayWorker)
        self._args = (profile, cache, setup, max(1, int(cpus)))
        self.slots = [self._start() for _ in range(workers)]

    def _start(self) -> Slot:
        actor = self._actor_cls.remote(*self._args)
        return Slot(handle=actor, extra={"ref": actor.ready.remote(), "kind": "ready"})

    def submit(self, i: int, item: BatchItem) -> None:
        s = self.slots[i]
        s.busy = True
        s.extra.update(ref=s.handle.process.remote(item), kind="result")

    def wait(self, timeout: float) -> list[tuple[int, VideoResult | Died]]:
        ray = self.ray
        refs = {s.extra["ref"]: i for i, s in enumerate(self.slots) if s.extra.get("ref")}
        if not refs:
            time.sleep(timeout)
            return []
        ray.wait(list(refs), num_returns=1, timeout=timeout)
        done, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0)
        out: list[tuple[int, VideoResult | Died]] = []
        for ref in done:
            i = refs[ref]
            s = self.slots[i]
            kind = s.extra.pop("kind")
            s.extra["ref"] = None
            try:
                value = ray.get(ref)
            except ray.exceptions.RayActorError as e:
                if kind == "ready":  # died building its pipeline: every new one would too
                    raise BatchError(
                        f"a Ray worker could not build the pipeline: {_ray_cause(e)}"
                    ) from None
                was_busy = s.busy
                self.replace(i)
                if was_busy:
                    out.append((i, Died(f"Ray worker died ({type(e).__name__})")))
                continue
            except ray.exceptions.RayTaskError as e:
                if kind == "ready":
                    raise BatchError(
                        f"a Ray worker could not build the pipeline: {_ray_cause(e)}"
                    ) from None
                s.busy = False
                out.append((i, Died(f"Ray task failed: {_ray_cause(e)}")))
                continue
            if kind == "ready":
                s.ready = True
            else:
                s.busy = False
                out.append((i, value))
        return out

    def replace(self, i: int) -> None:
        # Ray kills the actor's child processes (a stuck ffmpeg) with it: checked by
        # test_ray_timeout_kills_hung_actor.
        with contextlib.suppress(Exception):  # already dead
            self.ray.kill(self.slots[i].handle, no_restart=True)
        self.slots[i] = self._start()

    def close(self) -> None:
        for s in self.slots:
            with contextlib.suppress(Exception):
                self.ray.kill(s.handle, no_restart=True)
        if self.owns_ray:
            self.ray.shutdown()
