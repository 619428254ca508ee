"""Keyframe selection: perceptual hash, the selection rule, streaming, and real sample videos."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pytest
from pydantic import ValidationError

from tests.media import video_info
from vidchat.kernel.record import Event, VideoContext
from vidchat.kernel.samples import sample_path
from vidchat.perceivers.base import Frame
from vidchat.perceivers.keyframes import (
    KeyframeOptions,
    cut_times_from,
    hamming,
    iter_keyframes,
    keyframes_with_extent,
    perceptual_hash,
    select_keyframes,
)
from vidchat.testing.videos import decode_frames

# Megamind.avi's cuts (see tests/perceivers/test_shots.py): four shots after a black leader.
MEGAMIND_CUTS = [4.129, 6.465, 8.383]


def scene(seed: int, h: int = 120, w: int = 160) -> np.ndarray:
    """A smooth random 'scene' (blurred noise) so hashes have structure to work with."""
    import cv2

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(h // 8, w // 8, 3)).astype(np.uint8)
    return cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)


def noisy(image: np.ndarray, rng: np.random.Generator, amp: int = 3) -> np.ndarray:
    """The same picture with sensor/compression-like noise."""
    noise = rng.integers(-amp, amp + 1, size=image.shape)
    return np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def frames_of(images: list[np.ndarray], fps: float = 1.0) -> list[Frame]:
    return [Frame(index=i, t=i / fps, image=im) for i, im in enumerate(images)]


# ------------------------------------------------------------------------------ hash


def test_hash_is_64_bits_and_stable_under_rescale_and_noise():
    rng = np.random.default_rng(1)
    a = scene(1, 240, 320)
    h = perceptual_hash(a)
    assert 0 <= h < 1 << 64
    assert perceptual_hash(a) == h
    import cv2

    half = cv2.resize(a, (160, 120), interpolation=cv2.INTER_AREA)
    assert hamming(h, perceptual_hash(half)) <= 4
    assert hamming(h, perceptual_hash(noisy(a, rng))) <= 4
    # grey input gives the hash of the same picture's luma
    grey = (a.astype(np.float32) @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    assert hamming(h, perceptual_hash(grey)) <= 4


def test_hash_separates_different_scenes():
    hashes = [perceptual_hash(scene(s)) for s in range(8)]
    distances = [hamming(a, b) for a, b in itertools.combinations(hashes, 2)]
    assert min(distances) > 16, distances


def test_hash_rejects_non_images():
    with pytest.raises(ValueError, match=r"expected an image of shape \(H, W\) or \(H, W, 3\)"):
        perceptual_hash(np.zeros((4, 4, 5), np.uint8))


# ------------------------------------------------------------------------------ options


def test_options_forbid_unknown_keys_and_check_intervals():
    with pytest.raises(ValidationError, match="max_interval"):
        KeyframeOptions(max_interval=3)
    with pytest.raises(ValidationError, match="must not exceed max_interval_s"):
        KeyframeOptions(min_interval_s=5, max_interval_s=2)
    with pytest.raises(ValidationError):
        KeyframeOptions(hash_distance=65)
    assert KeyframeOptions().max_interval_s == 10.0 and KeyframeOptions().hash_distance == 10


# ------------------------------------------------------------------------------ the rule


def test_static_ten_minutes_gives_one_keyframe():
    rng = np.random.default_rng(2)
    base = scene(3)
    frames = (Frame(i, float(i), noisy(base, rng)) for i in range(600))  # 10 min at 1 fps
    kfs = list(iter_keyframes(frames, KeyframeOptions(max_interval_s=10)))
    assert [(k.frame.t, k.reason) for k in kfs] == [(0.0, "first")]


def test_new_view_each_scene_change():
    images = [scene(0)] * 5 + [scene(1)] * 5 + [scene(2)] * 5
    kfs = list(iter_keyframes(frames_of(images)))
    assert [(k.frame.t, k.reason) for k in kfs] == [(0, "first"), (5, "change"), (10, "change")]
    assert all(k.distance > 10 for k in kfs[1:])


def test_cut_forces_a_keyframe_even_for_a_similar_picture():
    rng = np.random.default_rng(3)
    base = scene(4)
    frames = frames_of([noisy(base, rng) for _ in range(8)])
    # the cut falls between two slow frames: the first frame after it is the keyframe
    kfs = list(iter_keyframes(frames, cut_times=[3.4, 5.0]))
    assert [(k.frame.t, k.reason) for k in kfs] == [(0, "first"), (4, "cut"), (5, "cut")]
    # two cuts between the same pair of frames make one keyframe; cuts before the first don't
    kfs = list(iter_keyframes(frames, cut_times=[-1.0, 0.0, 2.2, 2.6]))
    assert [(k.frame.t, k.reason) for k in kfs] == [(0, "first"), (3, "cut")]


def test_interval_takes_small_local_changes_and_skips_duplicates():
    rng = np.random.default_rng(5)
    base = scene(6, 240, 320)
    with_caption = base.copy()
    with_caption[200:230, 40:200] = 255  # a white caption bar: local, hash nearly unchanged
    assert hamming(perceptual_hash(base), perceptual_hash(with_caption)) <= 10
    images = [noisy(base, rng) for _ in range(15)] + [noisy(with_caption, rng) for _ in range(30)]
    kfs = list(iter_keyframes(frames_of(images), KeyframeOptions(max_interval_s=10)))
    # t=10 is still a duplicate of t=0, so the wait goes on; the caption appears at t=15; after
    # that keyframe nothing changes again
    assert [(k.frame.t, k.reason) for k in kfs] == [(0, "first"), (15, "interval")]


def test_min_interval_throttles_new_views():
    images = [scene(s) for s in range(10)]  # a new view every second
    opts = KeyframeOptions(min_interval_s=3, max_interval_s=10)
    assert [f.t for f in select_keyframes(frames_of(images), opts)] == [0, 3, 6, 9]
    # cuts are not throttled: every shot keeps its keyframe
    kept = [f.t for f in select_keyframes(frames_of(images), opts, cut_times=[1.0, 2.0])]
    assert kept == [0, 1, 2, 5, 8]


def test_streams_lazily():
    consumed = 0

    def endless() -> Iterator[Frame]:
        nonlocal consumed
        for i in itertools.count():
            consumed += 1
            yield Frame(i, float(i), scene(i % 3))

    first_three = list(itertools.islice(select_keyframes(endless()), 3))
    assert [f.t for f in first_three] == [0, 1, 2]
    assert consumed == 3


def test_extent_runs_to_the_frame_before_the_next_keyframe():
    images = [scene(0)] * 4 + [scene(1)] * 3
    got = [(k.frame.t, until) for k, until in keyframes_with_extent(frames_of(images))]
    assert got == [(0, 3), (4, 6)]
    assert list(keyframes_with_extent([])) == []


def test_cut_times_from_record():
    ctx = VideoContext(
        video=video_info(),
        events=[
            Event(start=5.0, end=5.0, kind="shot", text="shot cut", source="shots"),
            Event(start=2.0, end=2.0, kind="shot", text="shot cut", source="shots"),
            Event(start=1.0, end=3.0, kind="ocr", text="hello", source="ocr"),
        ],
    )
    assert cut_times_from(ctx) == [2.0, 5.0]


# ------------------------------------------------------------------------------ real videos


def shot_of(t: float) -> int:
    return sum(t >= c for c in MEGAMIND_CUTS)


@pytest.mark.parametrize("use_cuts", [True, False])
def test_megamind_every_shot_gets_a_keyframe(use_cuts):
    frames = decode_frames(sample_path("megamind"), 1.0)
    cuts = MEGAMIND_CUTS if use_cuts else ()
    kfs = list(iter_keyframes(frames, KeyframeOptions(), cut_times=cuts))
    shots_with_frames = {shot_of(f.t) for f in frames}
    assert {shot_of(k.frame.t) for k in kfs} == shots_with_frames == {0, 1, 2, 3}
    # fewer keyframes than slow frames: within a shot only real changes count
    assert len(kfs) < len(frames)
    if use_cuts:
        for c in MEGAMIND_CUTS:
            first_after = min(f.t for f in frames if f.t >= c)
            assert any(k.frame.t == first_after for k in kfs)


def test_static_camera_video_gives_few_keyframes():
    frames = decode_frames(sample_path("vtest"), 1.0, 384)  # 80 s, fixed camera, pedestrians
    kfs = list(select_keyframes(frames, KeyframeOptions(max_interval_s=10)))
    assert 1 + 7 <= len(kfs) <= 16, [f.t for f in kfs]  # about one per max_interval_s
    gaps = np.diff([f.t for f in kfs])
    assert gaps.max() <= 10 + 1  # nothing static for longer than the interval (+1 slow frame)
