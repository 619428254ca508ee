"""The pipeline's progress events (``Pipeline.run(on_event=...)``) and its public plan of
dependency levels, on real small videos with the toy perceivers (no models)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from vidchat.kernel.errors import ConfigError
from vidchat.kernel.record import Event
from vidchat.perceivers import register_perceiver
from vidchat.perceivers.base import Availability, Media, Perceiver
from vidchat.pipeline import events as ev
from vidchat.pipeline.core import Pipeline, plan_levels
from vidchat.pipeline.profiles import parse_profile
from vidchat.pipeline.progress import PlainProgress, RichProgress, finished_label
from vidchat.testing import videos


def profile(perceivers: dict) -> object:
    return parse_profile(
        {"name": "toy", "perceivers": perceivers, "sampling": {"slow_fps": 1.0, "fast_fps": 4.0}}
    )


class Recorder:
    """Keeps every event; notes when two deliveries overlap (they must not)."""

    def __init__(self) -> None:
        self.events: list[ev.PipelineEvent] = []
        self.busy = threading.Lock()
        self.overlapped = False

    def __call__(self, event: ev.PipelineEvent) -> None:
        if not self.busy.acquire(blocking=False):
            self.overlapped = True
            return
        try:
            self.events.append(event)
        finally:
            self.busy.release()

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]

    def index(self, kind: type, **fields: object) -> int:
        for i, e in enumerate(self.events):
            if isinstance(e, kind) and all(getattr(e, k) == v for k, v in fields.items()):
                return i
        raise AssertionError(f"no {kind.__name__} with {fields} in {self.events}")


@pytest.fixture
def clip(tmp_path):
    return videos.no_audio(tmp_path)  # 2.0 s, no audio track


def test_events_arrive_in_order(toys, cache_dir, clip):
    rec = Recorder()
    pipe = Pipeline(profile({"counter": None, "brightness": None, "loudness": None}))
    assert pipe.plan == [["brightness", "loudness"], ["counter"]]
    ctx = pipe.run(clip, on_event=rec)
    kinds = [type(e).__name__ for e in rec.events]
    assert not rec.overlapped
    # Probed first with the plan, Done last with the very record returned.
    probed, done = rec.events[0], rec.events[-1]
    assert isinstance(probed, ev.Probed) and isinstance(done, ev.Done)
    assert probed.levels == (("brightness", "loudness"), ("counter",))
    assert probed.info.duration == pytest.approx(2.0, abs=0.1)
    assert done.record is ctx and done.seconds >= 0
    assert kinds.count("Probed") == kinds.count("Done") == 1
    # Levels in order; everything of a level after its LevelStarted and before the next one.
    lv0, lv1 = rec.index(ev.LevelStarted, index=0), rec.index(ev.LevelStarted, index=1)
    assert rec.events[lv0] == ev.LevelStarted(0, 2, ("brightness", "loudness"))
    for name, level in (("brightness", 0), ("loudness", 0), ("counter", 1)):
        started = rec.index(ev.PerceiverStarted, name=name)
        finished = rec.index(ev.PerceiverFinished, name=name)
        lo, hi = (lv0, lv1) if level == 0 else (lv1, len(rec.events) - 1)
        assert lo < started < finished < hi, (name, kinds)
        assert len([e for e in rec.of(ev.PerceiverFinished) if e.name == name]) == 1
    # What each result was: loudness found no audio (a skip, not a failure).
    finished = {e.name: e for e in rec.of(ev.PerceiverFinished)}
    assert finished["brightness"].status == "ok" and finished["brightness"].items == 3
    assert finished["loudness"].status == "skipped"
    assert finished["loudness"].reason == "video has no audio track"
    assert finished["counter"].items == 1 and finished["counter"].level == 1
    prov = {p.name: p for p in ctx.provenance}
    assert finished["brightness"].seconds == prov["brightness"].seconds
    # One decode, for level 0's frame reader only (loudness reads audio; counter reads nothing).
    (start,) = rec.of(ev.DecodeStarted)
    (end,) = rec.of(ev.DecodeFinished)
    assert start.perceivers == ("brightness",) and start.fps == 4.0 and start.level == 0
    frames = rec.of(ev.FramesDecoded)
    first, last = (
        rec.index(ev.FramesDecoded),
        max(i for i, e in enumerate(rec.events) if isinstance(e, ev.FramesDecoded)),
    )
    assert rec.index(ev.DecodeStarted) < first <= last < rec.index(ev.DecodeFinished) < lv1
    assert [f.fast_frames for f in frames] == list(range(1, len(frames) + 1))
    positions = [f.position for f in frames]
    assert positions == sorted(positions) and frames[-1].fraction > 0.8
    fast = next(e for e in ctx.events if e.kind == "fast_frames")
    assert end.fast_frames == int(fast.text) == len(frames)
    assert end.slow_frames == 2 and end.warning is None


def test_cache_hits_and_separate_decodes(toys, cache_dir, clip):
    prof = profile({"brightness": None, "marker": None})
    Pipeline(prof).run(clip)
    rec = Recorder()
    Pipeline(prof).run(clip, on_event=rec)
    # Served from the cache: finished (cached) without starting, and nothing decoded.
    assert not rec.of(ev.PerceiverStarted) and not rec.of(ev.DecodeStarted)
    assert [(e.name, e.cached, finished_label(e)) for e in rec.of(ev.PerceiverFinished)] == [
        ("brightness", True, "cached"),
        ("marker", True, "cached"),
    ]
    # shared_decode=False: one decode per frame-reading perceiver, each announced.
    rec = Recorder()
    prof = profile({"brightness": None, "broken": None})
    Pipeline(prof, cache=False, shared_decode=False).run(clip, on_event=rec)
    assert [e.perceivers for e in rec.of(ev.DecodeStarted)] == [("brightness",), ("broken",)]
    broken = next(e for e in rec.of(ev.PerceiverFinished) if e.name == "broken")
    assert broken.status == "failed" and "model exploded on frame 2" in (broken.reason or "")
    assert finished_label(broken) == "failed (0 items)"


class _Unavailable(Perceiver):
    name = "needs_weights"
    version = "1"
    inputs = frozenset({"fast"})

    def availability(self) -> Availability:
        return Availability(False, "weights not found at /nowhere/model.pt")

    def perceive(self, media: Media) -> Iterator[Event]:
        raise AssertionError("an unavailable perceiver must not run")


def test_unavailable_perceiver_finishes_without_starting(toys, cache_dir, clip):
    register_perceiver("needs_weights", _Unavailable)
    rec = Recorder()
    Pipeline(profile({"needs_weights": None}), cache=False).run(clip, on_event=rec)
    (fin,) = rec.of(ev.PerceiverFinished)
    assert fin.status == "skipped" and not rec.of(ev.PerceiverStarted)
    assert finished_label(fin) == "skipped (unavailable: weights not found at /nowhere/model.pt)"


def test_a_failing_subscriber_does_not_break_the_run(toys, cache_dir, clip, caplog):
    calls: list[str] = []

    def broken(event: ev.PipelineEvent) -> None:
        calls.append(type(event).__name__)
        if isinstance(event, ev.FramesDecoded):
            raise RuntimeError("display went away")

    rec = Recorder()
    with caplog.at_level(logging.WARNING, logger="vidchat.pipeline"):
        ctx = Pipeline(profile({"brightness": None}), cache=False).run(clip, on_event=[broken, rec])
    assert any(e.kind == "brightness" for e in ctx.events)  # the record is whole
    # The failing subscriber is dropped after its first failure; the others get everything.
    assert calls[-1] == "FramesDecoded" and calls.count("FramesDecoded") == 1
    assert isinstance(rec.events[-1], ev.Done) and len(rec.of(ev.FramesDecoded)) > 1
    (warning,) = [r for r in caplog.records if "progress subscriber" in r.message]
    assert "RuntimeError: display went away on FramesDecoded" in warning.message
    assert "gets no more events of this run" in warning.message


def test_stderr_displays_are_subscribers(toys, cache_dir, clip, capsys, monkeypatch):
    monkeypatch.setenv("VIDCHAT_PROGRESS_INTERVAL", "0")
    rec = Recorder()
    Pipeline(profile({"brightness": None}), cache=False).run(clip, on_event=rec)
    with PlainProgress() as plain:
        for e in rec.events:
            plain(e)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].endswith("brightness: running")
    assert lines[1].endswith("decode: started (4 fps)")
    assert any(" of 2.0 s (" in ln for ln in lines)
    assert lines[-1].endswith("brightness: ok (3 items)")
    with RichProgress() as rich:  # not a terminal here: rich prints the final state
        for e in rec.events:
            rich(e)
    err = capsys.readouterr().err
    assert "brightness" in err and "ok (3 items)" in err and "slow frames" in err


def test_plan_levels():
    class P:
        def __init__(self, name: str, *requires: str) -> None:
            self.name, self.requires = name, requires

    a, b, c, d = P("a"), P("b", "a"), P("c"), P("d", "b", "c")
    assert plan_levels([d, c, b, a]) == [["c", "a"], ["b"], ["d"]]
    # A mapping names each entry by its key (the name it is registered under).
    assert plan_levels({"x": a, "y": P("ignored", "x")}) == [["x"], ["y"]]
    with pytest.raises(ConfigError, match="perceiver b requires a, which the profile does not"):
        plan_levels([b])
    assert plan_levels([b, d], given={"a", "c"}) == [["b"], ["d"]]  # a zoom: a, c from the record
    with pytest.raises(ConfigError, match="in a cycle: e, f"):
        plan_levels([P("e", "f"), P("f", "e")])
    assert plan_levels([]) == []


def test_plan_of_real_perceiver_classes():
    from vidchat.perceivers import get_perceiver

    classes = {n: get_perceiver(n) for n in ("sam2", "detect", "asr", "region_caption")}
    assert plan_levels(classes) == [["detect", "asr"], ["sam2", "region_caption"]]
