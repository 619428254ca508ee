"""The pipeline's mechanics on real videos with toy perceivers (no models)."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from vidchat.kernel.errors import ConfigError, InputError
from vidchat.kernel.record import VideoContext
from vidchat.kernel.samples import sample_path
from vidchat.pipeline.core import Pipeline, PipelineError
from vidchat.pipeline.profiles import parse_profile


def profile(perceivers, **sampling):
    return parse_profile(
        {
            "name": "toy",
            "perceivers": perceivers,
            "sampling": {"slow_fps": 1.0, "fast_fps": 4.0, **sampling},
        }
    )


def test_shared_decode_gives_two_rates_with_true_times(toys, cache_dir):
    ctx = Pipeline(profile({"brightness": None}), cache=False).run(sample_path("bigbuckbunny"))
    slow = [e for e in ctx.events if e.kind == "brightness"]
    fast = next(e for e in ctx.events if e.kind == "fast_frames")
    # bigbuckbunny: 5.3 s at 25 fps, 1280x720.
    assert [round(e.start, 2) for e in slow] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert all(e.data["w"] == 1280 for e in slow)  # slow stream: full resolution
    assert fast.data["w"] == 640  # fast stream: downscaled
    times = [float(t) for t in str(fast.data["times"]).split(",")]
    assert 20 <= len(times) <= 23
    assert all(b > a for a, b in itertools.pairwise(times))
    # every frame's time is a real frame time (multiple of 1/25 s)
    assert all(abs(t * 25 - round(t * 25)) < 1e-3 for t in times)


def test_failure_is_isolated_and_strict_makes_it_fatal(toys, cache_dir):
    prof = profile({"brightness": None, "broken": None, "loudness": None})
    ctx = Pipeline(prof, cache=False).run(sample_path("bigbuckbunny"))
    status = {p.name: p for p in ctx.provenance}
    assert status["broken"].status == "failed"
    assert "model exploded on frame 2" in status["broken"].reason
    assert status["brightness"].status == "ok" and status["loudness"].status == "ok"
    assert any(e.kind == "brightness" for e in ctx.events)
    with pytest.raises(PipelineError, match="broken failed"):
        Pipeline(prof, cache=False, strict=True).run(sample_path("bigbuckbunny"))


def test_audio_once_and_skip_without_audio(toys, cache_dir):
    prof = profile({"loudness": None})
    ctx = Pipeline(prof, cache=False).run(sample_path("bigbuckbunny"))
    ev = next(e for e in ctx.events if e.kind == "loudness")
    assert abs(ev.data["samples"] / 16000 - 5.31) < 0.1 and float(ev.text) > 0.01
    ctx = Pipeline(prof, cache=False).run(sample_path("bikes"))
    (p,) = ctx.provenance
    assert p.status == "skipped" and p.reason == "video has no audio track"


def test_dependencies_run_in_order(toys, cache_dir):
    ctx = Pipeline(profile({"counter": None, "brightness": None}), cache=False).run(
        sample_path("bigbuckbunny")
    )
    count = next(e for e in ctx.events if e.kind == "count")
    assert count.text == "6"
    with pytest.raises(ConfigError, match="requires brightness"):
        Pipeline(profile({"counter": None}))


def test_cache_hit_reuses_results(toys, cache_dir):
    prof = profile({"brightness": None})
    toys.Brightness.calls = 0
    t0 = time.perf_counter()
    a = Pipeline(prof).run(sample_path("bigbuckbunny"))
    cold = time.perf_counter() - t0
    b = Pipeline(prof).run(sample_path("bigbuckbunny"))
    assert toys.Brightness.calls == 1
    assert b.provenance[0].cached and not a.provenance[0].cached
    assert a.events == b.events
    # changing an option or the sampling invalidates the entry
    Pipeline(profile({"brightness": {"every": 2}})).run(sample_path("bigbuckbunny"))
    Pipeline(profile({"brightness": None}, fast_fps=2.0)).run(sample_path("bigbuckbunny"))
    assert toys.Brightness.calls == 3
    assert cold > 0


def _count_run(prof):
    """Run a brightness → counter profile: (counter's count, {name: cached?})."""
    ctx = Pipeline(prof).run(sample_path("bigbuckbunny"))
    count = next(e for e in ctx.events if e.kind == "count")
    return int(count.text), {p.name: p.cached for p in ctx.provenance}


def test_downstream_cache_follows_its_upstream_results(toys, cache_dir):
    both = {"brightness": None, "counter": None}
    assert _count_run(profile(both)) == (6, {"brightness": False, "counter": False})
    assert _count_run(profile(both)) == (6, {"brightness": True, "counter": True})
    # An upstream option, or the sampling only the upstream reads (counter reads no frames),
    # changes what counter reads: it must run again, not come back with the old count.
    every2 = {"brightness": {"every": 2}, "counter": None}
    assert _count_run(profile(every2)) == (3, {"brightness": False, "counter": False})
    assert _count_run(profile(both, slow_fps=2.0)) == (11, {"brightness": False, "counter": False})
    # Back to the first settings: both entries are still there and both are hits again.
    assert _count_run(profile(both)) == (6, {"brightness": True, "counter": True})


def test_downstream_of_a_failed_upstream_runs_again_when_it_recovers(toys, cache_dir, monkeypatch):
    both = profile({"brightness": None, "counter": None})
    with monkeypatch.context() as m:
        m.setattr(toys.Brightness, "perceive", lambda self, media: iter([1 / 0]))
        ctx = Pipeline(both).run(sample_path("bigbuckbunny"))
    assert [p.status for p in ctx.provenance] == ["failed", "ok"]
    assert next(e for e in ctx.events if e.kind == "count").text == "0"
    # The failure was not cached and brightness succeeds now (same key as the failed run):
    # counter's cached "0" must not come back.
    assert _count_run(both) == (6, {"brightness": False, "counter": False})


def test_events_naming_objects_nobody_produced_are_refused(toys, cache_dir, monkeypatch):
    prof = profile({"brightness": None, "marker": None})
    ctx = Pipeline(prof, cache=False).run(sample_path("bigbuckbunny"))
    assert [o.id for o in ctx.objects][:2] == ["spot#1", "spot#2"]
    assert sum(e.kind == "mark" for e in ctx.events) == 6
    monkeypatch.setattr(toys.Marker, "own_objects", False)
    ctx = Pipeline(prof, cache=False).run(sample_path("bigbuckbunny"))
    marker = ctx.provenance[1]
    assert marker.status == "failed"
    assert marker.reason.startswith("events name object ids not in the record: ['spot#1'")
    assert not any(e.kind == "mark" for e in ctx.events) and not ctx.objects
    assert VideoContext.from_json(ctx.to_json()) == ctx  # the record stays valid


def test_bad_options_name_perceiver_and_key(toys):
    with pytest.raises(ConfigError, match=r"brightness.*unknown key 'evry'"):
        profile({"brightness": {"evry": 2}})
    with pytest.raises(ConfigError, match="unknown perceiver 'nope'"):
        profile({"nope": None})


def test_missing_and_directory_inputs(toys, tmp_path, cache_dir):
    pipe = Pipeline(profile({"brightness": None}), cache=False)
    with pytest.raises(InputError, match="no such file"):
        pipe.run(tmp_path / "missing.mp4")
    with pytest.raises(InputError, match="is a directory"):
        pipe.run(tmp_path)


def test_two_streams_must_be_read_together(toys, cache_dir, monkeypatch):
    """Reading one declared stream alone would hold the other in memory: refused clearly."""

    def bad(self, media):
        yield from ()
        list(media.frames("fast"))

    monkeypatch.setattr(toys.Brightness, "perceive", bad)
    ctx = Pipeline(profile({"brightness": None}), cache=False).run(sample_path("bikes"))
    assert ctx.provenance[0].status == "failed"
    assert "frames_all()" in ctx.provenance[0].reason


@pytest.mark.parametrize(
    ("shared", "parallel", "decodes", "at_once"),
    [(True, True, 1, None), (True, False, 1, 1), (False, True, 2, 1)],
    ids=["shared-parallel", "shared-in-turn", "naive"],
)
def test_one_decode_for_all_frame_perceivers(
    toys, cache_dir, monkeypatch, shared, parallel, decodes, at_once
):
    import vidchat.pipeline.core as pl

    calls = []
    real = pl.decode_frames

    def counting(*a, **kw):
        calls.append(a)
        return real(*a, **kw)

    # How many perceivers are inside `perceive` at the same time (the most seen).
    lock, active, most = threading.Lock(), [0], [0]

    def tracked(perceive):
        def run(self, media):
            with lock:
                active[0] += 1
                most[0] = max(most[0], active[0])
            try:
                yield from perceive(self, media)
            finally:
                with lock:
                    active[0] -= 1

        return run

    for toy in (toys.Brightness, toys.Broken, toys.Loudness):
        monkeypatch.setattr(toy, "perceive", tracked(toy.perceive))
    monkeypatch.setattr(pl, "decode_frames", counting)
    prof = profile({"brightness": None, "broken": None, "loudness": None})
    pipe = Pipeline(prof, cache=False, shared_decode=shared, parallel=parallel)
    ctx = pipe.run(sample_path("bigbuckbunny"))
    assert len(calls) == decodes
    if at_once is not None:  # one after another; in parallel it depends on the scheduler
        assert most[0] == at_once
    # Every mode hands brightness all its frames of both streams.
    assert sum(e.kind == "brightness" for e in ctx.events) == 6
    assert 20 <= int(next(e.text for e in ctx.events if e.kind == "fast_frames")) <= 23
    assert {p.name: p.status for p in ctx.provenance} == {
        "brightness": "ok",
        "broken": "failed",
        "loudness": "ok",
    }


@pytest.mark.slow
def test_real_ocr_with_use_shots_runs_again_when_shots_changes(cache_dir):
    """The issue's own case with the real perceivers: ocr reads the shots' cuts, so changing only
    shots' options must not bring ocr back from the cache."""

    def run(threshold):
        prof = profile({"shots": {"detector": "content", "threshold": threshold},
                        "ocr": {"use_shots": True}}, fast_fps=2.0)  # fmt: skip
        ctx = Pipeline(prof).run(sample_path("megamind"))
        return {p.name: (p.status, p.cached) for p in ctx.provenance}

    assert run(27.0) == {"shots": ("ok", False), "ocr": ("ok", False)}
    assert run(27.0) == {"shots": ("ok", True), "ocr": ("ok", True)}
    assert run(60.0) == {"shots": ("ok", False), "ocr": ("ok", False)}
