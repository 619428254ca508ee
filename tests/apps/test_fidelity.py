"""The fidelity suite: the generator makes what its truth says, the scorer's arithmetic is right on
hand-built records, and the whole loop runs on one short video with the real offline profile."""

from __future__ import annotations

import argparse
import json
import subprocess

import numpy as np
import pytest

from vidchat.apps.fidelity.generate import (
    PRESETS,
    SAMPLE_RATE,
    decode_audio,
    generate,
    person_sprite,
    plan,
    sound_bounds,
)
from vidchat.apps.fidelity.score import ScoreConfig, score, table, word_error_rate
from vidchat.apps.fidelity.truth import (
    PathPoint,
    PersonTruth,
    ShotTruth,
    SpeechTruth,
    TextTruth,
    Truth,
)
from vidchat.kernel.record import (
    Event,
    ObjectTrack,
    Provenance,
    SpeechSegment,
    TrackPoint,
    VideoContext,
    VideoInfo,
)

# ---------------------------------------------------------------------------------------------
# Generator


def _parser() -> argparse.ArgumentParser:
    from vidchat.cli.score import add_commands

    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    return parser


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    # Made through the CLI command, which checks `vidchat fidelity-gen` on the way.
    out = tmp_path_factory.mktemp("fid")
    args = _parser().parse_args(["fidelity-gen", str(out), "--preset", "clip10", "--seed", "0"])
    assert args.func(args) == 0
    return Truth.load(out / "clip10-s0.truth.json")


def _probe(path) -> dict:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "format=duration:stream=codec_type,width,height",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)


def _frames(path, w: int, h: int) -> np.ndarray:
    raw = subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-i",
            str(path),
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3).astype(np.int16)


def test_generated_file_has_the_truths_duration_size_and_tracks(clip):
    info = _probe(clip.video)
    assert abs(float(info["format"]["duration"]) - clip.duration) < 0.1
    kinds = sorted(s["codec_type"] for s in info["streams"])
    assert kinds == ["audio", "video"]
    v = next(s for s in info["streams"] if s["codec_type"] == "video")
    assert (v["width"], v["height"]) == (clip.width, clip.height) == (640, 360)
    import hashlib
    from pathlib import Path

    assert clip.sha256 == hashlib.sha256(Path(clip.video).read_bytes()).hexdigest()
    assert clip.cuts and clip.speech and clip.texts and clip.persons


def test_cuts_are_where_the_truth_says(clip):
    frames = _frames(clip.video, clip.width, clip.height)
    diff = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))  # diff[i]: frame i -> i+1
    cut_idx = {round(c * clip.fps) - 1 for c in clip.cuts}
    others = [d for i, d in enumerate(diff) if i not in cut_idx]
    for i in cut_idx:
        # A cut changes the whole picture; a walker or a caption changes a small part of it.
        assert diff[i] > 3 * max(others), (i, diff[i], max(others))


