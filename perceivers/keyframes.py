"""Keyframes: the few slow-stream frames that costly perceivers (OCR, tags, captions) look at.

A frame becomes a keyframe when it shows something the last keyframe did not:

1. the first frame of the stream;
2. the first frame at or after a shot cut (``cut_times``, e.g. from the ``shots`` perceiver),
   whatever it looks like, so every shot that holds a slow frame gets at least one keyframe;
3. a *new view*: it is not a near-duplicate of the last keyframe, its perceptual hash differs
   from the last keyframe's by more than ``hash_distance`` bits (of 64), and at least
   ``min_interval_s`` passed since that keyframe (the floor keeps a fast pan from making every
   frame a keyframe);
4. a *refresh*: ``max_interval_s`` passed since the last keyframe and the frame is not a
   near-duplicate of it.

Near-duplicate means no cell of a 16x16 grid of mean grey levels moved by more than
``duplicate_delta`` (0-255). Small local changes that leave the global hash alone (a caption
line appearing, a person walking in) exceed that in some cell; sensor noise and re-encoding do
not. A near-duplicate frame past the interval is skipped and the next frames are checked the
same way, so a static 10-minute shot gives ONE keyframe, while a slowly changing one gets a
keyframe about every ``max_interval_s``. The near-duplicate test also vetoes rule 3: on flat,
dark or noisy pictures the hash compares near-equal cells and its bits flip on noise alone.

Frames are compared with the last *keyframe* (not the previous frame), so slow drift adds up
until it counts. Selection streams: it keeps the last keyframe's 64-bit hash and a 16x16
thumbnail, never the frames themselves, and yields each keyframe as soon as it is seen.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from vidchat.kernel.record import VideoContext
from vidchat.perceivers.base import Frame, Media

KeyframeReason = Literal["first", "cut", "change", "interval"]

_HASH_W, _HASH_H = 9, 8  # dHash: 8 rows of 8 left-right comparisons = 64 bits
_GRID = 16  # near-duplicate test: 16x16 cells of mean grey level
_CUT_EPS = 1e-6  # a frame at exactly a cut's time is the cut's frame


class KeyframeOptions(BaseModel):
    """How keyframes are chosen from the slow stream (see the module docstring for the rule)."""

    model_config = ConfigDict(extra="forbid")

    max_interval_s: float = Field(
        10.0,
        gt=0,
        description="seconds after which a frame that is not a near-duplicate of the last "
        "keyframe becomes a keyframe",
    )
    hash_distance: int = Field(
        10,
        ge=0,
        le=64,
        description="Hamming distance between 64-bit perceptual hashes above which a frame is "
        "a new view",
    )
    min_interval_s: float = Field(
        0.0, ge=0, description="seconds a new-view keyframe keeps from the last keyframe"
    )
    duplicate_delta: float = Field(
        8.0,
        ge=0,
        le=255,
        description="largest change of any 16x16-grid cell's mean grey level (0-255) under "
        "which a frame is a near-duplicate of the last keyframe",
    )

    @model_validator(mode="after")
    def _intervals(self) -> KeyframeOptions:
        if self.min_interval_s > self.max_interval_s:
            raise ValueError(
                f"min_interval_s ({self.min_interval_s}) must not exceed max_interval_s "
                f"({self.max_interval_s})"
            )
        return self


@dataclass(frozen=True)
class Keyframe:
    """A chosen frame, why it was chosen, and its hash distance from the previous keyframe."""

    frame: Frame
    reason: KeyframeReason
    distance: int  # Hamming distance to the previous keyframe's hash (0 for the first)


def _grey(image: np.ndarray) -> np.ndarray:
    """uint8 RGB (H, W, 3) or grey (H, W) -> float32 grey (H, W), ITU-R 601 luma."""
    if image.ndim == 2:
        return image.astype(np.float32)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected an image of shape (H, W) or (H, W, 3), got {image.shape}")
    rgb = image[..., :3].astype(np.float32)
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _area_resize(grey: np.ndarray, side: int) -> np.ndarray:
    import cv2

    # INTER_AREA averages every source pixel into its cell: no aliasing on big frames.
    return cv2.resize(grey, (side, side), interpolation=cv2.INTER_AREA)


def perceptual_hash(image: np.ndarray) -> int:
    """64-bit perceptual hash of an RGB or grey image: a difference hash (dHash) of a blurred
    thumbnail.

    The image is turned grey, area-resized to 36x32, blurred (Gaussian, sigma 1.5 px there),
    and area-resized to 9x8; each of the 64 bits says whether a cell is brighter than its left
    neighbour (row-major, top-left first). Similar pictures (rescaled, re-encoded, a person
    moving a little) get hashes a few bits apart; a different view changes about half of the
    64 bits. Compare with `hamming`.

    Why this hash: on the sample videos a DCT pHash flipped 10-16 bits between seconds of a
    static camera (vtest.avi), because median-thresholded low frequencies sit near their
    threshold; the blurred dHash flips 0-9 there and still 30+ at Megamind's shot cuts.
    """
    import cv2

    grey = _grey(image)
    small = cv2.resize(grey, (_HASH_W * 4, _HASH_H * 4), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 1.5)
    cells = cv2.resize(small, (_HASH_W, _HASH_H), interpolation=cv2.INTER_AREA)
    bits = (cells[:, 1:] > cells[:, :-1]).flatten()
    value = 0
    for b in bits:
        value = (value << 1) | int(b)
    return value


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two hashes."""
    return (a ^ b).bit_count()


