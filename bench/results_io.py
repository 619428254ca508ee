"""Writing a benchmark's results file: one place, atomic (a bench killed while writing leaves the
previous results, never half a JSON file), UTF-8, one trailing newline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["write_results"]


def write_results(path: str | Path, data: Any) -> Path:
    """Write `data` as indented JSON to `path` atomically (missing folders are created)."""
    from vidchat.kernel.record import atomic_write_text

    return atomic_write_text(Path(path), json.dumps(data, indent=1, ensure_ascii=False) + "\n")