def test_speech_text_and_persons_are_where_the_truth_says(clip):
    audio = decode_audio(clip.video)
    for s in clip.speech:
        a = int(max(0.0, s.start - 0.4) * SAMPLE_RATE)
        b = int((s.end + 0.4) * SAMPLE_RATE)
        start, end = sound_bounds(audio[a:b])
        assert abs(a / SAMPLE_RATE + start - s.start) < 0.06
        assert abs(a / SAMPLE_RATE + end - s.end) < 0.06
    silent = [x for x in clip.audio if x.kind == "silence" and x.end - x.start > 0.5]
    assert silent
    for x in silent:
        seg = audio[int((x.start + 0.1) * SAMPLE_RATE) : int((x.end - 0.1) * SAMPLE_RATE)]
        assert np.sqrt(np.mean(seg**2)) < 0.005

    frames = _frames(clip.video, clip.width, clip.height)
    for tx in clip.texts:
        x1, y1, x2, y2 = (int(v) for v in tx.box)
        on = frames[round((tx.start + tx.end) / 2 * clip.fps)][y1:y2, x1:x2]
        off_t = tx.end + 0.3 if tx.end + 0.3 < clip.duration else tx.start - 0.3
        off = frames[round(off_t * clip.fps)][y1:y2, x1:x2]
        assert np.abs(on - off).mean() > 25  # the caption's white box and letters are there
        assert (on.min(axis=2) > 200).mean() > 0.3  # the white box around dark letters

    sprite_h = int(clip.height * 0.45)
    for p in clip.persons:
        t = p.path[len(p.path) // 2].t
        box = p.box_at(t)
        sprite, inner = person_sprite(p.crop, sprite_h)
        x, y = round(box[0] - inner[0]), round(box[1] - inner[1])
        region = frames[round(t * clip.fps)][y : y + sprite.shape[0], x : x + sprite.shape[1]]
        if region.shape[:2] == sprite.shape[:2]:
            # Overlapping walkers may cover part of each other: most pixels still match.
            close = (np.abs(region - sprite.astype(np.int16)).mean(axis=2) < 25).mean()
            assert close > 0.6, (p.id, t, close)


def test_plan_is_seeded():
    a, b, c = (
        plan("x", 3, PRESETS["clip30"]),
        plan("x", 3, PRESETS["clip30"]),
        plan("x", 4, PRESETS["clip30"]),
    )
    assert (a.shots, a.texts, a.audio) == (b.shots, b.texts, b.audio)
    assert [p.xy0 for p in a.persons] == [p.xy0 for p in b.persons]
    assert (a.shots, a.texts) != (c.shots, c.texts)
    # Consecutive shots never show the same photograph (every boundary is a hard cut).
    assert all(s.photo != t.photo for s, t in zip(a.shots, a.shots[1:], strict=False))


def test_the_hour_plan_covers_the_hour_sparsely():
    p = plan("hour", 0, PRESETS["hour"])
    assert p.shots[0].start == 0 and p.shots[-1].end == 3600
    assert all(a.end == b.start for a, b in zip(p.shots, p.shots[1:], strict=False))
    assert 25 <= len(p.shots) <= 70
    assert p.texts and all(0 < t.start < t.end <= 3600 for t in p.texts)
    assert p.audio and all(0 < offset < 3600 for offset, _, _ in p.audio)
    assert {kind for _, kind, _ in p.audio} == {"speech", "music"}


@pytest.mark.slow
def test_the_hour_video_is_generated_cheaply(tmp_path):
    import time

    t0 = time.perf_counter()
    truth = generate("hour", tmp_path, preset="hour", seed=0)
    took = time.perf_counter() - t0
    info = _probe(truth.video)
    assert abs(float(info["format"]["duration"]) - 3600) < 0.5
    v = next(s for s in info["streams"] if s["codec_type"] == "video")
    assert (v["width"], v["height"]) == (320, 180)
    assert took < 180, f"the hour took {took:.0f} s to generate"


def test_bad_names_presets_and_suites_are_one_line_errors(tmp_path):
    from bench.fidelity.run import parse_suite
    from vidchat.apps.fidelity.generate import GeneratorError

    with pytest.raises(GeneratorError, match="letters, digits"):
        generate("a/b", tmp_path)
    with pytest.raises(GeneratorError, match="expected one of"):
        generate("a", tmp_path, preset="clip99")
    assert parse_suite("clip10:3, clip60") == [("clip10", 3), ("clip60", 0)]
    with pytest.raises(GeneratorError, match="PRESET:SEED"):
        parse_suite("clip10:x")
    # The bench's command line says so in one line (exit 2), before generating anything.
    from bench.fidelity.run import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--suite", "clip300:3"])
    assert exit_info.value.code == 2


# ---------------------------------------------------------------------------------------------
# Scorer on hand-built records


def _truth() -> Truth:
    path = [PathPoint(t=t / 2, box=(100 + 10 * t, 100, 150 + 10 * t, 220)) for t in range(0, 17)]
    return Truth(
        name="hand",
        seed=0,
        video="hand.mp4",
        duration=12.0,
        width=640,
        height=360,
        fps=10,
        shots=[
            ShotTruth(start=0, end=4, photo="coffee", tags=["espresso"]),
            ShotTruth(start=4, end=8, photo="chelsea", tags=["tabby"]),
            ShotTruth(start=8, end=12, photo="rocket", tags=["missile"]),
        ],
        speech=[
            SpeechTruth(start=1, end=3, text="Please open the window"),
            SpeechTruth(start=6, end=9, text="We will meet at the library after lunch"),
        ],
        texts=[
            TextTruth(start=0.5, end=3, text="GRAND OPENING", box=(10, 10, 200, 40)),
            TextTruth(start=5, end=7, text="NORTH STATION", box=(10, 10, 200, 40)),
        ],
        persons=[
            PersonTruth(id="person#1", first_seen=0, last_seen=8, crop="red-jacket", path=path)
        ],
    )


def _perfect(truth: Truth) -> VideoContext:
    info = VideoInfo(
        path="hand.mp4",
        sha256="0" * 64,
        size_bytes=1,
        duration=truth.duration,
        fps="10/1",
        width=640,
        height=360,
        has_audio=True,
    )
    ctx = VideoContext(video=info)
    ctx.speech = [SpeechSegment(start=s.start, end=s.end, text=s.text + ".") for s in truth.speech]
    ctx.events = [
        Event(start=c, end=c, kind="shot", text="shot cut", source="shots") for c in truth.cuts
    ]
    ctx.events += [
        Event(start=t.start, end=t.end, kind="ocr", text=t.text, source="ocr") for t in truth.texts
    ]
    ctx.events += [
        Event(start=s.start, end=s.end, kind="tag", text=s.tags[0], source="tags", confidence=0.9)
        for s in truth.shots
    ]
    p = truth.persons[0]
    ctx.objects = [
        ObjectTrack(
            id="person#7",
            label="person",
            first_seen=p.first_seen,
            last_seen=p.last_seen,
            source="detect",
            trajectory=[TrackPoint(t=q.t, box=q.box) for q in p.path],
        )
    ]
    ctx.provenance = [
        Provenance(name=n, version="1", status="ok")
        for n in ("asr", "detect", "shots", "ocr", "tags")
    ]
    return ctx.sort()


def test_perfect_record_scores_perfectly():
    truth = _truth()
    s = score(_perfect(truth), truth)
    assert s.speech.wer == 0 and s.speech.time_error_s == 0 and s.speech.sentences_heard == 2
    assert s.text.recall == 1 and s.text.precision == 1 and s.text.time_error_s == 0
    assert s.objects.count_error == 0 and s.objects.idf1 == 1 and s.objects.detection_recall == 1
    assert (s.shots.precision, s.shots.recall, s.shots.f1) == (1, 1, 1)
    assert s.tags.accuracy == 1
    assert s.render.facts == s.render.in_record == s.render.kept == 2 + 2 + 1 + 2
    assert s.render.kept_of_record == 1 and s.render.missing == []
    assert s.render.tokens_per_min == s.render.tokens / (12 / 60)
    assert "ok" in table([s]) and "MISS" not in table([s])


def test_a_wrong_word_gives_the_expected_wer():
    truth = _truth()
    ctx = _perfect(truth)
    ctx.speech[1].text = "We will meet at the library after launch"  # 1 of 12 words wrong
    ctx.speech.append(SpeechSegment(start=10.5, end=11.5, text="thank you"))  # 2 inserted words
    s = score(ctx, truth)
    assert s.speech.wer == pytest.approx(3 / 12)
    assert word_error_rate("We will meet", "we will meat") == pytest.approx(1 / 3)
    assert "MISS" in table([s])


def test_a_missed_cut_drops_recall_and_a_late_cut_is_outside_tolerance():
    truth = _truth()
    ctx = _perfect(truth)
    ctx.events = [e for e in ctx.events if not (e.kind == "shot" and e.start == 8)]
    s = score(ctx, truth)
    assert (s.shots.precision, s.shots.recall) == (1, 0.5)
    assert s.shots.f1 == pytest.approx(2 / 3)
    ctx.events.append(Event(start=8.7, end=8.7, kind="shot", text="shot cut", source="shots"))
    s = score(ctx, truth, ScoreConfig(cut_tolerance=0.6))
    assert (s.shots.precision, s.shots.recall) == (0.5, 0.5)
    assert score(ctx, truth, ScoreConfig(cut_tolerance=1.0)).shots.f1 == 1


def test_an_identity_switch_lowers_idf1_by_the_expected_amount():
    truth = _truth()
    ctx = _perfect(truth)
    whole = ctx.objects[0].trajectory
    a, b = whole[:6], whole[6:]  # samples at 0..2.5 s, then 3..8 s
    ctx.objects = [
        ObjectTrack(
            id="person#1",
            label="person",
            first_seen=a[0].t,
            last_seen=a[-1].t,
            source="d",
            trajectory=a,
        ),
        ObjectTrack(
            id="person#2",
            label="person",
            first_seen=b[0].t,
            last_seen=b[-1].t,
            source="d",
            trajectory=b,
        ),
    ]
    s = score(ctx, truth)
    assert s.objects.count_error == 1 and s.objects.detection_recall == 1
    # 17 truth samples (0..8 s every 0.5 s), 17 record samples; the best single id covers 11.
    assert s.objects.idf1 == pytest.approx(2 * 11 / (17 + 17))


def test_ocr_words_wrong_and_extra():
    truth = _truth()
    ctx = _perfect(truth)
    ocr = [e for e in ctx.events if e.kind == "ocr"]
    ocr[0].text = "GRAND OPENlNG"  # one of four truth words misread
    ctx.events.append(Event(start=10, end=10, kind="ocr", text="EXIT", source="ocr"))
    s = score(ctx, truth)
    assert s.text.recall == 0.75 and s.text.precision == pytest.approx(3 / 5)


def test_absent_perceivers_are_not_applicable_and_a_small_budget_loses_facts():
    truth = _truth()
    ctx = _perfect(truth)
    ctx.events = [e for e in ctx.events if e.kind not in ("ocr", "tag")]
    ctx.provenance = [p for p in ctx.provenance if p.name not in ("ocr", "tags")]
    s = score(ctx, truth)
    assert s.text.recall is None and s.text.note == "n/a (no ocr perceiver in record)"
    assert s.tags.accuracy is None and s.tags.note == "n/a (no tags perceiver in record)"
    assert "n/a (no ocr perceiver in record)" in table([s])
    assert s.render.in_record == 2 + 1 + 2 and s.render.kept_of_truth == pytest.approx(5 / 7)
    tight = score(ctx, truth, ScoreConfig(budget=60))
    assert tight.render.kept < tight.render.in_record and tight.render.missing
    assert tight.render.tokens <= 60 or tight.render.tokens < s.render.tokens


def test_score_command(tmp_path, capsys):
    from vidchat.kernel.errors import InputError

    truth = _truth()
    rec, tru = tmp_path / "r.json", tmp_path / "t.json"
    _perfect(truth).save(rec)
    truth.save(tru)
    parser = _parser()
    args = parser.parse_args(["score", str(rec), str(tru), "--json", str(tmp_path / "s.json")])
    assert args.func(args) == 0
    assert "shot cut F1" in capsys.readouterr().out
    assert json.loads((tmp_path / "s.json").read_text())["shots"]["f1"] == 1
    args = parser.parse_args(["score", str(tru), str(rec)])  # swapped: truth is not a record
    with pytest.raises(InputError, match="not a vidchat record"):
        args.func(args)
    truth.sha256 = "1" * 64  # the truth of another video than the record's
    truth.save(tru)
    args = parser.parse_args(["score", str(rec), str(tru)])
    with pytest.raises(InputError, match="score a record of the truth's video"):
        args.func(args)
    args = parser.parse_args(["fidelity-gen", str(tmp_path), "--name", "a/b"])
    with pytest.raises(InputError, match="letters, digits"):
        args.func(args)


# ---------------------------------------------------------------------------------------------
# End to end


@pytest.mark.slow
def test_offline_profile_on_a_generated_clip_meets_the_targets(tmp_path, capsys):
    from bench.fidelity import run

    out = tmp_path / "fidelity.json"
    assert run.main(["--suite", "clip10:0", "--out", str(out), "--keep", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "speech WER" in printed and str(out) in printed
    s = json.loads(out.read_text())["scores"][0]
    assert s["speech"]["wer"] <= 0.10
    assert s["shots"]["f1"] >= 0.95
    assert s["render"]["kept_of_record"] >= 0.95
    assert s["objects"]["detection_recall"] > 0.5
    # the bench's suite carries the animal photographs by default (--no-animals: without)
    assert (tmp_path / "clip10-s0-animals.record.json").is_file()
    assert s["classes"]["animal"]["truth_samples"] > 0


# ---------------------------------------------------------------------------------------------
# COCO objects: generator truth and per-class scores


def test_objects_are_where_the_truth_says(clip):
    from vidchat.apps.fidelity.generate import PHOTO_OBJECTS, SPRITES, object_sprite

    assert clip.objects, "expected objects in photos and moving sprites"
    assert {o.label for o in clip.objects} <= {"person", "cup", "cat", "truck"}
    for o in clip.objects:
        assert 0 <= o.first_seen < o.last_seen <= clip.duration
        x1, y1, x2, y2 = o.path[0].box
        assert 0 <= x1 < x2 <= clip.width and 0 <= y1 < y2 <= clip.height
        if not o.moving:
            # A static object is its shot's photograph's: same span, label listed for that photo.
            shot = next(s for s in clip.shots if s.start == o.first_seen)
            assert o.crop == shot.photo and shot.end == o.last_seen
            assert o.label in {label for label, _ in PHOTO_OBJECTS[shot.photo]}
    moving = [o for o in clip.objects if o.moving]
    assert moving and all(o.label == SPRITES[o.crop][0] for o in moving)
    frames = _frames(clip.video, clip.width, clip.height)
    sprite_h = int(clip.height * 0.35)
    for o in moving:
        t = o.path[len(o.path) // 2].t
        box = o.box_at(t)
        sprite, inner = object_sprite(o.crop, sprite_h)
        x, y = round(box[0] - inner[0]), round(box[1] - inner[1])
        region = frames[round(t * clip.fps)][y : y + sprite.shape[0], x : x + sprite.shape[1]]
        if region.shape[:2] == sprite.shape[:2]:
            close = (np.abs(region - sprite.astype(np.int16)).mean(axis=2) < 25).mean()
            assert close > 0.5, (o.id, t, close)  # walkers may cross in front


def test_per_class_scores_and_groups():
    from vidchat.apps.fidelity.score import score_classes
    from vidchat.apps.fidelity.truth import ObjectTruth

    box = (10.0, 10.0, 110.0, 90.0)
    truth = Truth(
        name="t", seed=0, video="t.mp4", duration=4.0, width=200, height=100, fps=10,
        objects=[
            ObjectTruth(id="cat#1", label="cat", first_seen=0, last_seen=4, crop="chelsea",
                        path=[PathPoint(t=0, box=box), PathPoint(t=4, box=box)]),
        ],
    )  # fmt: skip
    info = VideoInfo(path="t.mp4", sha256="0" * 64, size_bytes=1, duration=4.0, fps="10/1",
                     width=200, height=100, has_audio=False)  # fmt: skip

    def record(label: str) -> VideoContext:
        track = ObjectTrack(
            id=f"{label}#1", label=label, first_seen=0, last_seen=4, source="detect",
            trajectory=[TrackPoint(t=float(t), box=box) for t in range(5)],
        )  # fmt: skip
        prov = Provenance(name="detect", version="2", status="ok")
        return VideoContext(video=info, objects=[track], provenance=[prov])

    right = score_classes(record("cat"), truth, ScoreConfig())
    assert right["cat"].recall == 1 and right["cat"].precision == 1
    assert right["animal"].recall == 1
    # A cat recorded as a dog: the class is missed, the animal is found.
    dog = score_classes(record("dog"), truth, ScoreConfig())
    assert dog["cat"].recall == 0 and dog["dog"].precision == 0
    assert dog["animal"].recall == 1 and dog["animal"].precision == 1
    assert "vehicle" not in dog
    # A car where there is none: precision 0, no truth to recall.
    car = score_classes(record("car"), truth, ScoreConfig())
    assert car["vehicle"].precision == 0 and car["vehicle"].recall is None


# ---------------------------------------------------------------------------------------------
# Visibility: what the generator drew over an object, and the scorer's don't-care rule


def test_visible_share_counts_covered_pixels_once_and_clips_to_the_frame():
    from vidchat.apps.fidelity.generate import visible_share

    box = (0.0, 0.0, 100.0, 100.0)
    assert visible_share(box, [], 640, 360) == 1.0
    assert visible_share(box, [(0, 0, 50, 100)], 640, 360) == 0.5
    # Two overlapping covers count the shared pixels once.
    assert visible_share(box, [(0, 0, 50, 100), (25, 0, 75, 100)], 640, 360) == 0.25
    # Half the box is outside a 50 px wide frame: only the visible half counts.
    assert visible_share(box, [(0, 0, 25, 100)], 50, 360) == 0.5
    assert visible_share(box, [(-10, -10, 200, 200)], 640, 360) == 0.0


def test_truth_visibility_matches_the_pixels_drawn(tmp_path):
    """Every moving object's sample says how much of its box still shows the sprite: checked on
    the frames of a generated clip where a walker crosses in front."""
    from vidchat.apps.fidelity.generate import object_sprite

    out = generate("vis", tmp_path, preset="clip30", seed=1)
    frames = _frames(out.video, out.width, out.height)
    sprite_h = int(out.height * 0.35)
    checked = 0
    for o in (o for o in out.objects if o.moving):
        sprite, inner = object_sprite(o.crop, sprite_h)
        for q in o.path:
            k = round(q.t * out.fps)
            if k >= len(frames) or abs(k / out.fps - q.t) > 1e-6:
                continue
            x, y = round(q.box[0] - inner[0]), round(q.box[1] - inner[1])
            region = frames[k][y : y + sprite.shape[0], x : x + sprite.shape[1]]
            if region.shape[:2] != sprite.shape[:2]:
                continue
            shows = (np.abs(region - sprite.astype(np.int16)).mean(axis=2) < 25).mean()
            assert abs(shows - q.visible) < 0.12, (o.id, q.t, shows, q.visible)
            checked += q.visible < 0.95
    assert checked >= 3, "expected walkers in front of some moving objects on clip30-s1"


def test_a_mostly_hidden_object_is_dont_care_for_class_scores():
    from vidchat.apps.fidelity.score import score_classes
    from vidchat.apps.fidelity.truth import ObjectTruth

    box = (10.0, 10.0, 110.0, 90.0)
    path = [PathPoint(t=float(t), box=box, visible=0.2 if t >= 2 else 1.0) for t in range(5)]
    truth = Truth(
        name="t", seed=0, video="t.mp4", duration=4.0, width=200, height=100, fps=10,
        objects=[ObjectTruth(id="cat#1", label="cat", first_seen=0, last_seen=4, crop="chelsea",
                             path=path, moving=True)],
    )  # fmt: skip
    info = VideoInfo(path="t.mp4", sha256="0" * 64, size_bytes=1, duration=4.0, fps="10/1",
                     width=200, height=100, has_audio=False)  # fmt: skip
    prov = [Provenance(name="detect", version="2", status="ok")]

    def record(last: float) -> VideoContext:
        track = ObjectTrack(
            id="cat#1", label="cat", first_seen=0, last_seen=last, source="detect",
            trajectory=[TrackPoint(t=t / 2, box=box) for t in range(int(last * 2) + 1)],
        )  # fmt: skip
        return VideoContext(video=info, objects=[track], provenance=prov)

    # Samples every 0.5 s: t = 0..1.5 visible (4), 2.0 half-way (visible 0.2 from the path at
    # 2.0), 2.5..4.0 hidden. A record that stops when the cat is hidden loses nothing ...
    early = score_classes(record(1.5), truth, ScoreConfig())["cat"]
    assert early.recall == 1 and early.precision == 1 and early.truth_samples == 4
    assert early.hidden_samples == 5
    # ... and one that follows it behind the walker gains nothing either: don't care.
    full = score_classes(record(4.0), truth, ScoreConfig())["cat"]
    assert full.recall == 1 and full.precision == 1 and full.record_samples == 4
    # Counting every sample (min_visible 0) is the old rule.
    old = score_classes(record(1.5), truth, ScoreConfig(min_visible=0.0))["cat"]
    assert old.truth_samples == 9 and old.recall == 4 / 9 and old.hidden_samples == 0
    # The table says how many samples each group's recall counts (a recall over 4 is noise).
    from vidchat.apps.fidelity.score import score, table

    row = next(x for x in table([score(record(1.5), truth)]).splitlines()
               if x.startswith("vehicle / animal samples counted"))  # fmt: skip
    assert row.split()[-1] == "-/4", row


def test_per_track_errors_name_switches_fragments_false_and_shared_tracks():
    from vidchat.apps.fidelity.score import ObjectScore, track_errors

    out = ObjectScore()
    # Truth a: record 0, a gap, record 0 again (a fragment), then record 1 (a switch).
    # Truth b: record 1 throughout, so record 1 is shared. Record 2 matches nobody.
    seen = [[0, 0, None, 0, 1], [1, 1, 1]]
    track_errors(out, seen, ["person#1", "person#2"], ["person#5", "person#6", "person#7"])
    assert (out.id_switches, out.fragments, out.false_tracks, out.shared_tracks) == (1, 1, 1, 1)
    assert out.timelines == {
        "person#1": "person#5x2 -x1 person#5x1 person#6x1",
        "person#2": "person#6x3",
    }


def test_the_identity_switch_shows_in_the_timeline():
    truth = _truth()
    ctx = _perfect(truth)
    whole = ctx.objects[0].trajectory
    a, b = whole[:6], whole[6:]
    ctx.objects = [
        ObjectTrack(id=f"person#{k}", label="person", first_seen=part[0].t,
                    last_seen=part[-1].t, source="d", trajectory=part)
        for k, part in ((1, a), (2, b))
    ]  # fmt: skip
    s = score(ctx, truth)
    assert (s.objects.id_switches, s.objects.fragments, s.objects.false_tracks) == (1, 0, 0)
    assert s.objects.timelines["person#1"].startswith("person#1x") and "person#2x" in (
        s.objects.timelines["person#1"]
    )
    assert "person id switches / fragments" in table([s])


def test_a_photograph_shown_in_two_shots_is_one_person_seen_twice():
    from vidchat.apps.fidelity.truth import ObjectTruth

    def shown(k: int, t0: float, t1: float) -> ObjectTruth:
        path = [PathPoint(t=t, box=(0, 0, 300, 360)) for t in np.arange(t0, t1 + 0.01, 0.5)]
        return ObjectTruth(id=f"photo-person#{k}", label="person", first_seen=t0, last_seen=t1,
                           crop="astronaut", path=path)  # fmt: skip

    truth = _truth().model_copy(update={"objects": [shown(1, 0.0, 2.0), shown(2, 6.0, 8.0)]})
    people = truth.everyone()
    assert [p.id for p in people] == ["person#1", "photo-person#1"]
    photo = people[1]
    assert (photo.first_seen, photo.last_seen) == (0.0, 8.0)
    assert photo.box_at(1.0) == (0, 0, 300, 360) and photo.box_at(7.0) == (0, 0, 300, 360)
    assert photo.box_at(4.0) is None and photo.visible_at(4.0) is None  # away between shots

    def record(*parts: tuple[str, float, float]) -> VideoContext:
        ctx = _perfect(truth)
        ctx.objects = [ctx.objects[0]] + [
            ObjectTrack(id=oid, label="person", first_seen=a, last_seen=b, source="detect",
                        trajectory=[TrackPoint(t=t, box=(0, 0, 300, 360))
                                    for t in np.arange(a, b + 0.01, 0.5)])
            for oid, a, b in parts
        ]  # fmt: skip
        return ctx

    # A record with one id over both showings is perfect; two ids miss one showing.
    merged = _perfect(truth)
    pts = [TrackPoint(t=t, box=(0, 0, 300, 360)) for t in [*np.arange(0, 2.01, 0.5),
                                                           *np.arange(6, 8.01, 0.5)]]  # fmt: skip
    merged.objects = [merged.objects[0], ObjectTrack(id="person#9", label="person",
                      first_seen=0, last_seen=8, source="detect", trajectory=pts)]  # fmt: skip
    s1 = score(merged, truth)
    s2 = score(record(("person#8", 0.0, 2.0), ("person#9", 6.0, 8.0)), truth)
    assert s1.objects.count_error == 0 and s1.objects.idf1 == 1
    assert s2.objects.count_error == 1 and s2.objects.idf1 is not None and s2.objects.idf1 < 1
    assert s1.objects.truth_count == s2.objects.truth_count == 2
