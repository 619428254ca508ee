"""The generated comparison task: frames match their truth records, the text-path record holds
only what the shipped perceivers would give, questions are balanced and answer themselves from
the truth, and nothing about the answer is in the question."""

from __future__ import annotations

from collections import Counter

import numpy as np

from vidchat.embed_model.scenes import (
    COLOURS,
    DIRECTIONS,
    FPS,
    SIZES,
    TEXT_TYPES,
    VISUAL_TYPES,
    build_scene_dataset,
    describe_scene,
    draw_frames,
    random_scene_spec,
    scene_questions,
)
from vidchat.kernel.record import VideoContext


def test_frames_show_each_shape_in_its_colour_where_the_record_says():
    scene = random_scene_spec(7)
    frames = draw_frames(scene)
    assert frames.shape == (32, 112, 112, 3) and frames.dtype == np.uint8
    for s in scene.shapes:
        for k in (0, 31):
            x, y = s.at(k / FPS)
            side = SIZES[s.size]
            cx, cy = int(x + side / 2), int(y + side * 0.7)  # inside circle, square, triangle
            assert tuple(frames[k, cy, cx]) == COLOURS[s.colour]
    # Moving shapes end where their direction says; still ones do not move.
    for s in scene.shapes:
        (x0, y0), (x1, y1) = s.at(0.0), s.at(4.0)
        if s.direction is None:
            assert (x0, y0) == (x1, y1)
        else:
            dx, dy = DIRECTIONS[s.direction]
            assert (x1 - x0, y1 - y0) == (dx * 40, dy * 40)


def test_dataset_records_questions_and_splits(tmp_path):
    data = build_scene_dataset(tmp_path, 8)
    assert len(data) == 8 and {d.split for d in data} == {"train", "val", "test"}
    for d in data:
        truth = VideoContext.load(tmp_path / (d.video.rsplit("/", 1)[1][:-4] + ".truth.json"))
        text = VideoContext.load(d.record)
        # The text path gets speech and the on-screen word, no shapes and no colours.
        assert text.objects == [] and len(text.speech) == 1
        assert [e.kind for e in text.events] == ["ocr"]
        assert not any(c in text.to_json() for c in COLOURS)
        assert text.video.sha256 == truth.video.sha256 == d.sha256
        desc = next(q for q in d.QA if q.type == "description")
        assert desc.a == describe_scene(truth)
        for o in truth.objects:
            assert f"{o.attributes['colour']} {o.label}" in desc.a
        types = {q.type for q in d.QA}
        assert {"colour", "shape", "size", "count_moving", *TEXT_TYPES} <= types
    # Reuses what is on disk (resumable): same hashes the second time.
    again = build_scene_dataset(tmp_path, 8)
    assert [d.sha256 for d in again] == [d.sha256 for d in data]


def test_answers_are_balanced_and_right_by_construction():
    answers: dict[str, Counter[str]] = {}
    letters: Counter[int] = Counter()
    for seed in range(400):
        scene = random_scene_spec(seed)
        for q in scene_questions(scene):
            if not q.is_mc:
                continue
            answers.setdefault(q.type, Counter())[q.choices[q.answer_index]] += 1
            letters[q.answer_index] += 1
            if q.type == "count_moving":
                assert q.choices[q.answer_index] == str(len(scene.moving))
            if q.type == "first_move":
                first = min(scene.moving, key=lambda m: m.start)
                assert q.choices[q.answer_index] == first.name
    # Every visual type's answers are spread: no answer is right much more often than 1/k.
    for t in VISUAL_TYPES:
        c = answers[t]
        k = len(c)
        assert k >= 2, t
        assert max(c.values()) / sum(c.values()) < 1.6 / k, (t, c)
    assert max(letters.values()) / sum(letters.values()) < 0.4  # the letter gives nothing away


def test_questions_never_name_their_answer():
    for seed in range(200):
        for q in scene_questions(random_scene_spec(seed)):
            if q.is_mc and q.type in VISUAL_TYPES and q.type != "first_move":
                stem = q.q.split("\nOptions:")[0].lower()
                assert q.choices[q.answer_index].lower() not in stem.replace("small or large", "")


def test_training_videos_are_asked_everything_held_out_ones_one_per_type(tmp_path):
    from vidchat.embed_model.scenes import COUNT_PHRASINGS, FIRST_PHRASINGS

    for seed in range(60):
        scene = random_scene_spec(seed)
        every = [q for q in scene_questions(scene, every=True) if not q.is_mc]
        one = [q for q in scene_questions(scene) if not q.is_mc]
        by_type = Counter(q.type for q in every)
        n, m = len(scene.shapes), len(scene.moving)
        assert by_type["colour"] == by_type["shape"] == by_type["size"] == n
        assert by_type["direction"] == m
        assert by_type["count_moving"] == len(COUNT_PHRASINGS)
        assert by_type["first_move"] == (len(FIRST_PHRASINGS) if m >= 2 else 0)
        # Every object is asked about: its colour, shape, size (and direction) are all there.
        for s in scene.shapes:
            assert any(q.a == s.colour and s.shape in q.q for q in every if q.type == "colour")
            assert any(q.a == s.size and s.colour in q.q for q in every if q.type == "size")
        # The held-out form: one question per type, phrased as the first of each list.
        assert all(c == 1 for c in Counter(q.type for q in one).values())
        assert {q.q for q in one if q.type == "count_moving"} == {COUNT_PHRASINGS[0]}
        # Both forms agree on every answer they share.
        assert {(q.q, q.a) for q in one} <= {(q.q, q.a) for q in every}
    data = build_scene_dataset(tmp_path, 8)
    for d in data:
        n_count = sum(1 for q in d.QA if q.type == "count_moving" and not q.is_mc)
        assert n_count == (len(COUNT_PHRASINGS) if d.split == "train" else 1), d.split
