"""Content-addressed cache of perceiver results.

Key: the record schema's major version, the video's SHA-256, the perceiver's name and version,
its options, its model identity, (for frame perceivers) the sampling, and (for perceivers that
read upstream results) the identity of each result it `requires`: the upstream entry's own key
and a digest of what it holds. Change any of them and the perceiver runs again, so a downstream
result (sam2 masks on ``person#N``) is never served against other upstream results (a detector
run with other options, model or sampling, or one that failed last time); change none and its
stored observations are reused. Entries are written atomically, so an interrupted run never
leaves a half entry that looks complete.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vidchat.kernel.models import cache_dir
from vidchat.kernel.record import (
    SCHEMA_VERSION,
    Event,
    ObjectMask,
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
    masks: list[ObjectMask] = Field(
        default_factory=list, description="masks of objects in the record (put on their tracks)"
    )

    def identity(self) -> str:
        """What a downstream perceiver's key folds in for this result: the entry's key plus a
        digest of its status and observations. The digest matters where the key alone cannot
        tell results apart: a failed run (never cached) and a later successful one share a key.
        """
        body = {
            "status": self.provenance.status,
            "objects": [o.model_dump(mode="json") for o in self.objects],
            "speech": [s.model_dump(mode="json") for s in self.speech],
            "events": [e.model_dump(mode="json") for e in self.events],
        }
        if self.masks:  # absent when empty: earlier entries keep their identity
            body["masks"] = [m.model_dump(mode="json") for m in self.masks]
        blob = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return f"{self.key}:{hashlib.sha256(blob.encode()).hexdigest()}"


def cache_key(
    video_sha256: str,
    name: str,
    version: str,
    options: dict,
    model_identity: str | None,
    sampling: dict | None,
    upstream: dict[str, str] | None = None,
) -> str:
    """Stable hex key for one perceiver run (sorted-key JSON, so dict order does not matter).

    `upstream` maps each perceiver named in `requires` to its result's `CacheEntry.identity`;
    a perceiver that requires nothing has no upstream part (its key is unchanged by this).
    """
    payload: dict[str, object] = {
        "schema": SCHEMA_VERSION.split(".")[0],
        "video": video_sha256,
        "perceiver": name,
        "version": version,
        "options": options,
        "model": model_identity,
        "sampling": sampling,
    }
    if upstream:
        payload["upstream"] = upstream
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
