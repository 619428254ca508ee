"""What a batch job produces: a `VideoResult` per video (one manifest line), the job's
`BatchSummary`, and `BatchError` for a job that cannot start or go on.

`comparable_record` strips from a record what legitimately differs between two runs of the
same job (timings, cache flags), so outputs of both engines and of resumed runs compare equal.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vidchat.kernel.errors import VidchatError

if TYPE_CHECKING:
    from vidchat.apps.batch.inputs import BatchItem

__all__ = [
    "BatchError",
    "BatchSummary",
    "Status",
    "VideoResult",
    "comparable_record",
    "result_from_record",
]

Status = Literal["ok", "degraded", "failed", "timeout"]


class BatchError(VidchatError):
    """The job cannot start or go on (bad inputs list, unwritable output folder, full disk)."""


class VideoResult(BaseModel):
    """What a worker returns for one video; the manifest line is this minus record and text."""

    model_config = ConfigDict(extra="forbid")

    id: str
    path: str
    sha256: str | None = None
    status: Status
    seconds: dict[str, float] = Field(default_factory=dict, description="per perceiver")
    total_seconds: float = 0.0
    error: str | None = None
    attempts: int = 1
    worker: str | None = None
    recovered: bool = False
    record: str | None = Field(None, description="the record JSON (not in the manifest)")
    text: str | None = Field(None, description="the rendering (not in the manifest)")

    def manifest_line(self) -> dict[str, Any]:
        """The manifest's line for this video: everything but record and text, plus when."""
        line = self.model_dump(exclude={"record", "text"})
        line["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        return line


def result_from_record(item: BatchItem, record_json: str, text: str | None) -> VideoResult:
    """The result of a video whose record was made: ``degraded`` when a perceiver failed or
    could not run here (the error names each), else ``ok``."""
    from vidchat.kernel.record import VideoContext

    ctx = VideoContext.from_json(record_json)
    # A perceiver that failed or could not run here leaves the record without its part.
    failed = [p for p in ctx.provenance if p.degraded]
    return VideoResult(
        id=item.id,
        path=item.path,
        sha256=ctx.video.sha256,
        status="degraded" if failed else "ok",
        seconds={p.name: p.seconds for p in ctx.provenance},
        error="; ".join(f"{p.name}: {p.reason}" for p in failed) or None,
        record=record_json,
        text=text,
    )


def comparable_record(record_json: str | dict[str, Any]) -> dict[str, Any]:
    """A record as a dict without what legitimately differs between two runs of the same job:
    each perceiver's ``seconds`` and ``cached`` flag (a resumed or repeated run reuses cached
    results and takes other times). Everything else — video facts, objects, speech, events,
    provenance status/reason/options/model/items — must be equal."""
    data = (
        json.loads(record_json)
        if isinstance(record_json, str)
        else json.loads(json.dumps(record_json))
    )
    for p in data.get("provenance", []):
        p.pop("seconds", None)
        p.pop("cached", None)
    return data


class BatchSummary(BaseModel):
    """The job's outcome (also written to ``summary.json``)."""

    total: int
    ok: int = 0
    degraded: int = 0
    failed: int = 0
    timeout: int = 0
    skipped: int = Field(0, description="already done (resume)")
    recovered: int = Field(0, description="done before, manifest line rebuilt (resume)")
    seconds: float = 0.0
    videos_per_minute: float = 0.0
    engine: str
    workers: int
    resources: dict[str, float] = Field(default_factory=dict)
    not_ok: dict[str, str] = Field(default_factory=dict, description="id -> status: error")

    @property
    def exit_code(self) -> int:
        """0 when every video is ok, 1 otherwise."""
        return 0 if (self.degraded + self.failed + self.timeout) == 0 else 1
