"""The ``speakers`` perceiver: clustering, person links, the renderer's speech line, and the real
Resemblyzer encoder on espeak-ng dialogues with 1, 2 and 3 voices (count estimated, not given)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from tests.media import ListMedia, video_info
from vidchat.kernel.errors import PerceiverSkipped
from vidchat.kernel.record import Event, ObjectTrack, SpeechSegment, TrackPoint, VideoContext
from vidchat.perceivers.speakers import SpeakersPerceiver, cluster_speakers, link_speakers
from vidchat.text.render import render

SR = 16_000

SENTENCES = (
    "The weather today is sunny and warm with a light breeze from the west",
    "Please open the window and let the fresh air into the room",
    "The train to the city leaves early in the morning",
    "My brother likes to read books about history and science",
    "We will meet at the library after lunch on Friday",
    "The children are playing football in the park near the river",
)
# Three espeak-ng voices that differ as people do: a man, a woman, another accent and pitch.
VOICES = ("en-us", "en-us+f3", "en-gb-x-rp+m7")


def test_cluster_speakers_estimates_the_count() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 256))
    rows = [centres[k] + 0.15 * rng.normal(size=256) for k in (1, 0, 1, 2, 0, 2)]
    labels = cluster_speakers(np.stack(rows), threshold=0.8)
    # Numbered in order of first speech: the first row's voice is speaker 0.
    assert labels == [0, 1, 0, 2, 1, 2]
    same = np.stack([centres[0] + 0.05 * rng.normal(size=256) for _ in range(4)])
    assert cluster_speakers(same, threshold=0.8) == [0, 0, 0, 0]
    assert cluster_speakers(np.stack(rows), threshold=0.8, max_speakers=2).count(0) >= 2
    assert cluster_speakers(np.zeros((0, 256)), threshold=0.8) == []


def _person(pid: str, t0: float, t1: float) -> ObjectTrack:
    return ObjectTrack(
        id=pid,
        label="person",
        first_seen=t0,
        last_seen=t1,
        source="detect",
        trajectory=[TrackPoint(t=t0, box=(0, 0, 10, 10)), TrackPoint(t=t1, box=(0, 0, 10, 10))],
    )


def test_link_only_with_one_person_on_screen() -> None:
    segs = [SpeechSegment(start=0, end=2, text="a"), SpeechSegment(start=5, end=7, text="b")]
    alone = link_speakers(segs, [0, 1], [_person("person#4", 0, 3)], min_fraction=0.8)
    assert set(alone) == {0} and alone[0].person == "person#4"
    assert "only person on screen" in alone[0].how
    # Two people on screen while speaker 0 talks: no link.
    both = link_speakers(
        segs, [0, 1], [_person("person#1", 0, 3), _person("person#2", 0, 3)], min_fraction=0.8
    )
    assert both == {}
    # Both speakers talk while the same one person is on screen: one of them is off screen.
    one = link_speakers(segs, [0, 1], [_person("person#4", 0, 9)], min_fraction=0.8)
    assert one == {}
    # A person detect joined across cuts (seen 0-3 s and 8-9 s) is not on screen in between:
    # person#2, alone at 5-7 s, is linked to speaker 1; speaker 0 still to the joined person.
    box = (0, 0, 10, 10)
    joined = _person("person#4", 0, 9).model_copy(update={
        "trajectory": [TrackPoint(t=t, box=box) for t in (0, 1, 2, 3, 8, 9)],
        "attributes": {"reidentified": "seen 00:00–00:03, 00:08–00:09; same appearance …"},
    })  # fmt: skip
    links = link_speakers(segs, [0, 1], [joined, _person("person#2", 5, 7)], min_fraction=0.8)
    assert {k: v.person for k, v in links.items()} == {0: "person#4", 1: "person#2"}


def test_render_puts_the_speaker_into_the_speech_line() -> None:
    ctx = VideoContext(
        video=video_info(duration=10.0),
        speech=[SpeechSegment(start=1.0, end=3.0, text="hello there")],
        objects=[_person("person#4", 0, 9)],
        events=[
            Event(
                start=1.0,
                end=3.0,
                kind="speaker",
                text="speaker 2, likely person#4",
                source="speakers",
                objects=["person#4"],
                data={"speaker": "speaker 2", "person": "person#4", "link": "only person"},
            )
        ],
    )
    text = render(ctx, budget_tokens=None).text
    assert 'speech (speaker 2, likely person#4): "hello there"' in text
    assert "00:01 speaker 2" not in text  # not a line of its own


def test_no_speech_is_skipped() -> None:
    p = SpeakersPerceiver({"link_persons": False})
    assert p.requires == ("asr",)
    with pytest.raises(PerceiverSkipped, match="no speech"):
        p.perceive(ListMedia(info=video_info()))


# ---------------------------------------------------------------------------------------------
# The real encoder on espeak-ng dialogues

needs_real = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or importlib.util.find_spec("resemblyzer") is None,
    reason="needs espeak-ng and Resemblyzer",
)


def _say(text: str, voice: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(wav), text], check=True)
        raw = subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(wav), "-ac", "1", "-ar", str(SR), "-f", "f32le",
             "-"],
            capture_output=True, check=True,
        ).stdout  # fmt: skip
    x = np.frombuffer(raw, np.float32)
    loud = np.flatnonzero(np.abs(x) > 0.02)
    return x[loud[0] : loud[-1] + 1]


def dialogue(voices: tuple[str, ...], turns: int = 6) -> tuple[np.ndarray, list[SpeechSegment]]:
    """`turns` sentences, voices taking turns, 0.6 s apart; segments carry the true voice."""
    parts, segs, t = [np.zeros(int(0.5 * SR), np.float32)], [], 0.5
    for k in range(turns):
        voice = voices[k % len(voices)]
        x = _say(SENTENCES[k % len(SENTENCES)], voice)
        segs.append(SpeechSegment(start=t, end=t + len(x) / SR, text=voice))
        parts += [x, np.zeros(int(0.6 * SR), np.float32)]
        t += len(x) / SR + 0.6
    return np.concatenate(parts), segs


def diarization_accuracy(truth: list[str], labels: list[int]) -> float:
    """Share of segments whose speaker label maps to their true voice (best one-to-one map)."""
    from scipy.optimize import linear_sum_assignment

    names = sorted(set(truth))
    m = np.zeros((len(names), max(labels) + 1))
    for v, lab in zip(truth, labels, strict=True):
        m[names.index(v), lab] += 1
    r, c = linear_sum_assignment(-m)
    return float(m[r, c].sum()) / len(truth)


@pytest.fixture(scope="module")
def speakers() -> SpeakersPerceiver:
    return SpeakersPerceiver({"link_persons": False})


@pytest.mark.slow
@needs_real
@pytest.mark.parametrize("n_voices", [1, 2, 3])
def test_espeak_dialogues_get_their_speaker_count(speakers, n_voices: int) -> None:
    audio, segs = dialogue(VOICES[:n_voices])
    ctx = VideoContext(video=video_info(duration=len(audio) / SR, has_audio=True), speech=segs)
    media = ListMedia(info=ctx.video, audio_samples=audio, context=ctx)
    events = speakers.perceive(media)
    assert [e.kind for e in events] == ["speaker"] * len(segs)
    assert [(e.start, e.end) for e in events] == [(s.start, s.end) for s in segs]
    labels = [int(str(e.data["speaker"]).split()[1]) - 1 for e in events]
    assert len(set(labels)) == n_voices, labels
    assert events[0].data["speaker"] == "speaker 1"
    assert diarization_accuracy([s.text for s in segs], labels) == 1.0
