"""Content-addressed cache of perceiver results.

Key: the record schema's major version, the video's SHA-256, the perceiver's name and version,
its options, its model identity and (for frame perceivers) the sampling. Change any of them and
the perceiver runs again; change none and its stored observations are reused. Entries are
written atomically, so an interrupted run never leaves a half entry that looks complete.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.models import cache_dir
from orchestrator.record import (
    SCHEMA_VERSION,
    Event,
    ObjectTrack,
    Provenance,
    SpeechSegment,
    atomic_write_text,
)


class CacheEntry(BaseModel):
    """One perceiver's result on one video."""

    model_config = ConfigDict(extra="forbid")

    key: str
    provenance: Provenance
    objects: list[ObjectTrack] = Field(default_factory=list)
    speech: list[SpeechSegment] = Field(default_factory=list)
    events: list[Event] = Field(default_factory=list)


def cache_key(
    video_sha256: str,
    name: str,
    version: str,
    options: dict,
    model_identity: str | None,
    sampling: dict | None,
) -> str:
    """Stable hex key for one perceiver run (sorted-key JSON, so dict order does not matter)."""
    payload = {
        "schema": SCHEMA_VERSION.split(".")[0],
        "video": video_sha256,
        "perceiver": name,
        "version": version,
        "options": options,
        "model": model_identity,
        "sampling": sampling,
    }
    blob = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


class Cache:
    """Perceiver results on disk under ``<root>/<key[:2]>/<key>.json``."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root else cache_dir() / "results"

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> CacheEntry | None:
        """The stored entry, or None (missing, unreadable or from an older schema: recompute)."""
        p = self._path(key)
        try:
            entry = CacheEntry.model_validate_json(p.read_bytes())
        except (OSError, ValidationError, ValueError):
            return None
        return entry if entry.key == key else None

    def put(self, entry: CacheEntry) -> None:
        atomic_write_text(self._path(entry.key), entry.model_dump_json())
