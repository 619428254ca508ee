"""What the job's scheduler (`vidchat.apps.batch.job`) needs from an engine: worker slots it can
hand one video at a time, results or deaths as they come, and a way to kill one worker.

Two engines implement it: `vidchat.apps.batch.local_engine` (spawned processes) and
`vidchat.apps.batch.ray_engine` (Ray actors).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from vidchat.apps.batch.inputs import BatchItem
from vidchat.apps.batch.results import VideoResult

__all__ = ["BatchEngine", "Died", "Slot"]


@dataclass
class Died:
    """A worker died (or its task failed) under a video; `reason` says how."""

    reason: str


@dataclass
class Slot:
    """One worker: its handle (a process or an actor), and whether it is ready and busy."""

    handle: Any
    ready: bool = False
    busy: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class BatchEngine(Protocol):
    """A pool of workers that the scheduler drives."""

    name: str
    slots: list[Slot]

    def submit(self, i: int, item: BatchItem) -> None:
        """Hand `item` to the ready, idle worker `i`."""

    def wait(self, timeout: float) -> list[tuple[int, VideoResult | Died]]:
        """Results (or deaths) that arrived within `timeout` seconds, by worker index."""
        ...

    def replace(self, i: int) -> None:
        """Kill worker `i` (with its child processes) and start a fresh one in its slot."""

    def close(self) -> None:
        """Stop every worker."""
