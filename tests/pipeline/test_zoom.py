"""Zoom: a window decoded again at a higher rate, results merged into the record.

A generated clip holds a white square crossing the picture for 10 s and a second square shown
for 0.45 s only (4.30-4.75 s). A small real tracker (threshold, connected components, nearest
centroid) sees the frames it is given: the 1 fps pass never sees the second square; a zoom at
10 fps over 3-6 s finds it as a new object and refines the first square's trajectory.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import numpy as np
import pytest

import vidchat
from vidchat import perceivers
from vidchat.kernel.errors import ConfigError, InputError
from vidchat.kernel.record import ObjectTrack, TrackPoint, VideoContext
from vidchat.kernel.video import decode_frames, probe
from vidchat.perceivers.base import Media, Perceiver, PerceiverOptions
from vidchat.pipeline.core import Pipeline
from vidchat.pipeline.profiles import parse_profile
from vidchat.pipeline.zoom import Zoomer, clip_to_window, zoom, zoom_options

SECOND_SQUARE = (4.30, 4.75)


class SquaresOptions(PerceiverOptions):
    min_frames: int = 2
    trajectory_step_s: float = 1.0


class Squares(Perceiver):
    """Tracks bright squares on the fast stream (a real, tiny tracker)."""

    name = "squares"
    version = "1"
    Options = SquaresOptions
    inputs = frozenset({"fast"})

    def perceive(self, media: Media) -> Iterator[ObjectTrack]:
        import cv2

        tracks: list[list[tuple[float, tuple[float, float, float, float]]]] = []
        for f in media.frames("fast"):
            grey = f.image.mean(axis=2)
            n, _, stats, cents = cv2.connectedComponentsWithStats((grey > 128).astype(np.uint8))
            for i in range(1, n):
                x, y, w, h, area = stats[i]
                if area < 50:
                    continue
                box = f.to_full((float(x), float(y), float(x + w), float(y + h)))
                c = cents[i] / f.scale
                near = [
                    tr for tr in tracks
                    if f.t - tr[-1][0] < 1.5
                    and abs((tr[-1][1][0] + tr[-1][1][2]) / 2 - c[0]) < 60
                    and abs((tr[-1][1][1] + tr[-1][1][3]) / 2 - c[1]) < 60
                ]  # fmt: skip
                (near[0] if near else tracks.append([]) or tracks[-1]).append((f.t, box))
        opts = self.options
        kept = [tr for tr in tracks if len(tr) >= opts.min_frames]  # type: ignore[attr-defined]
        for k, tr in enumerate(kept, 1):
            pts, last = [], -1e9
            for j, (t, box) in enumerate(tr):
                if t - last >= opts.trajectory_step_s - 1e-6 or j == len(tr) - 1:  # type: ignore[attr-defined]
                    pts.append(TrackPoint(t=t, box=box, score=1.0))
                    last = t
            yield ObjectTrack(
                id=f"square#{k}", label="square", first_seen=tr[0][0], last_seen=tr[-1][0],
                source=self.name, trajectory=pts,
            )  # fmt: skip


@pytest.fixture(scope="module")
def squares_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("zoom") / "squares.mp4"
    a, b = SECOND_SQUARE
    vf = (
        "color=black:s=320x240:r=10:d=10[bg];color=white:s=40x40:r=10:d=10[sq];"
        "[bg][sq]overlay=x='20+25*t':y=100,"
        f"drawbox=x=250:y=20:w=40:h=40:color=white:t=fill:enable='between(t,{a},{b})'"
    )
    subprocess.run(
        ["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-f", "lavfi", "-i", vf,
         "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    return path


@pytest.fixture
def squares(monkeypatch, cache_dir):
    perceivers.register_perceiver("squares", Squares)
    return Squares


def _profile():
    return parse_profile(
        {"name": "sq", "perceivers": {"squares": None},
         "sampling": {"slow_fps": 1.0, "fast_fps": 1.0}}
    )  # fmt: skip


def test_decode_window_keeps_video_times(squares_video):
    info = probe(squares_video)
    times = [f.t for f in decode_frames(info, 10, 160, start=3.0, end=4.0)]
    assert len(times) == 10
    assert abs(times[0] - 3.0) < 0.051 and times[-1] < 4.0
    with pytest.raises(ValueError, match="start < end"):
        list(decode_frames(info, 10, 160, start=4.0, end=3.0))


def test_zoom_finds_what_the_sparse_pass_missed_and_refines_the_rest(squares_video, squares):
    base = Pipeline(_profile()).run(squares_video)
    assert [o.id for o in base.objects] == ["square#1"]
    sq1_points = len(base.objects[0].trajectory)

    zoomer = Zoomer(_profile())
    res = zoomer.zoom(base, 3.0, 6.0, ["squares"], fps=10)
    ctx = res.context
    assert [o.id for o in base.objects] == ["square#1"]  # the input record is not changed
    run = res.run
    assert (run.id, run.start, run.end, run.fps) == ("zoom1", 3.0, 6.0, 10.0)
    assert run.objects_refined == ["square#1"] and run.objects_added == ["square#2"]
    new = ctx.object("square#2")
    a, b = SECOND_SQUARE
    assert a - 0.01 <= new.first_seen <= a + 0.11 and b - 0.11 <= new.last_seen <= b + 0.01
    assert new.attributes["found_by"] == "zoom zoom1"
    box = new.trajectory[0].box
    assert abs(box[0] - 250) < 3 and abs(box[1] - 20) < 3  # full-resolution pixels
    refined = ctx.object("square#1")
    in_window = [p for p in refined.trajectory if 3.0 <= p.t <= 6.0]
    assert len(refined.trajectory) > sq1_points and len(in_window) >= 25
    # The provenance says which window, which rate, which perceiver and its options.
    (prov,) = run.provenance
    assert prov.name == "squares" and prov.status == "ok" and not prov.cached
    assert prov.options["trajectory_step_s"] == pytest.approx(0.1)
    header = vidchat.render(ctx).header
    assert "ZOOMED 00:03–00:06 at 10 fps (squares): 1 objects added, 1 refined" in header

    # The same zoom again changes nothing; a new zoomer reads the window from the cache.
    again = zoomer.zoom(ctx, 3.0, 6.0, ["squares"], fps=10)
    assert again.reused and len(again.context.zooms) == 1
    fresh = Zoomer(_profile()).zoom(base, 3.0, 6.0, ["squares"], fps=10)
    assert fresh.cached and fresh.run.objects_added == ["square#2"]

    # An overlapping second zoom refines square#2 rather than adding it twice.
    ctx2 = zoomer.zoom(ctx, 4.0, 5.0, ["squares"], fps=20).context
    assert [o.id for o in ctx2.objects] == ["square#1", "square#2"]
    assert ctx2.zooms[-1].objects_refined == ["square#1", "square#2"]
    # Saved and reloaded, the record keeps its zooms.
    assert VideoContext.from_json(ctx2.to_json()).zooms == ctx2.zooms


def test_zoom_from_a_saved_record_and_the_public_function(squares_video, squares, tmp_path):
    base = Pipeline(_profile()).run(squares_video)
    saved = base.save(tmp_path / "rec.json")
    res = vidchat.zoom(saved, 4.0, 5.0, perceivers=["squares"], fps=10, profile=_profile())
    assert res.run.objects_added == ["square#2"]
    assert "square#2" in res.summary() and "zoom1 00:04–00:05 at 10 fps" in res.summary()


@pytest.mark.parametrize(
    ("start", "end", "fps", "message"),
    [
        (5.0, 5.0, 10, "must end after it starts"),
        (-1.0, 2.0, 10, "must start at 0 or later"),
        (12.0, 14.0, 10, "after the end of the video"),
        (1.0, 2.0, 0, "fps must be above 0"),
        (1.0, 2.0, 100, "at most 30"),
    ],
)
def test_bad_windows_are_one_line_errors(squares_video, squares, start, end, fps, message):
    base = Pipeline(_profile()).run(squares_video)
    with pytest.raises(InputError, match=message):
        zoom(base, start, end, ["squares"], fps=fps, profile=_profile())


def test_missing_or_changed_video_and_unknown_perceiver(squares_video, squares, tmp_path):
    base = Pipeline(_profile()).run(squares_video)
    moved = base.model_copy(deep=True)
    moved.video.path = str(tmp_path / "gone.mp4")
    with pytest.raises(InputError, match="zoom needs the video file"):
        zoom(moved, 1, 2, ["squares"], profile=_profile())
    changed = base.model_copy(deep=True)
    changed.video.sha256 = "f" * 64
    with pytest.raises(InputError, match="changed since the record was made"):
        zoom(changed, 1, 2, ["squares"], profile=_profile())
    with pytest.raises(ConfigError, match="unknown perceiver 'nope'"):
        zoom(base, 1, 2, ["nope"], profile=_profile())
    with pytest.raises(InputError, match="no such file"):
        zoom(tmp_path / "missing.json", 1, 2)


def test_zoom_options_follow_the_rate():
    from vidchat.perceivers.ocr import OCRPerceiver

    opts = zoom_options(OCRPerceiver, {"keyframes": {"max_interval_s": 2}}, fps=10)
    assert opts["keyframes"]["max_interval_s"] == pytest.approx(0.1)
    slow = zoom_options(OCRPerceiver, {"keyframes": {"max_interval_s": 0.05}}, fps=10)
    assert slow["keyframes"]["max_interval_s"] == pytest.approx(0.05)  # never coarser


def test_clip_to_window_shifts_upstream_times(squares_video, squares):
    base = Pipeline(_profile()).run(squares_video)
    clipped = clip_to_window(base, 3.0, 6.0)
    (o,) = clipped.objects
    assert o.first_seen == 0.0 and o.last_seen == 3.0
    assert [p.t for p in o.trajectory] == [0.0, 1.0, 2.0, 3.0]
    assert clipped.video.duration == 3.0


def test_repl_zoom_then_the_answer_reads_the_zoomed_record(squares_video, squares):
    import io

    from tests.conversation.chat_helpers import ScriptedChatModel
    from vidchat.cli import chat as chat_cli
    from vidchat.conversation.session import ChatSession

    def reply(messages) -> str:
        # Answers from what the prompt holds: the zoomed object only exists after /zoom.
        text = "\n".join(str(m.content) for m in messages)
        return "square#1 and square#2." if "square#2" in text else "only square#1."

    model = ScriptedChatModel(reply_fn=reply)
    base = Pipeline(_profile()).run(squares_video)
    session = ChatSession(base, llm=model, profile=_profile())
    lines = iter(["which squares?", "/zoom 00:03 00:06 squares 10", "/zoom 7 5",
                  "/zoom 3 6 nope", "which squares now?"])  # fmt: skip

    def read(prompt: str) -> str:
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    out = io.StringIO()
    assert chat_cli.run_repl(session, read, out, banner=False) == 0
    text = out.getvalue()
    assert "only square#1." in text
    assert "zoom1 00:03–00:06 at 10 fps: squares ok" in text and "+1 objects (square#2)" in text
    assert "00:04 square#2 seen briefly" in text  # the window's timeline after the zoom
    assert "error: zoom window must end after it starts" in text
    assert "error: unknown perceiver 'nope'" in text
    assert text.rstrip().endswith("square#1 and square#2.") or "square#1 and square#2." in text
    assert [z.id for z in session.ctx.zooms] == ["zoom1"]
    assert "/zoom START END [PERCEIVERS] [FPS]" in chat_cli.COMMANDS


def test_cli_zoom_saves_the_merged_record(squares_video, squares, tmp_path, capsys):
    from vidchat.cli.main import main

    rec = Pipeline(_profile()).run(squares_video).save(tmp_path / "rec.json")
    prof = tmp_path / "sq.yaml"
    prof.write_text(
        "name: sq\nperceivers: {squares: null}\nsampling: {slow_fps: 1.0, fast_fps: 1.0}\n"
    )
    out = tmp_path / "zoomed.json"
    rc = main(["zoom", str(rec), "3", "6", "--perceivers", "squares", "--profile", str(prof),
               "-o", str(out)])  # fmt: skip
    assert rc == 0
    printed = capsys.readouterr().out
    assert "+ square#2 4.3–4.7 s" in printed
    assert [o.id for o in VideoContext.load(out).objects] == ["square#1", "square#2"]
    assert main(["zoom", str(rec), "6", "3"]) == 2
    assert "must end after it starts" in capsys.readouterr().err


def _person(oid: str, points: list[tuple[float, float]]) -> ObjectTrack:
    """A person walking right: (time, x) samples, boxes 40x80 at y=100."""
    return ObjectTrack(
        id=oid, label="person", first_seen=points[0][0], last_seen=points[-1][0], source="detect",
        trajectory=[TrackPoint(t=t, box=(x, 100, x + 40, 180)) for t, x in points],
    )  # fmt: skip


def test_merge_continues_lost_tracks_and_keeps_crossing_people_apart():
    from tests.media import video_info
    from vidchat.kernel.cache import CacheEntry
    from vidchat.kernel.record import Provenance, ZoomRun
    from vidchat.pipeline.zoom import merge_results

    # The sparse pass: person#1 lost at 12 s and found again as person#2 from 16 s; person#3
    # walks the other way and crosses person#1's path.
    ctx = VideoContext(
        video=video_info(duration=30.0),
        objects=[
            _person("person#1", [(10, 100), (11, 120), (12, 140)]),
            _person("person#2", [(16, 220), (17, 240), (18, 260)]),
            _person("person#3", [(10, 300), (12, 200), (14, 100)]),
        ],
    )
    # The zoom at 10 fps over 10-20 s: one track follows the first walker all the way; another
    # finds someone the sparse pass never saw.
    walker = _person("person#1", [(10 + k / 10, 100 + 2 * k) for k in range(90)])
    other = _person("person#2", [(13 + k / 10, 600) for k in range(20)])
    entry = CacheEntry(
        key="k", provenance=Provenance(name="detect", version="1", status="ok"),
        objects=[walker, other],
    )  # fmt: skip
    run = ZoomRun(id="zoom1", start=10, end=20, fps=10, perceivers=["detect"])
    merge_results(ctx, [entry], run)
    assert sorted(run.objects_refined) == ["person#1", "person#2"]
    assert run.objects_added == ["person#4"]
    p1, p2, p3 = (ctx.object(f"person#{k}") for k in (1, 2, 3))
    # Samples before the gap's middle went to person#1, the rest to person#2; person#3 (the
    # crossing walker, boxes that disagree) is left as it was.
    assert p1.first_seen == 10 and 13.85 <= p1.last_seen <= 14.05  # the gap split at 14 s
    assert p2.first_seen < 16 and p2.last_seen == pytest.approx(18.9)
    assert len(p3.trajectory) == 3
    assert ctx.object("person#4").attributes["found_by"] == "zoom zoom1"


def test_zoom_audio_perceivers_hear_only_the_window(cache_dir):
    from vidchat.kernel.samples import sample_path
    from vidchat.testing.toys import Loudness

    perceivers.register_perceiver("loudness", Loudness)
    prof = parse_profile({"name": "loud", "perceivers": {"loudness": None}})
    base = Pipeline(prof).run(sample_path("bigbuckbunny"))  # 5.3 s with an aac track
    res = zoom(base, 1.0, 3.0, ["loudness"], fps=5, profile=prof)
    (ev,) = res.new_events
    # 2 s of 16 kHz audio, reported in the video's times, marked with the zoom.
    assert abs(ev.data["samples"] - 32000) < 800
    assert ev.start == 1.0 and abs(ev.end - 3.0) < 0.05 and ev.data["zoom"] == "zoom1"
