"""Progress for a stderr that is not a terminal: plain, periodic lines (batch logs, CI,
services), where a live progress bar would print nothing until the end."""

from __future__ import annotations

import os
import sys
import time

__all__ = ["PROGRESS_INTERVAL_S", "PlainProgress", "stderr_is_terminal"]

PROGRESS_INTERVAL_S = 10.0  # plain progress lines (stderr not a terminal): at most one this often


class PlainProgress:
    """Progress as plain lines for a stderr that is not a terminal (batch logs, CI, services):
    each perceiver's status when it changes, the decode position at most every `interval` s."""

    def __init__(self, interval: float | None = None) -> None:
        env = os.environ.get("VIDCHAT_PROGRESS_INTERVAL")
        try:
            default = float(env) if env else PROGRESS_INTERVAL_S
        except ValueError:
            default = PROGRESS_INTERVAL_S
        self.interval = default if interval is None else interval
        self.total: dict[str, float | None] = {}
        self.last_line = -float("inf")
        self.t0 = time.monotonic()

    def _say(self, text: str) -> None:
        print(f"vidchat: [{time.monotonic() - self.t0:6.1f} s] {text}", file=sys.stderr, flush=True)

    def task(self, name: str, total: float | None, status: str = "") -> None:
        self.total[name] = total
        if name == "decode":
            self._say(f"decode: started ({status})" if status else "decode: started")
        elif status:
            self._say(f"{name}: {status}")

    def update(self, name: str, completed: float | None = None, status: str | None = None) -> None:
        if name == "decode":
            now = time.monotonic()
            total = self.total.get("decode")
            if status is not None:
                self._say(f"decode: {status}")
            elif completed is not None and now - self.last_line >= self.interval:
                self.last_line = now
                pct = f" ({100 * completed / total:.0f}%)" if total else ""
                self._say(f"decode: {completed:.1f} of {total or 0:.1f} s{pct}")
        elif status is not None:
            self._say(f"{name}: {status}")


def stderr_is_terminal() -> bool:
    """Whether stderr is a terminal (False when it is replaced, closed or redirected)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False
