"""The ground truth of a generated video: every fact the generator put in, with its time.

Times are seconds from the start of the video; boxes are pixels ``(x1, y1, x2, y2)`` at the
video's resolution. Speech times are *measured* (frame energy of the placed espeak-ng audio), not
the offsets asked for, so espeak's own lead-in silence does not count as timing error.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vidchat.perceivers.detect import ANIMAL_LABELS, VEHICLE_LABELS

TRUTH_SCHEMA = "vidchat-fidelity-truth/1"

Box = tuple[float, float, float, float]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ShotTruth(_Model):
    """One shot: a photograph shown from `start` to `end` (a cut at every shot's start but 0)."""

    start: float
    end: float
    photo: str = Field(description="scikit-image sample name, e.g. 'coffee'")
    tags: list[str] = Field(description="ImageNet-style labels any of which counts as correct")


class SpeechTruth(_Model):
    """One espeak-ng sentence; start/end measured from the placed audio by energy."""

    start: float
    end: float
    text: str


class TextTruth(_Model):
    """On-screen text drawn with ffmpeg drawtext from `start` to `end` inside `box`."""

    start: float
    end: float
    text: str
    box: Box = Field(description="approximate: measured with the same font in Pillow")


class PathPoint(_Model):
    """Where an object is at time `t`, and how much of it shows."""

    t: float
    box: Box
    visible: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="share of the box not covered by what the generator drew over it (walkers, "
        "other sprites, on-screen text); truths written before this field count as 1.0",
    )


class PersonTruth(_Model):
    """A pedestrian cut from vtest.avi, moving linearly; `path` samples its box over time."""

    id: str = Field(description="truth identity, e.g. 'person#1'")
    label: str = "person"
    first_seen: float
    last_seen: float
    crop: str = Field(description="which vtest.avi pedestrian")
    path: list[PathPoint]
    away: list[tuple[float, float]] = Field(
        default_factory=list,
        description="(start, end) stretches inside first..last seen where the identity is not "
        "on screen (a photographed person between two shots showing the photograph)",
    )

    def _away(self, t: float) -> bool:
        return t < self.first_seen or t > self.last_seen or any(a < t < b for a, b in self.away)

    def box_at(self, t: float) -> Box | None:
        """The box at time `t` (linear between path samples), None outside the person's span
        and while away."""
        if not self.path or self._away(t):
            return None
        pts = self.path
        if t <= pts[0].t:
            return pts[0].box
        for a, b in itertools.pairwise(pts):
            if a.t <= t <= b.t:
                f = 0.0 if b.t == a.t else (t - a.t) / (b.t - a.t)
                x1, y1, x2, y2 = (p + f * (q - p) for p, q in zip(a.box, b.box, strict=True))
                return (x1, y1, x2, y2)
        return pts[-1].box

    def visible_at(self, t: float) -> float | None:
        """The visible share at time `t` (linear between path samples), None outside the span
        and while away."""
        if not self.path or self._away(t):
            return None
        pts = self.path
        if t <= pts[0].t:
            return pts[0].visible
        for a, b in itertools.pairwise(pts):
            if a.t <= t <= b.t:
                f = 0.0 if b.t == a.t else (t - a.t) / (b.t - a.t)
                return a.visible + f * (b.visible - a.visible)
        return pts[-1].visible


class ObjectTruth(PersonTruth):
    """A COCO object with a known box: in a shot's photograph (static, for the whole shot) or a
    sprite cut from a real photo moving linearly. `label` is its COCO name (``cat``, ``truck``);
    `crop` names the photograph or sprite; `moving` says which."""

    label: str
    moving: bool = False
    height_share: float | None = Field(
        None, description="a sprite's height as a share of the frame height (None: a photo's)"
    )


# COCO labels grouped for recall targets (a van found as "car" is still a vehicle): the same
# families the detector tracks together.
VEHICLES = VEHICLE_LABELS
ANIMALS = ANIMAL_LABELS


class AudioStretch(_Model):
    start: float
    end: float
    kind: Literal["speech", "music", "silence"]


class Truth(_Model):
    """Everything known about one generated video."""

    schema_version: str = TRUTH_SCHEMA
    name: str
    seed: int
    video: str = Field(description="path of the video file (as written by the generator)")
    sha256: str | None = Field(None, description="hex digest of the video file's bytes")
    duration: float
    width: int
    height: int
    fps: float
    shots: list[ShotTruth] = Field(default_factory=list)
    speech: list[SpeechTruth] = Field(default_factory=list)
    texts: list[TextTruth] = Field(default_factory=list)
    persons: list[PersonTruth] = Field(default_factory=list)
    objects: list[ObjectTruth] = Field(
        default_factory=list, description="COCO objects besides the walking persons (may be empty)"
    )
    audio: list[AudioStretch] = Field(default_factory=list)

    def everyone(self) -> list[PersonTruth]:
        """Every person in the video, once: the walkers, and each person in a photograph as ONE
        identity however many shots show that photograph (the astronaut shown at 0-5 s and again
        at 20-25 s is one person seen twice; the record should give it one id). Between its
        stretches it is `away` (`box_at` is None there)."""
        photo: dict[str, list[ObjectTruth]] = {}
        for o in self.objects:
            if o.label == "person":
                photo.setdefault(o.crop, []).append(o)
        pictured: list[PersonTruth] = []
        for shown in photo.values():
            shown.sort(key=lambda o: o.first_seen)
            path = sorted((p for o in shown for p in o.path), key=lambda p: p.t)
            pictured.append(
                PersonTruth(
                    id=shown[0].id,
                    first_seen=shown[0].first_seen,
                    last_seen=max(o.last_seen for o in shown),
                    crop=shown[0].crop,
                    path=path,
                    away=[
                        (a.last_seen, b.first_seen)
                        for a, b in itertools.pairwise(shown)
                        if b.first_seen > a.last_seen
                    ],
                )
            )
        return [*self.persons, *pictured]

    @property
    def cuts(self) -> list[float]:
        """Times of the hard cuts: the start of every shot but the first."""
        return [s.start for s in self.shots[1:]]

    def save(self, path: str | os.PathLike[str]) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.model_dump_json(indent=1), encoding="utf-8")
        return p

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Truth:
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))
