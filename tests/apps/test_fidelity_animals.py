"""Animal photographs in the fidelity suite: the pinned photos are verified as installed, the
generator draws them where their truth says (the box is the animal's own opaque pixels), and
adding them changes nothing else a seed makes."""

from __future__ import annotations

import itertools
import subprocess

import numpy as np
import pytest

from vidchat.apps.fidelity import photos
from vidchat.apps.fidelity.generate import (
    ANIMAL_HEIGHTS,
    PRESETS,
    animal_sprite,
    generate,
    paste,
    photo,
    plan,
)
from vidchat.perceivers.detect import ANIMAL_LABELS

needs_photos = pytest.mark.skipif(
    bool(photos.missing()), reason="animal photos not installed (.ci/setup.d/52-animal-photos.sh)"
)


def test_every_photo_is_a_coco_animal_with_a_pinned_hash() -> None:
    assert {p.label for p in photos.ANIMAL_PHOTOS.values()} == ANIMAL_LABELS - {"cat"}
    for name, p in photos.ANIMAL_PHOTOS.items():
        assert len(p.sha256) == 64 and int(p.sha256, 16) >= 0, name
        assert p.path.startswith("animals/") and p.path.endswith(".png"), name


def test_missing_photos_say_how_to_install_them(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("VIDCHAT_DATA", str(tmp_path))
    assert photos.missing() == list(photos.ANIMAL_PHOTOS)
    with pytest.raises(photos.PhotosMissing, match=r"run \.ci/setup .*tuxpaint-stamps-default"):
        photos.photo_path("dog")
    assert photos.main(["check"]) == 1
    assert "missing or wrong" in capsys.readouterr().err


def test_install_refuses_a_file_that_is_not_the_pinned_one(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("VIDCHAT_DATA", str(tmp_path / "data"))
    root = tmp_path / "deb" / photos.PACKAGE_ROOT
    for p in photos.ANIMAL_PHOTOS.values():
        (root / p.path).parent.mkdir(parents=True, exist_ok=True)
        (root / p.path).write_bytes(b"not the photograph")
    with pytest.raises(photos.PhotosMissing, match=r"sha256 .* is not the expected"):
        photos.install(tmp_path / "deb")
    assert not (tmp_path / "data" / "photos").exists() or not any(
        f.suffix == ".png" for f in (tmp_path / "data").rglob("*")
    )


def test_paste_blends_by_alpha_and_clips_to_the_frame() -> None:
    frame = np.zeros((10, 10, 3), np.uint8)
    sprite = np.zeros((4, 4, 4), np.uint8)
    sprite[..., :3] = 200
    sprite[:2, :, 3] = 255  # top half opaque, bottom half transparent
    paste(frame, sprite, 8, 8)  # only a 2x2 corner lands in the frame
    assert (frame[8:10, 8:10, 0] == 200).all() and frame[:8].max() == 0
    frame[:] = 100
    sprite[2:, :, 3] = 128
    paste(frame, sprite, 0, 0)
    assert frame[0, 0, 0] == 200 and frame[3, 0, 0] == 150 and frame[5, 5, 0] == 100


@needs_photos
def test_animal_sprite_box_is_tight_around_the_opaque_pixels() -> None:
    for name in ("dog", "giraffe", "seagull"):
        sprite, (x1, y1, x2, y2) = animal_sprite(name, 120)
        assert sprite.shape[0] == 120 and sprite.shape[2] == 4
        opaque = sprite[:, :, 3] >= 128
        ys, xs = np.nonzero(opaque)
        assert (x1, y1, x2, y2) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        # cropped to the animal before scaling: the box fills the sprite within resampling
        assert x2 - x1 >= sprite.shape[1] - 3 and y2 - y1 >= 117, (name, sprite.shape)


@needs_photos
def test_animals_change_nothing_else_a_seed_makes() -> None:
    base = plan("a", 1, PRESETS["clip30"])
    more = plan("a", 1, PRESETS["clip30"], animals=True)
    assert more.shots == base.shots and more.texts == base.texts and more.audio == base.audio
    assert more.persons == base.persons
    assert more.objects[: len(base.objects)] == base.objects
    animals = more.objects[len(base.objects) :]
    assert animals and plan("a", 1, PRESETS["clip30"], animals=True).objects == more.objects
    kinds = set()
    for seed in range(4):
        p = plan("a", seed, PRESETS["clip60"], animals=True)
        for ob in p.objects:
            if ob.crop not in photos.ANIMAL_PHOTOS:
                continue
            assert ob.height in ANIMAL_HEIGHTS and ob.end > ob.start
            static = ob.xy0 == ob.xy1
            kinds.add(static)
            if static:  # stands within one shot: a cut is a new picture
                assert any(s.start <= ob.start and ob.end < s.end for s in p.shots), ob
        # one animal at a time
        spans = sorted((ob.start, ob.end) for ob in p.objects if ob.crop in photos.ANIMAL_PHOTOS)
        assert all(a[1] < b[0] for a, b in itertools.pairwise(spans))
    assert kinds == {True, False}


@needs_photos
def test_animals_are_drawn_inside_their_truth_boxes(tmp_path) -> None:
    truth = generate("an", tmp_path, preset="clip30", seed=1, animals=True)
    w, h = truth.width, truth.height
    raw = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", truth.video, "-f", "rawvideo",
         "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    frames = np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3).astype(np.int16)
    animals = [o for o in truth.objects if o.crop in photos.ANIMAL_PHOTOS]
    assert animals and all(o.label in ANIMAL_LABELS and o.height_share for o in animals)
    checked = 0
    for o in animals:
        for q in o.path:
            k = round(q.t * truth.fps)
            shot = next((s for s in truth.shots if s.start <= q.t < s.end), None)
            if shot is None or q.visible < 1.0 or k >= len(frames) or q.t - shot.start < 0.2:
                continue
            bg = photo(shot.photo, w, h).astype(np.int16)
            x1, y1, x2, y2 = (round(v) for v in q.box)
            changed = np.abs(frames[k] - bg).max(axis=2) > 40
            inside = changed[y1:y2, x1:x2]
            assert inside.mean() > 0.3, (o.id, q.t, inside.mean())
            # tight: the animal reaches each side of its box (3 px strips)
            for strip in (inside[:3], inside[-3:], inside[:, :3], inside[:, -3:]):
                assert strip.any(), (o.id, q.t)
            checked += 1
    assert checked >= 5


def test_group_recall_counts_any_animal_label_and_says_how_many_had_the_right_one() -> None:
    from vidchat.apps.fidelity.score import ScoreConfig, score_classes
    from vidchat.apps.fidelity.truth import ObjectTruth, PathPoint, Truth
    from vidchat.kernel.record import ObjectTrack, Provenance, TrackPoint, VideoContext, VideoInfo

    box = (10.0, 10.0, 110.0, 90.0)
    truth = Truth(
        name="t", seed=0, video="t.mp4", duration=4.0, width=200, height=100, fps=10,
        objects=[ObjectTruth(id="sheep#1", label="sheep", first_seen=0, last_seen=4, crop="ram",
                             path=[PathPoint(t=0, box=box), PathPoint(t=4, box=box)])],
    )  # fmt: skip
    info = VideoInfo(path="t.mp4", sha256="0" * 64, size_bytes=1, duration=4.0, fps="10/1",
                     width=200, height=100, has_audio=False)  # fmt: skip

    def scored(labels: list[str]) -> dict:
        # the first half of the samples (t = 0, 0.5, 1, 1.5) as labels[0], the rest as labels[1]
        tracks = [
            ObjectTrack(id=f"{lab}#{i + 1}", label=lab, first_seen=2.0 * i, last_seen=2.0 * i + 1.5,
                        source="detect",
                        trajectory=[TrackPoint(t=2.0 * i, box=box),
                                    TrackPoint(t=2.0 * i + 1.5, box=box)])
            for i, lab in enumerate(labels)
        ]  # fmt: skip
        prov = [Provenance(name="detect", version="4", status="ok")]
        return score_classes(VideoContext(video=info, objects=tracks, provenance=prov), truth,
                             ScoreConfig())  # fmt: skip

    s = scored(["sheep", "dog"])
    assert s["animal"].recall == pytest.approx(8 / 9) and s["sheep"].recall == pytest.approx(4 / 9)
    assert s["animal"].same_label_recall == pytest.approx(4 / 9)
    assert s["sheep"].same_label_recall is None  # a label's own recall already is "same label"
    assert scored(["dog", "dog"])["animal"].same_label_recall == 0
