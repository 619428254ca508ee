"""Annotated video, timeline and contact sheet, checked by their content.

Records are written by hand on real sample videos (bikes.mp4, bigbuckbunny.mp4), so the test
knows exactly where and when each box must be drawn; the pixels of the encoded output are read
back with ffmpeg.
"""

from __future__ import annotations

import argparse
import json
import subprocess

import numpy as np
import pytest

from vidchat.apps import visual
from vidchat.cli.visual import add_commands
from vidchat.kernel.errors import InputError
from vidchat.kernel.record import (
    RLE,
    Event,
    ObjectTrack,
    SpeechSegment,
    TrackPoint,
    VideoContext,
)
from vidchat.kernel.samples import sample_path
from vidchat.kernel.video import probe
from vidchat.testing.videos import decode_frames


def _record(video, objects=(), speech=(), events=()) -> VideoContext:
    return VideoContext(
        video=probe(video), objects=list(objects), speech=list(speech), events=list(events)
    )


def _car() -> ObjectTrack:
    # Moves right by 200 px between 2 s and 4 s: at 3 s its box must be halfway.
    return ObjectTrack(
        id="car#1",
        label="car",
        first_seen=2.0,
        last_seen=4.0,
        source="test",
        trajectory=[
            TrackPoint(t=2.0, box=(100, 60, 200, 160)),
            TrackPoint(t=4.0, box=(300, 60, 400, 160)),
        ],
    )


def _count_frames(path) -> int:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(json.loads(out)["streams"][0]["nb_read_frames"])


def _frame_at(frames, t):
    return min(frames, key=lambda f: abs(f.t - t)).image.astype(int)


def _close(pixel, color, tol=70) -> bool:
    return bool(np.all(np.abs(np.asarray(pixel) - np.asarray(color)) <= tol))


# ------------------------------------------------------------------------------- geometry


def test_box_interpolates_between_samples_and_holds_at_ends():
    car = _car()
    assert visual.box_at(car, 3.0) == (200, 60, 300, 160)
    assert visual.box_at(car, 2.0) == (100, 60, 200, 160)
    assert visual.box_at(car, 1.99) is None and visual.box_at(car, 4.01) is None
    held = car.model_copy(update={"last_seen": 5.0})
    assert visual.box_at(held, 4.5) == (300, 60, 400, 160)  # after the last sample: held


def test_rle_decodes_column_major():
    # 2x3 mask, column-major: column 0 = [0, 1], column 1 = [1, 1], column 2 = [0, 0]
    m = visual.decode_rle(RLE(size=(2, 3), counts=[1, 3, 2]))
    assert m.tolist() == [[False, True, False], [True, True, False]]


# ------------------------------------------------------------------------------- annotate


def test_annotate_draws_the_box_at_the_right_time(tmp_path):
    video = sample_path("bikes")
    ctx = _record(
        video,
        objects=[_car()],
        events=[
            Event(
                start=5.52, end=5.52, kind="shot", text="shot cut", source="shots", data={"shot": 2}
            ),
            Event(start=7.0, end=8.0, kind="ocr", text="EXIT 12", source="ocr"),
        ],
    )
    r = visual.annotate(video, ctx, tmp_path / "a.mp4")
    info = probe(r.path)
    assert (info.width, info.height) == (640, 272)
    assert abs(info.duration - 10.0) < 0.1
    assert r.frames == 250 and _count_frames(r.path) == 250
    assert r.boxes_drawn == 51  # 2.00 s to 4.00 s inclusive at 25 fps
    assert not info.has_audio
    out = decode_frames(r.path, 25)
    src = decode_frames(video, 25)
    color = visual.color_for("car#1")
    at3, src3 = _frame_at(out, 3.0), _frame_at(src, 3.0)
    # Left and right edges of the interpolated box (200..300) at mid-height.
    for x in (200, 300):
        assert _close(at3[110, x], color), (x, at3[110, x], color)
        assert not _close(src3[110, x], color)
    # No box where the car was at 2 s, nor anywhere before it appears.
    assert not _close(at3[110, 100], color)
    at1, src1 = _frame_at(out, 1.0), _frame_at(src, 1.0)
    assert np.abs(at1[60:160, 190:310] - src1[60:160, 190:310]).mean() < 6
    # The shot-cut banner draws a yellow border just after the cut, not long before it.
    assert _close(_frame_at(out, 5.7)[136, 1], (255, 255, 0))
    assert not _close(_frame_at(out, 5.0)[136, 1], (255, 255, 0))
    # OCR text appears top-left during its event only (text area changes vs the source).
    band = (slice(19, 33), slice(2, 70))  # the second text line, under the time
    assert np.abs(_frame_at(out, 7.5)[band] - _frame_at(src, 7.5)[band]).mean() > 10
    assert np.abs(_frame_at(out, 9.0)[band] - _frame_at(src, 9.0)[band]).mean() < 6


