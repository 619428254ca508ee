"""Progress displays of a pipeline run on stderr, as subscribers of its events
(`vidchat.pipeline.events`): a live rich bar on a terminal, plain periodic lines otherwise
(batch logs, CI, services), where a live bar would print nothing until the end."""

from __future__ import annotations

import os
import sys
import time
from types import TracebackType
from typing import Any

from vidchat.kernel.record import UNAVAILABLE
from vidchat.pipeline.events import (
    DecodeFinished,
    DecodeStarted,
    FramesDecoded,
    PerceiverFinished,
    PerceiverStarted,
    PipelineEvent,
    Probed,
)

__all__ = [
    "PROGRESS_INTERVAL_S",
    "PlainProgress",
    "RichProgress",
    "finished_label",
    "stderr_display",
    "stderr_is_terminal",
]

PROGRESS_INTERVAL_S = 10.0  # plain progress lines (stderr not a terminal): at most one this often


def finished_label(event: PerceiverFinished) -> str:
    """How a display shows a finished perceiver: ``cached``, ``ok (12 items)``,
    ``skipped (unavailable: …)``."""
    if event.cached:
        return "cached"
    if (event.reason or "").startswith(UNAVAILABLE):
        return f"{event.status} ({event.reason})"
    return f"{event.status} ({event.items} items)"


class PlainProgress:
    """Progress as plain lines for a stderr that is not a terminal (batch logs, CI, services):
    each perceiver's status when it changes, the decode position at most every `interval` s
    (default: ``$VIDCHAT_PROGRESS_INTERVAL`` or `PROGRESS_INTERVAL_S`)."""

    def __init__(self, interval: float | None = None) -> None:
        env = os.environ.get("VIDCHAT_PROGRESS_INTERVAL")
        try:
            default = float(env) if env else PROGRESS_INTERVAL_S
        except ValueError:
            default = PROGRESS_INTERVAL_S
        self.interval = default if interval is None else interval
        self.last_line = -float("inf")
        self.t0 = time.monotonic()

    def _say(self, text: str) -> None:
        print(f"vidchat: [{time.monotonic() - self.t0:6.1f} s] {text}", file=sys.stderr, flush=True)

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __call__(self, event: PipelineEvent) -> None:
        if isinstance(event, DecodeStarted):
            self._say(f"decode: started ({event.fps:g} fps)")
        elif isinstance(event, FramesDecoded):
            now = time.monotonic()
            if now - self.last_line >= self.interval:
                self.last_line = now
                pct = f" ({100 * event.fraction:.0f}%)" if event.duration > 0 else ""
                self._say(f"decode: {event.position:.1f} of {event.duration:.1f} s{pct}")
        elif isinstance(event, DecodeFinished):
            self._say(f"decode: {event.fast_frames} fast, {event.slow_frames} slow frames")
        elif isinstance(event, PerceiverStarted):
            self._say(f"{event.name}: running")
        elif isinstance(event, PerceiverFinished):
            self._say(f"{event.name}: {finished_label(event)}")


class RichProgress:
    """A rich progress display on stderr: one row per perceiver of the plan (waiting, running,
    its result) and a bar per decode. Use it as a context manager around the run."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._p = Progress(
            TextColumn("{task.description:<14}"),
            BarColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._tasks: dict[str, Any] = {}
        self._decode: Any = None

    def __enter__(self) -> RichProgress:
        self._p.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._p.__exit__(exc_type, exc, tb)

    def _row(self, name: str) -> Any:
        if name not in self._tasks:
            self._tasks[name] = self._p.add_task(name, total=1, status="waiting")
        return self._tasks[name]

    def __call__(self, event: PipelineEvent) -> None:
        if isinstance(event, Probed):
            for level in event.levels:
                for name in level:
                    self._row(name)
        elif isinstance(event, PerceiverStarted):
            self._p.update(self._row(event.name), status="running")
        elif isinstance(event, PerceiverFinished):
            self._p.update(self._row(event.name), completed=1, status=finished_label(event))
        elif isinstance(event, DecodeStarted):
            self._decode = self._p.add_task(
                "decode", total=max(event.duration, 1e-3), status=f"{event.fps:g} fps"
            )
        elif isinstance(event, FramesDecoded) and self._decode is not None:
            self._p.update(self._decode, completed=min(event.position, event.duration))
        elif isinstance(event, DecodeFinished) and self._decode is not None:
            task = next(t for t in self._p.tasks if t.id == self._decode)
            self._p.update(
                self._decode,
                completed=task.total,
                status=f"{event.fast_frames} fast, {event.slow_frames} slow frames",
            )


def stderr_display() -> PlainProgress | RichProgress:
    """The progress display for this process's stderr: a rich bar on a terminal, plain lines
    otherwise. A context manager and an event subscriber."""
    return RichProgress() if stderr_is_terminal() else PlainProgress()


def stderr_is_terminal() -> bool:
    """Whether stderr is a terminal (False when it is replaced, closed or redirected)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False