def _thumbnail(image: np.ndarray) -> np.ndarray:
    return _area_resize(_grey(image), _GRID)


def iter_keyframes(
    frames: Iterable[Frame],
    options: KeyframeOptions | None = None,
    cut_times: Sequence[float] = (),
) -> Iterator[Keyframe]:
    """Like `select_keyframes`, with the reason each keyframe was chosen."""
    opts = options or KeyframeOptions()
    cuts = sorted(float(c) for c in cut_times)
    last_t: float | None = None
    last_hash = 0
    last_thumb: np.ndarray | None = None
    for frame in frames:
        h = perceptual_hash(frame.image)
        thumb = _thumbnail(frame.image)
        reason: KeyframeReason | None = None
        distance = 0
        if last_t is None or last_thumb is None:
            reason = "first"
        else:
            distance = hamming(h, last_hash)
            since = frame.t - last_t
            # A near-duplicate is never a new view, whatever the hash says: on flat, dark or
            # noisy pictures the hash's bits compare near-equal cells and flip on noise.
            duplicate = float(np.abs(thumb - last_thumb).max()) <= opts.duplicate_delta
            # A cut in (last keyframe, this frame]: this is the first frame of a new shot.
            i = bisect.bisect_right(cuts, last_t + _CUT_EPS)
            if i < len(cuts) and cuts[i] <= frame.t + _CUT_EPS:
                reason = "cut"
            elif duplicate:
                reason = None
            elif distance > opts.hash_distance and since >= opts.min_interval_s:
                reason = "change"
            elif since >= opts.max_interval_s:
                reason = "interval"
        if reason is not None:
            last_t, last_hash, last_thumb = frame.t, h, thumb
            yield Keyframe(frame, reason, distance)


def select_keyframes(
    frames: Iterable[Frame],
    options: KeyframeOptions | None = None,
    cut_times: Sequence[float] = (),
) -> Iterator[Frame]:
    """The keyframes among `frames` (in time order), lazily; see the module docstring's rule.

    `cut_times` are shot-cut times in seconds (any order). Only the last keyframe's hash and
    thumbnail are kept, so this streams over a video of any length.
    """
    for kf in iter_keyframes(frames, options, cut_times):
        yield kf.frame


def keyframes_with_extent(
    frames: Iterable[Frame],
    options: KeyframeOptions | None = None,
    cut_times: Sequence[float] = (),
) -> Iterator[tuple[Keyframe, float]]:
    """Each keyframe with the time of the last stream frame it stands for.

    Frames between two keyframes were judged to show nothing new, so what a keyframe shows
    holds until the frame before the next keyframe (or the stream's last frame). That time is
    known only when the next keyframe is found, so each keyframe is yielded one keyframe late;
    one keyframe is held, never more.
    """
    # times of the frame before the current one, and of the current one
    times: list[float] = [0.0, 0.0]

    def tap() -> Iterator[Frame]:
        for f in frames:
            times[0], times[1] = times[1], f.t
            yield f

    pending: Keyframe | None = None
    for kf in iter_keyframes(tap(), options, cut_times):
        if pending is not None:
            yield pending, times[0]  # the frame just before this new keyframe
        pending = kf
    if pending is not None:
        yield pending, times[1]  # the stream's last frame


def cut_times_from(context: VideoContext) -> list[float]:
    """Shot-cut times in a record (the ``shot`` events of the ``shots`` perceiver), sorted."""
    return sorted(e.start for e in context.events if e.kind == "shot")


def media_keyframes(
    media: Media, options: KeyframeOptions, use_shots: bool
) -> Iterator[tuple[Keyframe, float]]:
    """Keyframes of a perceiver's slow stream with their extent (see `keyframes_with_extent`),
    using the upstream ``shots`` cuts when asked.

    A perceiver that passes ``use_shots=True`` must list ``shots`` in its `requires` (the cuts
    are read from `media.upstream`); without it only the hash and interval rules apply, which
    find hard cuts too (a cut changes about half the hash bits) and cost no second decode.
    """
    cuts = cut_times_from(media.upstream) if use_shots else ()
    return keyframes_with_extent(media.frames("slow"), options, cuts)