def test_annotate_keeps_audio_and_burns_subtitles(tmp_path):
    video = sample_path("bigbuckbunny")
    ctx = _record(video, speech=[SpeechSegment(start=1.0, end=3.0, text="a big rabbit wakes up")])
    r = visual.annotate(video, ctx, tmp_path / "bbb.mp4", max_side=640)
    info = probe(r.path)
    assert info.has_audio and info.audio_codec == "aac"
    assert (info.width, info.height) == (640, 360)
    assert abs(info.duration - probe(video).duration) < 0.15
    out, src = decode_frames(r.path, 5), decode_frames(video, 5, max_side=640)
    bottom = (slice(300, 360), slice(160, 480))
    during = np.abs(_frame_at(out, 2.0)[bottom] - _frame_at(src, 2.0)[bottom]).mean()
    after = np.abs(_frame_at(out, 4.5)[bottom] - _frame_at(src, 4.5)[bottom]).mean()
    assert during > 10 > after


def test_annotate_refuses_another_videos_record(tmp_path):
    ctx = _record(sample_path("bikes"))
    with pytest.raises(InputError, match="not the video of this record"):
        visual.annotate(sample_path("bigbuckbunny"), ctx, tmp_path / "x.mp4")
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------------------- timeline


def _hour_record() -> VideoContext:
    """A dense one-hour record: 400 persons, 1500 speech segments, 300 cuts, 2000 tags."""
    rng = np.random.default_rng(0)
    info = probe(sample_path("bikes")).model_copy(update={"duration": 3600.0})
    objects = []
    for i in range(400):
        a = float(rng.uniform(0, 3500))
        b = a + float(rng.uniform(1, 100))
        objects.append(
            ObjectTrack(
                id=f"person#{i + 1}",
                label="person",
                first_seen=a,
                last_seen=b,
                source="t",
                trajectory=[TrackPoint(t=a, box=(0, 0, 10, 10))],
            )
        )
    objects.append(ObjectTrack(id="dog#1", label="dog", first_seen=10, last_seen=20, source="t"))
    speech = [SpeechSegment(start=i * 2.4, end=i * 2.4 + 2.0, text="x") for i in range(1500)]
    events = [
        Event(start=i * 12.0, end=i * 12.0, kind="shot", text="cut", source="s") for i in range(300)
    ]
    events += [
        Event(start=i * 1.8, end=i * 1.8 + 1, kind="tag", text="street", source="t")
        for i in range(2000)
    ]
    return VideoContext(video=info, objects=objects, speech=speech, events=events)


def test_timeline_rows_one_per_object_and_kind():
    video = sample_path("bikes")
    ctx = _record(
        video,
        objects=[_car()],
        speech=[SpeechSegment(start=1, end=2, text="hi")],
        events=[
            Event(start=3, end=3, kind="shot", text="cut", source="s"),
            Event(start=4, end=6, kind="ocr", text="EXIT", source="o"),
        ],
    )
    rows = visual.timeline_rows(ctx)
    assert [(r.name, r.group) for r in rows] == [
        ("car#1", "objects"),
        ("speech", "speech"),
        ("shot cuts", "shots"),
        ("ocr", "events"),
    ]
    assert rows[0].intervals == [(2.0, 4.0)] and rows[2].marks == [3.0]


def test_timeline_aggregates_a_dense_hour(tmp_path):
    ctx = _hour_record()
    rows = visual.timeline_rows(ctx)
    names = [r.name for r in rows]
    assert names == ["person ×400", "dog ×1", "speech", "shot cuts", "tag"]
    person, speech = rows[0], rows[2]
    assert person.weights is not None and max(person.weights) == 1.0
    assert len(person.intervals) <= 240 and len(speech.intervals) <= 240  # binned
    plot = visual.timeline_png(ctx, tmp_path / "hour.png")
    assert (plot.width, plot.height) == (1200, 280)  # 5 rows: readable, not 2000 px tall
    from PIL import Image

    with Image.open(plot.path) as im:
        assert im.size == (1200, 280)
        px = np.asarray(im.convert("RGB"))
    assert len(np.unique(px.reshape(-1, 3), axis=0)) > 50  # bars drawn, not a blank canvas
    assert 0 < plot.axis_left < plot.axis_right < 1
    html = visual.timeline_html(ctx, tmp_path / "hour.html").read_text()
    assert "plotly" in html and "person ×400" in html and '<script src="http' not in html


