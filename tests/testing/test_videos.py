"""Each awkward-video generator makes what its docstring claims (checked with ffprobe/ffmpeg)."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest

from vidchat.testing import videos as v


@pytest.fixture(scope="module")
def dest(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("awkward")


def streams(path: Path, kind: str) -> list[dict]:
    return [s for s in v.ffprobe(path)["streams"] if s.get("codec_type") == kind]


def test_registry_covers_every_generator_and_each_makes_a_fresh_path(dest):
    assert set(v.AWKWARD) == {
        "zero_bytes", "text_as_mp4", "truncated_mp4", "truncated_no_index", "audio_only",
        "no_audio", "single_frame", "vfr", "rotated_90", "odd_size", "ten_bit", "unicode_name",
        "directory", "unreadable", "huge_header", "long_sparse", "shot_cuts", "color_pattern",
        "negative_start_mkv", "growing_mkv", "anamorphic", "late_audio", "second_track_speech",
        "png_as_mp4", "corrupt_middle", "fifo", "dev_zero", "dev_urandom",
        *(f"name_{k}" for k in v.AWKWARD_NAMES),
    }  # fmt: skip
    for name, make in v.AWKWARD.items():
        first = make(dest / "twice")
        second = make(dest / "twice")  # overwriting an earlier one (even mode 000) works
        assert first == second and os.path.lexists(second), name
        if name not in ("dev_zero", "dev_urandom"):
            assert second.parent == dest / "twice", name


@pytest.mark.parametrize("make", [v.zero_bytes, v.text_as_mp4, v.truncated_no_index])
def test_not_a_readable_video(dest, make):
    path = make(dest)
    assert path.suffix == ".mp4" and path.is_file()
    with pytest.raises(v.FFmpegError, match="Invalid data found"):
        v.ffprobe(path)


def test_zero_bytes_and_text(dest):
    assert v.zero_bytes(dest).stat().st_size == 0
    assert v.text_as_mp4(dest).read_text(encoding="utf-8").startswith("These are meeting notes")


def test_truncated_index_is_missing_moov(dest):
    path = v.truncated_no_index(dest)
    data = path.read_bytes()
    assert b"ftyp" in data[:16] and b"mdat" in data and b"moov" not in data


def test_truncated_mp4_header_says_2s_but_half_decodes(dest):
    path = v.truncated_mp4(dest)
    info = v.ffprobe(path)
    assert float(info["format"]["duration"]) == pytest.approx(2.0, abs=0.05)
    assert len(streams(path, "video")) == 1 and len(streams(path, "audio")) == 1
    decoded = v.decode_frames(path, fps=100)  # every frame that decodes
    assert 2 <= len(decoded) < 20, len(decoded)  # the whole file has 20


def test_audio_only_and_no_audio(dest):
    a = v.audio_only(dest)
    assert streams(a, "video") == [] and streams(a, "audio")[0]["codec_name"] == "aac"
    assert float(v.ffprobe(a)["format"]["duration"]) == pytest.approx(1.5, abs=0.1)
    with pytest.raises(v.FFmpegError, match="expected a video stream"):
        v.decode_frames(a, fps=4)
    n = v.no_audio(dest)
    assert streams(n, "audio") == [] and streams(n, "video")[0]["codec_name"] == "h264"
    assert len(v.frame_times(n)) == 20


def test_single_frame(dest):
    path = v.single_frame(dest)
    assert v.frame_times(path) == [0.0]
    assert len(v.decode_frames(path, fps=4)) == 1


def test_vfr_frame_intervals_really_differ(dest):
    path = v.vfr(dest)
    times = v.frame_times(path)
    steps = np.round(np.diff(times), 3)
    assert set(steps.tolist()) == {0.2, 0.04, 0.08}
    assert times[:6] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    # The container's average rate is none of the three real rates.
    avg = streams(path, "video")[0]["avg_frame_rate"]
    num, den = map(int, avg.split("/"))
    assert num / den not in (5.0, 25.0, 12.5)
    # Decoding keeps the real times, not index / rate.
    got = [f.t for f in v.decode_frames(path, fps=100)]
    assert got == pytest.approx(times)


def test_rotated_90_has_display_matrix_and_decodes_upright(dest):
    path = v.rotated_90(dest)
    s = streams(path, "video")[0]
    assert (s["width"], s["height"]) == (160, 96)  # stored
    rotation = next(d["rotation"] for d in s["side_data_list"] if "rotation" in d)
    assert abs(int(rotation)) == 90
    frame = v.decode_frames(path, fps=10)[0]
    assert frame.image.shape == (160, 96, 3)  # displayed: ffmpeg applies the rotation
    small = v.decode_frames(path, fps=10, max_side=64)[0]
    assert small.image.shape[0] == 64 and small.scale == pytest.approx(small.image.shape[1] / 96)


def test_odd_size_and_ten_bit(dest):
    odd = streams(v.odd_size(dest), "video")[0]
    assert (odd["width"], odd["height"], odd["pix_fmt"]) == (333, 199, "yuv444p")
    assert v.decode_frames(dest / "odd_size.mp4", fps=10)[0].image.shape == (199, 333, 3)
    ten = streams(v.ten_bit(dest), "video")[0]
    assert ten["pix_fmt"] == "yuv420p10le" and ten["profile"] == "High 10"
    assert v.decode_frames(dest / "ten_bit.mp4", fps=10)[0].image.dtype == np.uint8


def test_unicode_name_is_a_valid_video(dest):
    path = v.unicode_name(dest)
    assert not path.name.isascii() and " " in path.name and "'" in path.name
    assert len(v.frame_times(path)) == 10


def test_directory(dest):
    path = v.directory(dest)
    assert path.is_dir() and path.suffix == ".mp4"
    with pytest.raises(v.FFmpegError, match="Is a directory"):
        v.ffprobe(path)


def test_unreadable_mode_000(dest):
    path = v.unreadable(dest)
    assert path.stat().st_mode & 0o777 == 0
    if os.geteuid() == 0:
        # Root bypasses permission bits: the file stays readable. Code under test must not rely
        # on this fixture to exercise its PermissionError path when the suite runs as root.
        assert path.read_bytes()[4:8] == b"ftyp"
    else:
        with pytest.raises(PermissionError):
            path.read_bytes()


def test_huge_header_claims_49_days_but_holds_1s(dest):
    path = v.huge_header(dest)
    info = v.ffprobe(path)
    assert float(info["format"]["duration"]) == pytest.approx(v.HUGE_DURATION_UNITS / 1000)
    assert float(info["streams"][0]["duration"]) == pytest.approx(1.0)
    assert len(v.frame_times(path)) == 10


def test_long_sparse_is_ten_minutes_in_a_few_kilobytes(dest):
    path = v.long_sparse(dest)
    info = v.ffprobe(path)
    assert float(info["format"]["duration"]) == pytest.approx(600.0)
    assert int(info["streams"][0]["nb_frames"]) == 600
    assert (info["streams"][0]["width"], info["streams"][0]["height"]) == (64, 64)
    assert path.stat().st_size < 100_000


def test_shot_cuts_are_where_it_says(dest):
    path, cuts = v.shot_cuts(dest)
    assert cuts == v.SHOT_CUT_TIMES == [1.6, 2.8, 4.2, 5.2]
    frames = v.decode_frames(path, fps=25)
    assert len(frames) == 160 and frames[-1].t == pytest.approx(6.36)
    # The largest frame-to-frame changes are exactly the cuts (first frame of the new shot).
    diffs = [
        np.abs(b.image.astype(int) - a.image.astype(int)).mean()
        for a, b in itertools.pairwise(frames)
    ]
    biggest = sorted(np.argsort(diffs)[-len(cuts) :] + 1)
    assert [frames[i].t for i in biggest] == pytest.approx(cuts)
    # Every cut is a big change, every other step a small one.
    assert min(diffs[i - 1] for i in biggest) > 3 * max(
        d for j, d in enumerate(diffs) if j + 1 not in biggest
    )


def test_color_pattern_quadrants_in_rgb_order(dest):
    frame = v.decode_frames(v.color_pattern(dest), fps=10)[0]
    assert frame.image.shape == (96, 128, 3)
    centres = {"top_left": (24, 32), "top_right": (24, 96), "bottom_left": (72, 32)}
    centres["bottom_right"] = (72, 96)
    for name, (y, x) in centres.items():
        got = frame.image[y, x].astype(int)
        want = np.array(v.COLOR_PATTERN_QUADRANTS[name])
        assert np.abs(got - want).max() <= 3, (name, got.tolist(), want.tolist())


def test_decode_frames_samples_by_presentation_time(dest):
    path, _ = v.shot_cuts(dest)
    frames = v.decode_frames(path, fps=4, max_side=160)
    # The first frame of each 0.25 s bucket of a 25 fps video.
    assert [f.t for f in frames[:5]] == pytest.approx([0.0, 0.28, 0.52, 0.76, 1.0])
    assert [f.index for f in frames] == list(range(len(frames)))
    assert frames[0].image.shape == (120, 160, 3) and frames[0].scale == pytest.approx(0.5)


# ------------------------------------------------------------------ the issue-17 additions


def test_awkward_names_are_made_as_given(dest):
    for key, name in v.AWKWARD_NAMES.items():
        path = v.named(dest, key)
        assert path.name == name and path.is_file() and path.stat().st_size > 0, key
    assert not (dest / "PWNED").exists()  # the shell-looking name ran nothing


def test_special_files_are_not_regular(dest):
    import stat

    for name, make in v.SPECIAL_FILES.items():
        mode = make(dest).stat().st_mode
        assert not stat.S_ISREG(mode) and (stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)), name


def test_negative_start_and_growing_mkv_lack_a_trustworthy_duration(dest):
    neg = v.ffprobe(v.negative_start_mkv(dest))
    assert neg["format"]["format_name"].startswith("matroska")
    assert "duration" not in neg["streams"][0]  # no per-stream duration to trust
    assert float(neg["format"]["start_time"]) == pytest.approx(-1.0)
    assert float(neg["format"]["duration"]) == pytest.approx(4.0)  # but 5 s of frames
    assert len(v.frame_times(dest / "negative_start.mkv")) == 50
    grow = v.ffprobe(v.growing_mkv(dest))
    assert "duration" not in grow["format"] and "duration" not in grow["streams"][0]


def test_anamorphic_late_audio_two_tracks_png_corrupt(dest):
    s = streams(v.anamorphic(dest), "video")[0]
    assert (s["width"], s["height"], s["sample_aspect_ratio"]) == (160, 96, "2:1")
    a = streams(v.late_audio(dest), "audio")[0]
    assert float(a["start_time"]) == pytest.approx(1.0, abs=0.1)
    tracks = streams(v.second_track_speech(dest), "audio")
    assert len(tracks) == 2 and not any(t["disposition"]["default"] for t in tracks)
    png = v.ffprobe(v.png_as_mp4(dest))
    assert png["format"]["format_name"] == "png_pipe"
    cor = v.corrupt_middle(dest)
    assert len(v.frame_times(cor)) > 20  # still mostly decodable
