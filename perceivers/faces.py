"""The ``faces`` perceiver: visible faces on keyframes, attached to the person they belong to.

On each keyframe of the slow stream (see `perceivers.keyframes`) OpenCV's bundled Haar cascade
(``haarcascade_frontalface_default.xml``, inside the opencv-python wheel; no download) finds
frontal faces. A face belongs to a person track of ``detect`` when the face's centre lies in the
upper half of that person's box at that time (the box interpolated from the sparse trajectory)
and the face is no wider than the person; when two persons qualify, the smaller box wins (the
one in front is usually the one the face is on). Faces that belong to no person are reported too,
without an id.

Output: one ``face`` event per (keyframe, face), ``text`` ``face visible`` (or ``face visible,
no person track``), the face box and the size in ``data``, the person id in ``objects``. There
is no identity, age, gender or emotion: a face detector only says that a face is there.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from vidchat.kernel.errors import ConfigError
from vidchat.kernel.record import Event, ObjectTrack, track_box_at
from vidchat.perceivers.base import Input, Media, Perceiver, PerceiverOptions
from vidchat.perceivers.keyframes import KeyframeOptions, media_keyframes

__all__ = ["FacesOptions", "FacesPerceiver", "owner_of"]

Box = tuple[float, float, float, float]


class FacesOptions(PerceiverOptions):
    """Options of the ``faces`` perceiver (unknown keys are errors)."""

    model: str = Field(
        "faces:haar-frontal",
        description="the cascade shipped in the OpenCV wheel, or a path to a cascade XML file",
    )
    min_face_frac: float = Field(
        0.03, gt=0, lt=1, description="smallest face side as a share of the frame's shorter side"
    )
    min_neighbors: int = Field(
        6, ge=1, description="cascade's minNeighbors: higher finds fewer, surer faces"
    )
    keyframes: KeyframeOptions = Field(
        default_factory=lambda: KeyframeOptions(max_interval_s=5.0),
        description="which slow frames are looked at",
    )


def _box_at(o: ObjectTrack, t: float, max_gap: float = 3.0) -> Box | None:
    """The track's box at `t` (`track_box_at`); a one-sample track holds its box over its
    whole first..last seen."""
    if len(o.trajectory) == 1 and o.first_seen - 1e-6 <= t <= o.last_seen + 1e-6:
        return o.trajectory[0].box
    box = track_box_at(o, t, max_gap)
    if box is None:
        return None
    x1, y1, x2, y2 = box
    return (x1, y1, x2, y2)


def owner_of(face: Box, t: float, people: Sequence[ObjectTrack]) -> str | None:
    """The id of the person whose box holds the face's centre in its upper half at `t` (and is
    at least as wide as the face); the smallest such box when several do; else None."""
    cx, cy = (face[0] + face[2]) / 2, (face[1] + face[3]) / 2
    best: tuple[float, str] | None = None
    for p in people:
        box = _box_at(p, t)
        if box is None:
            continue
        x1, y1, x2, y2 = box
        if not (x1 <= cx <= x2 and y1 <= cy <= y1 + 0.5 * (y2 - y1)):
            continue
        if x2 - x1 < 0.8 * (face[2] - face[0]):
            continue
        area = (x2 - x1) * (y2 - y1)
        if best is None or area < best[0]:
            best = (area, p.id)
    return best[1] if best else None


class FacesPerceiver(Perceiver):
    """Frontal faces on keyframes (OpenCV Haar cascade), attached to detect's person tracks."""

    name = "faces"
    version = "1"
    description = "face detection on keyframes (OpenCV Haar cascade), attached to persons"
    Options = FacesOptions
    inputs: ClassVar[frozenset[Input]] = frozenset({"slow"})
    requires = ("detect",)
    packages = ("cv2",)

    options: FacesOptions

    def __init__(self, options: FacesOptions | dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self._cascade: Any = None

    def load(self) -> None:
        """Load the cascade file; ConfigError when it is missing or not a cascade."""
        import cv2

        resolved = self.resolve_model()
        assert resolved is not None  # the options always name a model
        path = str(resolved.require())
        try:
            cascade = cv2.CascadeClassifier(path)
        except (cv2.error, SystemError):  # a file OpenCV cannot parse at all
            cascade = None
        if cascade is None or cascade.empty():
            raise ConfigError(f"faces: cascade {path!r} is missing or not an OpenCV cascade file")
        self._cascade = cascade

    def faces(self, image: np.ndarray) -> list[Box]:
        """Face boxes (x1, y1, x2, y2) in `image`'s pixels (RGB uint8)."""
        import cv2

        self.ensure_loaded()
        grey = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        side = max(12, int(self.options.min_face_frac * min(grey.shape)))
        found = self._cascade.detectMultiScale(
            grey, scaleFactor=1.1, minNeighbors=self.options.min_neighbors, minSize=(side, side)
        )
        return [(float(x), float(y), float(x + w), float(y + h)) for x, y, w, h in found]

    def perceive(self, media: Media) -> Iterator[Event]:
        """One ``face`` event per face per keyframe, until the next keyframe."""
        people = [o for o in media.upstream.objects if o.label == "person"]
        for kf, until in media_keyframes(media, self.options.keyframes, use_shots=False):
            frame = kf.frame
            for face in self.faces(frame.image):
                x1, y1, x2, y2 = (round(v, 1) for v in frame.to_full(face))
                full = (x1, y1, x2, y2)
                owner = owner_of(full, frame.t, people)
                yield Event(
                    start=frame.t,
                    end=max(frame.t, until),
                    kind="face",
                    text="face visible" if owner else "face visible, no person track",
                    source=self.name,
                    objects=[owner] if owner else [],
                    data={
                        "x1": full[0],
                        "y1": full[1],
                        "x2": full[2],
                        "y2": full[3],
                        "size_frac": round((full[2] - full[0]) / media.info.width, 4),
                    },
                )