def test_timeline_png_marks_the_object_at_its_time(tmp_path):
    ctx = _record(sample_path("bikes"), objects=[_car()])
    plot = visual.timeline_png(ctx, tmp_path / "t.png")
    from PIL import Image

    with Image.open(plot.path) as im:
        px = np.asarray(im.convert("RGB")).astype(int)
    row = px[:, :, :]
    color = visual.color_for("car#1")

    def x_of(t: float) -> int:
        frac = plot.axis_left + (plot.axis_right - plot.axis_left) * t / plot.duration
        return round(frac * plot.width)

    hits = [y for y in range(plot.height) if _close(row[y, x_of(3.0)], color, 10)]
    assert hits, "the car's bar is not drawn at 3 s"
    y = hits[len(hits) // 2]
    assert not _close(row[y, x_of(1.0)], color, 10) and not _close(row[y, x_of(6.0)], color, 10)


def test_timeline_rejects_other_suffixes(tmp_path):
    with pytest.raises(InputError, match=r"\.png or \.html"):
        visual.timeline(_record(sample_path("bikes")), tmp_path / "t.gif")


# ------------------------------------------------------------------------------- contact sheet


def test_contact_sheet_grid_times_and_objects(tmp_path):
    video = sample_path("bikes")
    ctx = _record(
        video,
        objects=[_car()],
        events=[
            Event(start=t, end=t, kind="shot", text="cut", source="s") for t in (1.52, 5.52, 7.52)
        ],
    )
    r = visual.contact_sheet(video, ctx, tmp_path / "s.jpg", columns=3, rows=2, tile_width=200)
    assert r.times == [0.0, 1.72, 3.72, 5.72, 7.72, 8.86]  # cuts first, then the widest gaps
    assert r.objects[2] == ["car#1"] and r.objects[0] == []
    from PIL import Image

    with Image.open(r.path) as im:
        assert im.size == (600, 2 * (84 + 44))  # tiles 200x84 (even), 44 px captions


# ------------------------------------------------------------------------------- CLI


def _cli(argv):
    parser = argparse.ArgumentParser(prog="vidchat")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_commands_write_their_files(tmp_path, capsys):
    video = sample_path("bikes")
    rec = tmp_path / "bikes.json"
    _record(video, objects=[_car()]).save(rec)
    assert (
        _cli(
            [
                "annotate",
                str(video),
                "--record",
                str(rec),
                "-o",
                str(tmp_path / "a.mp4"),
                "--max-side",
                "320",
                "-q",
            ]
        )
        == 0
    )
    assert probe(tmp_path / "a.mp4").width == 320
    assert _cli(["timeline", str(rec), "-o", str(tmp_path / "t.html"), "-q"]) == 0
    assert "car#1" in (tmp_path / "t.html").read_text()
    assert (
        _cli(
            [
                "contact-sheet",
                str(video),
                "--record",
                str(rec),
                "-o",
                str(tmp_path / "s.png"),
                "--rows",
                "1",
                "-q",
            ]
        )
        == 0
    )
    assert (tmp_path / "s.png").stat().st_size > 10_000
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / n) for n in ("a.mp4", "t.html", "s.png")]
    with pytest.raises(InputError, match="saved record"):
        _cli(["annotate", str(video), "--record", str(video), "-q"])


def _rect_rle(h: int, w: int, x1: int, y1: int, x2: int, y2: int) -> RLE:
    """A filled rectangle as column-major RLE (what SAM-2's perceiver stores)."""
    m = np.zeros((h, w), dtype=bool)
    m[y1:y2, x1:x2] = True
    flat = m.T.reshape(-1)
    counts, value, run = [], False, 0
    for v in flat:
        if v == value:
            run += 1
        else:
            counts.append(run)
            value, run = v, 1
    counts.append(run)
    return RLE(size=(h, w), counts=counts)


def test_annotate_outlines_masks(tmp_path):
    video = sample_path("bikes")
    rle = _rect_rle(272, 640, 400, 40, 560, 200)
    bird = ObjectTrack(
        id="bird#1",
        label="bird",
        first_seen=1.0,
        last_seen=2.0,
        source="sam2",
        trajectory=[
            TrackPoint(t=1.0, box=(380, 20, 600, 230), mask=rle),
            TrackPoint(t=2.0, box=(380, 20, 600, 230), mask=rle),
        ],
    )
    r = visual.annotate(video, _record(video, objects=[bird]), tmp_path / "m.mp4")
    frame = _frame_at(decode_frames(r.path, 25), 1.5)
    color = visual.color_for("bird#1")
    # The mask's outline (x = 400, inside the box at x = 380) is drawn in the object's colour.
    assert _close(frame[120, 400], color) and _close(frame[120, 380], color)
    assert not _close(frame[120, 480], color)  # inside the mask: outline only, not filled
