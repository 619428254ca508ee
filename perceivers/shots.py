"""Shot cuts with PySceneDetect, computed on the fast frame stream.

A hard cut is a large change between two consecutive frames. That still holds when the frames
are a few per second apart (the fast stream: ~4 fps, ≤640 px), so this perceiver never needs a
full-rate decode: on Megamind.avi it finds the same cuts at 4 fps as PySceneDetect does at the
full 24 fps, each within one fast-frame interval (see tests/perceivers/test_shots.py).

The detectors are PySceneDetect's own classes, fed frame by frame through
``SceneDetector.process_frame(timecode, bgr_image)`` (scenedetect >= 0.7). Timecodes carry each
frame's real presentation time (``Frame.t``), so variable frame rate video gets true times.
Output: one ``Event(kind="shot")`` per cut, at the time of the first frame of the new shot.
"""

from __future__ import annotations

import bisect
import importlib.metadata as md
import inspect
from collections.abc import Iterator
from fractions import Fraction
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from vidchat.kernel.errors import PerceiverSkipped
from vidchat.kernel.record import Event
from vidchat.perceivers.base import Availability, Input, Media, Perceiver, PerceiverOptions

if TYPE_CHECKING:
    import numpy as np
    from scenedetect import FrameTimecode, SceneDetector, StatsManager

DetectorName = Literal["content", "adaptive", "threshold", "hash"]

# Timecodes are milliseconds: pts in units of 1/1000 s with a nominal "rate" of 1000, so a
# timecode's frame number equals its pts. Detectors that do frame-number arithmetic
# (ThresholdDetector's fade midpoint) then work in milliseconds, which is exact enough for any
# frame rate, and no detector depends on the fast stream's (possibly variable) rate.
_TIME_BASE = Fraction(1, 1000)
_RATE = Fraction(1000)

# scenedetect class name and the name of its threshold argument, per detector option value.
_DETECTORS: dict[str, tuple[str, str]] = {
    "content": ("ContentDetector", "threshold"),
    "adaptive": ("AdaptiveDetector", "adaptive_threshold"),
    "threshold": ("ThresholdDetector", "threshold"),
    "hash": ("HashDetector", "threshold"),
}

_MIN_SCENEDETECT = (0, 7)


class ShotsOptions(PerceiverOptions):
    """Options of the `shots` perceiver."""

    detector: DetectorName = Field(
        "content",
        description="PySceneDetect detector: content (HSV change, hard cuts), adaptive (content "
        "change relative to its neighbours: fewer false cuts on fast motion), threshold (fades "
        "to/from black), hash (perceptual hash distance)",
    )
    threshold: float | None = Field(
        None,
        gt=0,
        description="the detector's threshold (content: 0-255 mean HSV change; adaptive: ratio "
        "to neighbours; threshold: mean intensity 0-255; hash: 0-1 distance); None = the "
        "detector's own default",
    )
    min_scene_len_s: float = Field(
        0.6, ge=0, description="seconds a shot lasts at least; closer cuts are merged"
    )


