"""Typed progress events of one `Pipeline.run`, for whoever subscribes (``on_event=``).

The terminal's progress bar, the plain progress lines of a non-terminal stderr and the web app's
job page are all subscribers of these events; a notebook or service can add its own::

    def show(event: PipelineEvent) -> None:
        if isinstance(event, PerceiverFinished):
            print(event.name, event.status, event.items)

    ctx = vidchat.Pipeline("offline").run("video.mp4", on_event=show)

Order within one run: `Probed` first, `Done` last (only when the run returns a record). Each
level's `LevelStarted` comes before anything of that level, and every perceiver of the plan
gets exactly one `PerceiverFinished` (a cache hit or an unavailable perceiver gets it without a
`PerceiverStarted`); `PerceiverStarted` of a perceiver comes before its `PerceiverFinished`.
A decode (one per level, or one per perceiver with ``shared_decode=False``) sends
`DecodeStarted`, then `FramesDecoded` after each decoded frame, then `DecodeFinished`.

Events come from the thread that made them (the decode runs in the caller's thread, each
perceiver in its own), but a run hands them to its subscribers one at a time, in the order they
were made: a subscriber needs no lock of its own. A subscriber should return quickly (it holds
up the run). One that raises is logged once and gets no more events of that run; the run and the
other subscribers go on (a broken progress display must not cost the record).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vidchat.kernel.record import Status

if TYPE_CHECKING:
    from vidchat.kernel.record import Provenance, VideoContext, VideoInfo

__all__ = [
    "DecodeFinished",
    "DecodeStarted",
    "Done",
    "EventSink",
    "FramesDecoded",
    "LevelStarted",
    "OnEvent",
    "PerceiverFinished",
    "PerceiverStarted",
    "PipelineEvent",
    "Probed",
]

log = logging.getLogger("vidchat.pipeline")


@dataclass(frozen=True)
class Probed:
    """The video was probed; `levels` is the plan: perceiver names by dependency level."""

    info: VideoInfo
    levels: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class LevelStarted:
    """Level `index` (0-based, of `count`) begins: its perceivers' cache lookups come next."""

    index: int
    count: int
    perceivers: tuple[str, ...]


@dataclass(frozen=True)
class PerceiverStarted:
    """A perceiver that was not served from the cache starts running (in its own thread)."""

    name: str
    level: int


@dataclass(frozen=True)
class PerceiverFinished:
    """A perceiver's result is in: ran (``ok``/``failed``/``skipped``), or served from the cache
    (`cached`), or skipped without running because it cannot run here (a missing package or
    weights: `reason` starts with ``unavailable: ``)."""

    name: str
    level: int
    status: Status
    cached: bool = False
    items: int = 0
    seconds: float = 0.0
    reason: str | None = None

    @classmethod
    def of(cls, provenance: Provenance, level: int) -> PerceiverFinished:
        """The event for a perceiver's provenance."""
        return cls(
            name=provenance.name,
            level=level,
            status=provenance.status,
            cached=provenance.cached,
            items=provenance.items,
            seconds=provenance.seconds,
            reason=provenance.reason,
        )

    @property
    def label(self) -> str:
        """A short status for a display: ``cached``, ``ok (12 items)``, ``failed``, …"""
        if self.cached:
            return "cached"
        if self.status == "ok":
            return f"ok ({self.items} items)"
        return self.status


@dataclass(frozen=True)
class DecodeStarted:
    """One shared decode begins for `perceivers`, at `fps` frames a second (the faster stream's
    rate) over `duration` seconds of video."""

    level: int
    perceivers: tuple[str, ...]
    fps: float
    duration: float


@dataclass(frozen=True)
class FramesDecoded:
    """Decode progress: the video is decoded up to `position` seconds of `duration`; the fast
    and slow frames handed to the perceivers so far."""

    level: int
    position: float
    duration: float
    fast_frames: int
    slow_frames: int

    @property
    def fraction(self) -> float:
        """0..1 of the video decoded."""
        return min(1.0, self.position / self.duration) if self.duration > 0 else 1.0


@dataclass(frozen=True)
class DecodeFinished:
    """A decode ended (the video's end, or every reader stopped early)."""

    level: int
    fast_frames: int
    slow_frames: int
    warning: str | None = None


@dataclass(frozen=True)
class Done:
    """The run is over and `record` is what it returns; `seconds` since `Probed`."""

    record: VideoContext
    seconds: float


PipelineEvent = (
    Probed
    | LevelStarted
    | PerceiverStarted
    | PerceiverFinished
    | DecodeStarted
    | FramesDecoded
    | DecodeFinished
    | Done
)

OnEvent = Callable[[PipelineEvent], None]


class EventSink:
    """Delivers one run's events to its subscribers, one event at a time, in the order made.

    A subscriber that raises is logged (once, with its traceback at debug level) and dropped for
    the rest of the run; `failed` names those dropped.
    """

    def __init__(self, subscribers: Iterable[OnEvent]) -> None:
        self._subscribers = list(subscribers)
        self._lock = threading.Lock()
        self.failed: list[str] = []

    def __bool__(self) -> bool:
        return bool(self._subscribers)

    def emit(self, event: PipelineEvent) -> None:
        """Hand `event` to every subscriber still listening."""
        if not self._subscribers:
            return
        with self._lock:
            for sub in list(self._subscribers):
                try:
                    sub(event)
                except Exception as e:
                    self._subscribers.remove(sub)
                    name = getattr(sub, "__qualname__", None) or type(sub).__qualname__
                    self.failed.append(name)
                    log.warning(
                        "progress subscriber %s raised %s: %s on %s; it gets no more events of "
                        "this run (the run goes on)",
                        name, type(e).__name__, e, type(event).__name__,
                    )  # fmt: skip
                    log.debug("subscriber traceback", exc_info=True)
