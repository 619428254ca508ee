"""The work one worker does, on either engine: build the `Pipeline` once (models loaded once,
kept for every video), then textualize and render one video at a time. A bad input becomes a
failed result; the job goes on.

Workers return results; only the job process writes outputs, so both engines produce
byte-identical records for the same inputs.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from vidchat.apps.batch.inputs import BatchItem, file_sha256
from vidchat.apps.batch.results import VideoResult, result_from_record
from vidchat.kernel.errors import VidchatError

if TYPE_CHECKING:
    from vidchat.pipeline.core import Pipeline
    from vidchat.pipeline.profiles import Profile

__all__ = ["init_worker", "process_video"]

log = logging.getLogger("vidchat.batch")


def process_video(pipeline: Pipeline, item: BatchItem, worker: str | None = None) -> VideoResult:
    """Textualize and render one video in a worker; a bad input becomes a failed result."""
    from vidchat.text.render import render

    t0 = time.perf_counter()
    try:
        ctx = pipeline.run(item.path)
        prof = pipeline.profile
        text = render(ctx, budget_tokens=prof.render.budget_tokens, window_s=prof.render.window_s)
        result = result_from_record(item, ctx.to_json(), text.text)
    except VidchatError as e:
        result = VideoResult(id=item.id, path=item.path, status="failed", error=str(e))
    except Exception as e:  # a bug or a library crash on this input: recorded, the job goes on
        log.debug("video %s failed", item.path, exc_info=True)
        msg = f"{type(e).__name__}: {e}".strip().splitlines()[0]
        result = VideoResult(id=item.id, path=item.path, status="failed", error=msg)
    if result.sha256 is None:
        result.sha256 = file_sha256(item.path)
    result.total_seconds = round(time.perf_counter() - t0, 3)
    result.worker = worker
    _limit_torch_threads()
    return result


def _limit_torch_threads() -> None:
    """Keep torch at this worker's share of the cores (N workers x all cores oversubscribes)."""
    import sys

    n = os.environ.get("VIDCHAT_WORKER_THREADS")
    torch = sys.modules.get("torch")
    if n and torch is not None and torch.get_num_threads() != int(n):
        torch.set_num_threads(int(n))


def init_worker(
    profile: Profile, cache: bool, setup: Callable[[], None] | None, threads: int
) -> Pipeline:
    """Build the worker's Pipeline once and load its models (kept for every video)."""
    # Before torch/onnx/BLAS are imported: they size their thread pools from these.
    os.environ["VIDCHAT_WORKER_THREADS"] = str(threads)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    if setup is not None:
        setup()
    from vidchat.pipeline.core import Pipeline

    pipeline = Pipeline(profile, cache=cache, progress=False)
    for p in pipeline.perceivers:
        try:
            if p.availability().ok:
                p.ensure_loaded()
        except Exception:  # the pipeline records it per video, as a failed perceiver
            log.debug("loading %s failed", p.name, exc_info=True)
    _limit_torch_threads()
    return pipeline