class ShotsPerceiver(Perceiver):
    """Shot cuts (PySceneDetect) on the fast frame stream; one `shot` event per cut."""

    name: ClassVar[str] = "shots"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "shot cuts with PySceneDetect on the fast frame stream"
    Options: ClassVar[type[PerceiverOptions]] = ShotsOptions
    inputs: ClassVar[frozenset[Input]] = frozenset({"fast"})
    packages: ClassVar[tuple[str, ...]] = ("scenedetect", "cv2")

    options: ShotsOptions

    def availability(self) -> Availability:
        """Needs scenedetect >= 0.7 (timecode-based `process_frame`) and OpenCV."""
        base = super().availability()
        if not base.ok:
            return base
        version = md.version("scenedetect")
        if _version_tuple(version) < _MIN_SCENEDETECT:
            want = ".".join(map(str, _MIN_SCENEDETECT))
            return Availability(
                False, f"scenedetect>={want} is needed (timecode API), found {version}"
            )
        return Availability(True)

    def model_identity(self) -> str | None:
        """No weights; the library version can change results, so it is the identity."""
        try:
            return f"scenedetect=={md.version('scenedetect')}"
        except md.PackageNotFoundError:
            return None

    def effective_threshold(self) -> float:
        """The threshold in use: the option, or the default of the scenedetect detector."""
        if self.options.threshold is not None:
            return self.options.threshold
        cls, arg = self._detector_class()
        return float(inspect.signature(cls.__init__).parameters[arg].default)

    def perceive(self, media: Media) -> Iterator[Event]:
        """Feed every fast frame to the detector; yield one `shot` event per cut found."""
        import cv2
        from scenedetect import FrameTimecode, StatsManager
        from scenedetect.common import Timecode
        from scenedetect.scene_manager import compute_downscale_factor

        detector = self._make_detector()
        stats = StatsManager()
        detector.stats_manager = stats
        times: list[float] = []
        cut_times: list[float] = []
        last: FrameTimecode | None = None
        downscale: float | None = None

        for frame in media.frames("fast"):
            # Keep timecodes non-decreasing: the detectors subtract them and clamp at zero.
            pts = max(round(frame.t / _TIME_BASE), last.pts if last is not None else 0)
            tc = FrameTimecode(Timecode(pts=pts, time_base=_TIME_BASE), fps=_RATE)
            if downscale is None:
                h, w = frame.image.shape[:2]
                # PySceneDetect's default thresholds are tuned on frames it downscales to about
                # 256 px; scale the same way so they mean here what they mean there.
                downscale = compute_downscale_factor(max(w, h))
            image = _prepare(frame.image, downscale, cv2)
            times.append(frame.t)
            cut_times.extend(c.seconds for c in detector.process_frame(tc, image))
            last = tc

        if last is None:
            raise PerceiverSkipped("the video has no frames in the fast stream")
        cut_times.extend(c.seconds for c in detector.post_process(last))

        threshold = self.effective_threshold()
        score_key = self._score_key(detector)
        # A cut "at" the first frame is no cut: the opening shot (index 0) starts there.
        cuts = sorted({t for t in (_snap(times, s) for s in cut_times) if t > times[0]})
        for index, t in enumerate(cuts, start=1):
            score = _score_at(stats, t, score_key)
            yield Event(
                kind="shot",
                text="shot cut",
                start=t,
                end=t,
                source=self.name,
                confidence=_confidence(score, threshold),
                data={"shot": index},
            )

    # ------------------------------------------------------------------------------ helpers

    def _detector_class(self) -> tuple[type[SceneDetector], str]:
        import scenedetect

        cls_name, threshold_arg = _DETECTORS[self.options.detector]
        return getattr(scenedetect, cls_name), threshold_arg

    def _make_detector(self) -> SceneDetector:
        cls, threshold_arg = self._detector_class()
        kwargs: dict[str, Any] = {"min_scene_len": float(self.options.min_scene_len_s)}
        if self.options.threshold is not None:
            kwargs[threshold_arg] = self.options.threshold
        return cls(**kwargs)

    def _score_key(self, detector: SceneDetector) -> str | None:
        """The stats key holding the per-frame value that is compared with the threshold."""
        metrics = detector.get_metrics()
        if self.options.detector == "content":
            return "content_val"
        if self.options.detector in ("adaptive", "hash"):
            # AdaptiveDetector lists its adaptive_ratio key last; HashDetector has one key.
            return metrics[-1] if metrics else None
        # ThresholdDetector records mean intensity, not a score a cut is judged by.
        return None


def _prepare(rgb: np.ndarray, downscale: float, cv2: Any) -> np.ndarray:
    """RGB (our frames) → BGR (what scenedetect expects), downscaled like SceneManager does."""
    if downscale > 1.0:
        h, w = rgb.shape[:2]
        size = (max(1, round(w / downscale)), max(1, round(h / downscale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def _snap(times: list[float], seconds: float) -> float:
    """The frame time nearest to `seconds`: cut times are reported as real frame times."""
    i = bisect.bisect_left(times, seconds)
    candidates = times[max(0, i - 1) : i + 1]
    return min(candidates, key=lambda t: abs(t - seconds))


def _score_at(stats: StatsManager, t: float, key: str | None) -> float | None:
    if key is None:
        return None
    # StatsManager keys hash by frame number, which is the pts in milliseconds (see _RATE).
    value = stats.get_metrics(round(t / _TIME_BASE), [key])[0]
    return float(value) if value is not None else None


def _confidence(score: float | None, threshold: float) -> float | None:
    """Map how far the score passed the threshold to 0.5..1 (0.5 at the threshold, 0.75 at twice
    it); None when the detector gives no score (fade detection)."""
    if score is None or score <= 0:
        return None
    return round(max(0.5, min(1.0, 1.0 - 0.5 * threshold / score)), 3)


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for p in version.split(".")[:2]:
        digits = "".join(ch for ch in p if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)
