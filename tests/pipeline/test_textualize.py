"""`textualize` end to end with the offline profile's real models on real and synthetic videos."""

from __future__ import annotations

import time

import pytest

from vidchat import render, textualize
from vidchat.kernel.samples import sample_path
from vidchat.pipeline.core import Pipeline
from vidchat.testing.speech import make_speech_video, word_error_rate

pytestmark = pytest.mark.slow


def test_vtest_persons_tracked(cache_dir):
    ctx = textualize(sample_path("vtest"))
    status = {p.name: p for p in ctx.provenance}
    assert status["detect"].status == "ok"
    assert status["asr"].status == "skipped"  # vtest.avi has no audio
    persons = [o for o in ctx.objects if o.label == "person"]
    assert len(persons) >= 5
    assert len({o.id for o in persons}) == len(persons)
    assert any(o.last_seen - o.first_seen >= 10 for o in persons)  # identities held over time
    for o in persons:
        assert o.first_seen <= o.last_seen <= ctx.video.duration + 0.5
        for p in o.trajectory:
            x1, y1, x2, y2 = p.box
            assert -1 <= x1 <= x2 <= 769 and -1 <= y1 <= y2 <= 577
    text = render(ctx, budget_tokens=3000)
    assert text.tokens <= 3000 and persons[0].id in text.text


def test_megamind_shot_cuts(cache_dir):
    ctx = textualize(sample_path("megamind"))
    cuts = [e.start for e in ctx.events if e.kind == "shot"]
    # true cuts (full-rate PySceneDetect, checked by eye): 4.13, 6.47, 8.38 s
    assert len(cuts) == 3
    for got, want in zip(cuts, [4.13, 6.47, 8.38], strict=True):
        assert abs(got - want) <= 0.5


def test_spoken_sentence_in_transcript_with_times(tmp_path, cache_dir):
    clip = make_speech_video(tmp_path / "speech.mp4", start_s=2.0, duration_s=8.0)
    ctx = textualize(clip.path)
    said = " ".join(s.text for s in ctx.speech)
    assert word_error_rate(clip.sentence, said) <= 0.1, said
    assert abs(ctx.speech[0].start - clip.speech_start) <= 0.5
    assert abs(ctx.speech[-1].end - clip.speech_end) <= 0.5
    assert ctx.speech[0].words and ctx.speech[0].language == "en"
    # One voice: the speakers perceiver names one speaker, and the renderer says so.
    assert render(ctx).text.count(" speech (speaker 1): ") >= 1


def test_second_run_hits_the_cache(cache_dir):
    video = sample_path("bigbuckbunny")
    t0 = time.perf_counter()
    cold = Pipeline().run(video)
    cold_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    warm = Pipeline().run(video)
    warm_s = time.perf_counter() - t0
    assert all(p.cached for p in warm.provenance if p.status == "ok")
    assert warm.objects == cold.objects and warm.speech == cold.speech
    assert warm.events == cold.events
    assert warm_s < cold_s
