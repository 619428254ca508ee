"""Batch textualization: many videos, one job, resumable, on a local process pool or on Ray.

`run_batch(inputs, outdir, ...)` textualizes every video named by `inputs` (files, folders walked
recursively by extension, or manifests: CSV or JSONL with an ``id`` and a ``path`` per row) and
writes, per video, ``<id>.json`` (the record) and ``<id>.txt`` (its rendering), each atomically.
After each video one line is appended (and fsynced) to ``manifest.jsonl``: id, input hash,
status, seconds per perceiver, error. ``summary.json`` is written at the end.

Statuses: ``ok``; ``degraded`` (a record was written but a perceiver failed, or was skipped
because it cannot run here: its package or weights are missing); ``failed`` (no
record: bad input, or the worker died twice on it); ``timeout`` (the worker was killed after
``timeout_per_video`` seconds). Anything but ``ok`` makes the job's exit code 1.

Workers build their `Pipeline` once (models loaded once, kept for every video). The job process
alone writes outputs, so both engines produce byte-identical records for the same inputs (the
provenance timings aside, see `comparable_record`). A video that hangs (a stuck ffmpeg or model)
is stopped by killing its worker process — with its process group, so ffmpeg goes too — and
replacing it; a worker that dies is replaced and its video retried once.

Resume (``resume=True``): a video is done when both its outputs exist, the record parses and its
``video.sha256`` equals the input's current hash; those are skipped. Anything else (no outputs,
only the ``.json``, a changed input, a failed video) is redone. Outputs are written ``.json``
first, ``.txt`` second, manifest line last; a job killed between the two files leaves a
``.json`` without ``.txt``, which resume treats as partial and redoes. A video whose outputs are
complete but whose manifest line was lost to the kill gets its line rebuilt from the record
(``"recovered": true``) instead of being redone.

Modules, one job each: `inputs` (files, folders, manifests → items with unique ids),
`results` (`VideoResult`, `BatchSummary`, `BatchError`), `worker` (what a worker does with one
video), `engine` (what the scheduler needs from an engine), `local_engine` (spawned processes),
`ray_engine` (Ray actors and their resources), `outputs` (the output folder, manifest and resume
state), `job` (`run_batch`: scheduling, retries, timeouts, progress).
"""

from __future__ import annotations

from vidchat.apps.batch.inputs import (
    MANIFEST_SUFFIXES,
    VIDEO_EXTENSIONS,
    BatchItem,
    collect_inputs,
    file_sha256,
    safe_id,
)
from vidchat.apps.batch.job import Engine, run_batch
from vidchat.apps.batch.outputs import MANIFEST_NAME, SUMMARY_NAME
from vidchat.apps.batch.ray_engine import (
    PerceiverResources,
    RayWorker,
    actor_resources,
    perceiver_resources,
)
from vidchat.apps.batch.results import (
    BatchError,
    BatchSummary,
    Status,
    VideoResult,
    comparable_record,
)
from vidchat.apps.batch.worker import process_video

__all__ = [
    "MANIFEST_NAME",
    "MANIFEST_SUFFIXES",
    "SUMMARY_NAME",
    "VIDEO_EXTENSIONS",
    "BatchError",
    "BatchItem",
    "BatchSummary",
    "Engine",
    "PerceiverResources",
    "RayWorker",
    "Status",
    "VideoResult",
    "actor_resources",
    "collect_inputs",
    "comparable_record",
    "file_sha256",
    "perceiver_resources",
    "process_video",
    "run_batch",
    "safe_id",
]
