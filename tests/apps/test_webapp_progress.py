"""The web app's job progress is a subscriber of the pipeline's events: every perceiver of the
plan is listed from the start (waiting), then running, then its result; the decode share grows
to the whole video. A toy pipeline on a generated clip (no server, no models)."""

from __future__ import annotations

from pathlib import Path

from vidchat.apps.webapp import Job, _JobProgress
from vidchat.pipeline import events as ev
from vidchat.pipeline.core import Pipeline
from vidchat.pipeline.profiles import parse_profile
from vidchat.testing import videos


def test_job_progress_follows_the_pipeline_events(toys, cache_dir, tmp_path):
    clip = videos.no_audio(tmp_path)
    job = Job(id="j", source=Path(clip), profile="toy", llm="local")
    seen: list[dict[str, str]] = []
    decode: list[float] = []
    progress = _JobProgress(job)

    def watch(event: ev.PipelineEvent) -> None:
        progress(event)
        seen.append(dict(job.perceivers))
        decode.append(job.decode)

    prof = parse_profile({"name": "toy", "perceivers": {"brightness": None, "counter": None}})
    Pipeline(prof, cache=False).run(clip, on_event=watch)
    # Probed lists the whole plan at once, later levels included.
    assert seen[0] == {"brightness": "waiting", "counter": "waiting"}
    assert {"brightness": "running", "counter": "waiting"} in seen
    assert job.perceivers == {"brightness": "ok (3 items)", "counter": "ok (1 items)"}
    assert decode == sorted(decode) and decode[-1] > 0.8
    # Served from the cache the second time: shown as such, nothing runs.
    job2 = Job(id="k", source=Path(clip), profile="toy", llm="local")
    Pipeline(prof).run(clip)
    Pipeline(prof).run(clip, on_event=_JobProgress(job2))
    assert job2.perceivers == {"brightness": "cached", "counter": "cached"}
