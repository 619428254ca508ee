"""Video I/O on real and awkward files: probe facts, PTS-true frame times, clean errors."""

from __future__ import annotations

import pytest

from vidchat.kernel.errors import InputError
from vidchat.kernel.samples import sample_path
from vidchat.kernel.video import decode_frames, load_audio, output_size, probe
from vidchat.testing import videos


def test_probe_real_videos():
    bbb = probe(sample_path("bigbuckbunny"))
    assert (bbb.width, bbb.height, bbb.fps, bbb.codec) == (1280, 720, "25/1", "h264")
    assert bbb.has_audio and bbb.audio_codec == "aac" and abs(bbb.duration - 5.31) < 0.05
    assert len(bbb.sha256) == 64
    vt = probe(sample_path("vtest"))
    assert (vt.width, vt.height, vt.has_audio) == (768, 576, False)
    assert abs(vt.duration - 79.5) < 0.5 and vt.fps_float == pytest.approx(10, abs=0.01)


def test_vfr_times_are_presentation_times(tmp_path):
    path = videos.vfr(tmp_path)
    truth = videos.frame_times(path)
    info = probe(path)
    got = [f.t for f in decode_frames(info, fps=8.0, max_side=None)]
    # every decoded time is one of the file's real frame times
    for t in got:
        assert min(abs(t - x) for x in truth) < 1e-3, t
    # and the first second (5 fps source) yields 5 frames at 0.2 s spacing, not a fixed grid
    first = [t for t in got if t < 1.0]
    assert [round(t, 2) for t in first] == [0.0, 0.2, 0.4, 0.6, 0.8]


def test_rotation_is_applied(tmp_path):
    info = probe(videos.rotated_90(tmp_path))
    assert info.rotation in (90, 270)
    assert (info.width, info.height) == (96, 160)
    frame = next(iter(decode_frames(info, fps=1.0)))
    assert frame.image.shape == (160, 96, 3)


@pytest.mark.parametrize(
    "maker",
    [videos.odd_size, videos.ten_bit, videos.unicode_name, videos.single_frame, videos.no_audio],
)
def test_awkward_but_valid_videos_decode(maker, tmp_path):
    info = probe(maker(tmp_path))
    frames = list(decode_frames(info, fps=4.0, max_side=128))
    assert frames and frames[0].image.shape == (*output_size(info, 128)[::-1], 3)
    assert frames[0].image.dtype.name == "uint8"


@pytest.mark.parametrize(
    ("maker", "message"),
    [
        (videos.zero_bytes, "empty file"),
        (videos.text_as_mp4, "not a readable video"),
        (videos.audio_only, "no video stream"),
        (videos.directory, "is a directory"),
        (videos.truncated_no_index, "not a readable video"),
    ],
)
def test_bad_inputs_fail_with_one_clear_line(maker, message, tmp_path):
    with pytest.raises(InputError, match=message) as e:
        probe(maker(tmp_path))
    assert "\n" not in str(e.value)


def test_truncated_with_index_decodes_what_is_there(tmp_path):
    info = probe(videos.truncated_mp4(tmp_path))
    frames = list(decode_frames(info, fps=10.0))
    assert 0 < len(frames) < 20


def test_audio_is_16k_mono_float(tmp_path):
    audio = load_audio(probe(sample_path("bigbuckbunny")))
    assert audio.dtype.name == "float32" and audio.ndim == 1
    assert abs(audio.size / 16000 - 5.31) < 0.1 and 0 < abs(audio).max() <= 1.0
    assert load_audio(probe(videos.no_audio(tmp_path))) is None
