"""Every awkward input through the real pipeline: a one-line error or a truthful record.

Runs the toy perceivers (real statistics of the frames and audio they get, no models) over each
file of `vidchat.testing.videos.AWKWARD`, so what is checked is the decode and the record: times
from the first presented frame and inside [0, duration], the displayed size, the audio track
heard, warnings for damaged data; and for unusable inputs, one line naming the problem.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from vidchat.kernel.errors import InputError
from vidchat.kernel.video import AUDIO_RATE, decode_frames, load_audio, probe
from vidchat.pipeline.core import Pipeline
from vidchat.pipeline.profiles import parse_profile
from vidchat.testing import videos

# What each input must give: an error containing the text, or "ok" (a record).
EXPECTED: dict[str, str] = {
    "zero_bytes": "error:empty file (0 bytes)",
    "text_as_mp4": "error:not a readable video",
    "truncated_no_index": "error:not a readable video",
    "audio_only": "error:no video stream",
    "directory": "error:is a directory",
    "png_as_mp4": "error:a still image (png), not a video",
    "fifo": "error:not a regular file: a FIFO",
    "dev_zero": "error:not a regular file: a character device",
    "dev_urandom": "error:not a regular file: a character device",
}


def _profile():
    return parse_profile(
        {
            "name": "awkward",
            "perceivers": {"brightness": None, "loudness": None},
            "sampling": {"slow_fps": 2.0, "fast_fps": 4.0, "fast_max_side": 64},
        }
    )


@pytest.mark.parametrize("name", sorted(videos.AWKWARD))
def test_awkward_input_gives_one_line_or_a_truthful_record(name, toys, tmp_path, cache_dir):
    path = videos.AWKWARD[name](tmp_path)
    want = EXPECTED.get(name, "ok")
    pipe = Pipeline(_profile(), cache=False)
    if want.startswith("error:"):
        with pytest.raises(InputError) as e:
            pipe.run(path)
        msg = str(e.value)
        assert want.removeprefix("error:") in msg and "\n" not in msg, msg
        return
    ctx = pipe.run(path)
    d = ctx.video.duration
    assert d > 0, name
    times = [t for o in ctx.objects for t in (o.first_seen, o.last_seen)]
    times += [t for s in ctx.speech for t in (s.start, s.end)]
    times += [t for e in ctx.events for t in (e.start, e.end)]
    assert times and all(0.0 <= t <= d for t in times), (name, d, max(times))
    bright = next(p for p in ctx.provenance if p.name == "brightness")
    assert bright.status == "ok", (name, bright.reason)
    slow = [e for e in ctx.events if e.kind == "brightness"]
    assert slow and slow[0].start == pytest.approx(0.0, abs=0.06), name  # first frame is t=0
    # Slow frames are the displayed size (anamorphic: 2:1 pixels shown twice as wide).
    assert (slow[0].data["w"], slow[0].data["h"]) == (ctx.video.width, ctx.video.height)


def test_names_that_look_like_options_or_code_are_only_names(toys, tmp_path, cache_dir):
    for key in videos.AWKWARD_NAMES:
        path = videos.named(tmp_path, key)
        info = probe(path)
        assert info.path.endswith(path.name) and info.duration == pytest.approx(1.0, abs=0.1)
        assert len(list(decode_frames(info, 2.0, 64))) == 2, key
    assert not (tmp_path / "PWNED").exists()


def test_negative_start_and_growing_files_keep_times_inside_the_duration(tmp_path):
    for make in (videos.negative_start_mkv, videos.growing_mkv):
        info = probe(make(tmp_path))
        frames = list(decode_frames(info, 10.0, 64))
        assert info.duration > 1.0
        assert frames[0].t == 0.0 and frames[-1].t <= info.duration, (make.__name__, info)
    # the growing file holds ~3.5 of its 5 s: the duration is what is there, not 0 or 5
    assert 2.5 <= probe(videos.growing_mkv(tmp_path)).duration <= 4.0
    # all 5 s of the shifted file, from its first frame (the header says 4.0 from zero)
    neg = probe(videos.negative_start_mkv(tmp_path))
    assert neg.duration == pytest.approx(5.0) and neg.start_time == pytest.approx(-1.0)
    assert len(list(decode_frames(neg, 10.0, 64))) == 50


def test_anamorphic_is_recorded_at_its_display_size(tmp_path):
    info = probe(videos.anamorphic(tmp_path))
    assert (info.width, info.height, info.sample_aspect_ratio) == (320, 96, "2:1")
    frame = next(iter(decode_frames(info, 1.0)))
    assert frame.image.shape == (96, 320, 3)


def test_audio_that_starts_late_is_aligned_to_the_first_frame(tmp_path):
    info = probe(videos.late_audio(tmp_path))
    assert info.audio_offset == pytest.approx(1.0, abs=0.1)
    audio = load_audio(info)
    assert audio is not None
    first = np.abs(audio[: int(0.9 * AUDIO_RATE)]).max()
    tone = np.abs(audio[int(1.2 * AUDIO_RATE) : int(2.8 * AUDIO_RATE)]).max()
    assert first < 1e-3 < 0.1 < tone  # silence until 1 s, then the tone
    assert audio.size / AUDIO_RATE == pytest.approx(3.0, abs=0.1)


needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="the second track's speech is made by espeak-ng"
)


@needs_espeak
def test_the_audio_track_is_chosen_on_purpose_recorded_and_selectable(tmp_path):
    path = videos.second_track_speech(tmp_path)
    info = probe(path)
    # neither is marked default; track 0 is silence, track 1 holds the speech
    assert info.audio_tracks == 2 and info.audio_track == 1
    assert "track with speech" in (info.audio_note or "")
    assert "other audio tracks: 0" in (info.audio_note or "")
    heard = load_audio(info)
    assert heard is not None and np.abs(heard).max() > 0.05
    first = probe(path, audio_track=0)
    assert first.audio_track == 0 and "chosen by the user" in (first.audio_note or "")
    silent = load_audio(first)
    assert silent is not None and np.abs(silent).max() < 1e-3
    with pytest.raises(InputError, match=r"audio track 2 requested, but the file has 2"):
        probe(path, audio_track=2)


@needs_espeak
def test_audio_track_is_part_of_the_audio_perceivers_cache_key(toys, tmp_path, cache_dir):
    path = videos.second_track_speech(tmp_path)
    chosen = Pipeline(_profile()).run(path)
    prof = _profile()
    prof.sampling.audio_track = 0
    forced = Pipeline(prof).run(path)
    loud = {c: next(e for e in x.events if e.kind == "loudness") for c, x in (("a", chosen),
                                                                              ("b", forced))}
    assert float(loud["a"].text) > 0.01 > float(loud["b"].text)  # not served from the cache
    assert forced.video.audio_track == 0


def test_decode_errors_are_counted_and_warned_in_provenance(toys, tmp_path, cache_dir):
    ctx = Pipeline(_profile(), cache=False).run(videos.corrupt_middle(tmp_path))
    bright = next(p for p in ctx.provenance if p.name == "brightness")
    assert any(w.startswith("decode: ") and "corrupted data" in w for w in bright.warnings)
    clean = Pipeline(_profile(), cache=False).run(videos.no_audio(tmp_path))
    assert all(not p.warnings for p in clean.provenance)
