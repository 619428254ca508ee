"""The record: `VideoContext`, the one versioned schema every consumer of vidchat reads.

Times are seconds (floats) from the start of the video, derived from presentation timestamps.
Boxes are pixel coordinates ``(x1, y1, x2, y2)`` in the displayed frame (after rotation) at the
video's full resolution, whatever resolution the perceiver actually looked at.

Schema versions follow ``MAJOR.MINOR``: a minor bump only adds optional fields (old readers can
ignore them); a major bump changes meaning, and `VideoContext.load` refuses records of another
major version with a message that names both.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    from vidchat.text.render import Rendered

# 1.1: `zooms` (on-demand perception of windows); VideoInfo's audio-track and aspect fields;
# provenance warnings. A 1.0 record loads as it is (every new field has a default).
# 1.2: object masks live on the object's track (`TrackPoint.mask`, RLE at the video's full
# resolution; a point added for a mask has no score) instead of ``mask``
# events holding JSON strings in fast-frame pixels; `ZoomRun.masks_added`; end >= start is
# checked on every span (events, speech, words, zooms). Reading a 1.0/1.1 record moves its mask
# events onto the tracks, scaled to the video's size (`upgrade_mask_events`).
SCHEMA_VERSION = "1.2"

# A mask belongs to the trajectory point this close in time (both come from the same decoded
# frame, so their times agree to the microsecond; rounding elsewhere stays far below this).
MASK_TIME_TOLERANCE_S = 1e-3

OBJECT_ID_RE = re.compile(r"^[a-z0-9_\- ]+#[1-9][0-9]*$")

# JSON scalars only: attribute and event payloads stay flat so every consumer can render them.
Scalar = str | int | float | bool | None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class VideoInfo(_Model):
    """Facts about the video file, from ffprobe."""

    path: str
    sha256: str = Field(description="hex digest of the file's bytes (the cache key)")
    size_bytes: int
    duration: float = Field(ge=0, description="seconds")
    fps: str = Field(description="average frame rate as a fraction, e.g. '30000/1001'")
    width: int = Field(ge=0, description="displayed width (after rotation)")
    height: int = Field(ge=0, description="displayed height (after rotation)")
    rotation: int = Field(0, description="degrees the player rotates the stored frames")
    codec: str | None = None
    has_audio: bool = False
    audio_codec: str | None = None
    variable_frame_rate: bool = False
    start_time: float = Field(
        0.0, description="presentation time of the first video frame in the file (record times "
        "count from it)"
    )
    sample_aspect_ratio: str | None = Field(
        None, description="stored pixel shape when not square, e.g. '2:1' (width is displayed)"
    )
    audio_track: int | None = Field(None, description="audio track used (0 = first)")
    audio_tracks: int = Field(0, description="audio tracks in the file")
    audio_note: str | None = Field(None, description="why this audio track; the other tracks")
    audio_offset: float = Field(0.0, description="audio start minus first frame (s)")
    video_offset: float = Field(
        0.0, description="first video frame minus the file's start (s), as ffmpeg counts times"
    )

    @property
    def fps_float(self) -> float:
        num, _, den = self.fps.partition("/")
        try:
            return float(num) / float(den or 1)
        except (ValueError, ZeroDivisionError):
            return 0.0

    @property
    def name(self) -> str:
        return Path(self.path).name


class RLE(_Model):
    """A binary mask as uncompressed run lengths (COCO order: column-major, starting with 0s)."""

    size: tuple[int, int] = Field(description="(height, width)")
    counts: list[int]

    @model_validator(mode="after")
    def _check_total(self) -> RLE:
        h, w = self.size
        if sum(self.counts) != h * w:
            raise ValueError(f"RLE counts sum to {sum(self.counts)}, expected {h}x{w}={h * w}")
        return self

    @classmethod
    def from_mask(cls, mask: np.ndarray) -> RLE:
        """A boolean (H, W) mask as RLE."""
        m = np.asarray(mask, dtype=bool)
        if m.ndim != 2:
            raise ValueError(f"mask must be 2-D (H, W), got shape {m.shape}")
        flat = m.flatten(order="F").astype(np.int8)
        changes = np.flatnonzero(np.diff(flat)) + 1
        counts = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
        if flat.size and flat[0] == 1:
            counts = [0, *counts]
        return cls(size=(m.shape[0], m.shape[1]), counts=[int(c) for c in counts])

    def to_mask(self) -> np.ndarray:
        """The boolean (H, W) mask."""
        h, w = self.size
        values = np.zeros(len(self.counts), dtype=bool)
        values[1::2] = True
        return np.repeat(values, self.counts).reshape((w, h)).T

    def area(self) -> int:
        """Pixels inside the mask."""
        return int(sum(self.counts[1::2]))

    def area_fraction(self) -> float:
        """Share of the frame inside the mask, 0..1."""
        h, w = self.size
        return self.area() / (h * w) if h * w else 0.0

    def box(self) -> tuple[float, float, float, float] | None:
        """The mask's bounding box ``(x1, y1, x2, y2)`` in its own pixels (x2, y2 exclusive),
        or None for an empty mask."""
        m = self.to_mask()
        ys, xs = np.nonzero(m)
        if xs.size == 0:
            return None
        return (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))

    def resized(self, height: int, width: int) -> RLE:
        """The mask at another resolution (nearest neighbour: each output pixel takes the input
        pixel its centre falls in), e.g. a fast frame's mask at the video's full size."""
        h, w = self.size
        if (h, w) == (height, width):
            return self
        if height <= 0 or width <= 0:
            raise ValueError(f"mask size must be positive, got {height}x{width}")
        m = self.to_mask()
        rows = np.minimum(((np.arange(height) + 0.5) * h / height).astype(np.int64), h - 1)
        cols = np.minimum(((np.arange(width) + 0.5) * w / width).astype(np.int64), w - 1)
        return RLE.from_mask(m[rows][:, cols])


class TrackPoint(_Model):
    """One sample of an object's trajectory.

    `mask`, when present, is the object's mask at `t` at the video's full resolution (its
    `RLE.size` is ``(video.height, video.width)``). A point that a segmenter added for its mask
    (the detector had no sample at that time) has no `score`; its box is the track's box
    interpolated there (so the detector's path is unchanged; the mask's own box is
    ``mask.box()``), or the mask's box on a track without samples.
    """

    t: float = Field(ge=0)
    box: tuple[float, float, float, float]
    score: float | None = None
    mask: RLE | None = None

    @field_validator("box")
    @classmethod
    def _box_order(cls, v: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        x1, y1, x2, y2 = v
        if x2 < x1 or y2 < y1:
            raise ValueError(f"box must be (x1, y1, x2, y2) with x1<=x2, y1<=y2, got {v}")
        return v


class ObjectTrack(_Model):
    """One object with a stable id across the whole record (``person#3``)."""

    id: str
    label: str
    first_seen: float = Field(ge=0)
    last_seen: float = Field(ge=0)
    source: str = Field(description="perceiver that found it")
    confidence: float | None = None
    trajectory: list[TrackPoint] = Field(default_factory=list, description="sparse samples")
    attributes: dict[str, Scalar] = Field(default_factory=dict)
    description: str | None = None

    @field_validator("id")
    @classmethod
    def _id_shape(cls, v: str) -> str:
        if not OBJECT_ID_RE.match(v):
            raise ValueError(f"object id must look like 'label#N' (N>=1), got {v!r}")
        return v

    @model_validator(mode="after")
    def _times(self) -> ObjectTrack:
        if self.last_seen < self.first_seen:
            raise ValueError(
                f"{self.id}: last_seen {self.last_seen} < first_seen {self.first_seen}"
            )
        return self


def _check_span(what: str, start: float, end: float) -> None:
    """ValueError naming the object, the fields and their values when `end` < `start`."""
    if end < start:
        raise ValueError(f"{what}: end {end:g} is before start {start:g} (expected end >= start)")


def _short(text: str, n: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


class Word(_Model):
    """One word of a speech segment, with its own times (when the recognizer gives them)."""

    start: float
    end: float
    text: str
    probability: float | None = None

    @model_validator(mode="after")
    def _span(self) -> Word:
        _check_span(f"word {_short(self.text)!r}", self.start, self.end)
        return self


class SpeechSegment(_Model):
    """A stretch of transcribed speech. Its text is untrusted data from the video."""

    start: float = Field(ge=0)
    end: float = Field(ge=0)
    text: str
    language: str | None = None
    confidence: float | None = Field(None, description="mean token probability, 0..1")
    words: list[Word] | None = None
    speaker: str | None = None
    source: str = "asr"

    @model_validator(mode="after")
    def _span(self) -> SpeechSegment:
        _check_span(
            f"speech segment {_short(self.text)!r} from {self.source!r}", self.start, self.end
        )
        return self


EventKind = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]


class Event(_Model):
    """A timestamped observation from any other perceiver (shot cut, caption, OCR text, tag…)."""

    start: float = Field(ge=0)
    end: float = Field(ge=0)
    kind: EventKind = Field(description="e.g. shot, caption, action, ocr, tag")
    text: str = Field(description="what the LLM reads; OCR and other video text is untrusted")
    source: str
    confidence: float | None = None
    objects: list[str] = Field(default_factory=list, description="ids of the objects concerned")
    data: dict[str, Scalar] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _span(self) -> Event:
        _check_span(f"event (kind {self.kind!r} from {self.source!r})", self.start, self.end)
        return self


class ObjectMask(_Model):
    """One object's mask at one time, from a perceiver that segments objects another one found
    (sam2 on the detector's ``person#3``). It is an observation, not a part of the saved record:
    the pipeline puts it on the object's track (`attach_mask`) as a `TrackPoint.mask`."""

    object_id: str
    t: float = Field(ge=0)
    mask: RLE = Field(description="at the video's full resolution: size (height, width)")

    @field_validator("object_id")
    @classmethod
    def _id_shape(cls, v: str) -> str:
        if not OBJECT_ID_RE.match(v):
            raise ValueError(f"object id must look like 'label#N' (N>=1), got {v!r}")
        return v


Status = Literal["ok", "skipped", "failed"]

# How the reason of a perceiver skipped because it cannot run here (package or weights missing)
# begins; other skips mean the video gave it nothing to do (no audio track, no frames).
UNAVAILABLE = "unavailable: "


class Provenance(_Model):
    """How one perceiver contributed to the record."""

    name: str
    version: str
    status: Status
    reason: str | None = None
    options: dict[str, object] = Field(default_factory=dict)
    model: str | None = None
    seconds: float = 0.0
    cached: bool = False
    items: int = 0
    warnings: list[str] = Field(default_factory=list, description="e.g. corrupt data decoded")

    @property
    def degraded(self) -> bool:
        """Did the record lose this perceiver's part: it failed, or it was skipped because it
        cannot run here? A skip for lack of input (no audio track) loses nothing."""
        unavailable = self.status == "skipped" and (self.reason or "").startswith(UNAVAILABLE)
        return self.status == "failed" or unavailable


class ZoomRun(_Model):
    """One closer look at a time window (`vidchat.pipeline.zoom`): which perceivers ran there, at
    which rate, and what they added. Events it added carry ``data["zoom"] == id``."""

    id: str = Field(description="zoom1, zoom2, … in the order the zooms were merged")
    start: float = Field(ge=0)
    end: float = Field(ge=0)
    fps: float = Field(gt=0, description="frames a second both streams were decoded at")
    perceivers: list[str]
    provenance: list[Provenance] = Field(default_factory=list)
    objects_added: list[str] = Field(default_factory=list, description="new object ids")
    objects_refined: list[str] = Field(
        default_factory=list, description="existing objects given denser trajectory points"
    )
    speech_added: int = 0
    events_added: int = 0
    masks_added: int = 0

    @model_validator(mode="after")
    def _span(self) -> ZoomRun:
        _check_span(f"zoom {self.id}", self.start, self.end)
        return self


class VideoContext(_Model):
    """The whole record of one video."""

    schema_version: str = SCHEMA_VERSION
    video: VideoInfo
    profile: str | None = None
    objects: list[ObjectTrack] = Field(default_factory=list)
    speech: list[SpeechSegment] = Field(default_factory=list)
    events: list[Event] = Field(default_factory=list)
    provenance: list[Provenance] = Field(default_factory=list)
    zooms: list[ZoomRun] = Field(default_factory=list, description="on-demand closer looks")

    @field_validator("schema_version")
    @classmethod
    def _version(cls, v: str) -> str:
        if v.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
            raise ValueError(
                f"record schema {v} is not readable by this vidchat (expects {SCHEMA_VERSION})"
            )
        return v

    @model_validator(mode="after")
    def _event_objects_exist(self) -> VideoContext:
        """Every object id an event names (a mask, a region caption…) is one of `objects`."""
        known = {o.id for o in self.objects}
        for i, e in enumerate(self.events):
            missing = [oid for oid in e.objects if oid not in known]
            if missing:
                have = ", ".join(sorted(known)[:10]) or "none"
                raise ValueError(
                    f"event {i} (kind {e.kind!r} from {e.source!r} at {e.start:g} s) names "
                    f"object ids not in the record: {', '.join(missing)}; expected ids of "
                    f"its objects ({have})"
                )
        return self

    @model_validator(mode="after")
    def _upgrade(self) -> VideoContext:
        """A 1.0/1.1 record read now is upgraded to this schema (its mask events move onto the
        tracks); one without masks is unchanged but for its version. Runs after the check
        that every object id an event names exists."""
        if _minor(self.schema_version) < _minor(SCHEMA_VERSION):
            upgrade_mask_events(self)
            self.schema_version = SCHEMA_VERSION
        return self

    def object(self, object_id: str) -> ObjectTrack:
        """The object with this id; KeyError names the ids that exist."""
        for o in self.objects:
            if o.id == object_id:
                return o
        known = ", ".join(o.id for o in self.objects[:20]) or "none"
        raise KeyError(f"no object {object_id!r} in the record (objects: {known})")

    def sort(self) -> VideoContext:
        """Put every list in a canonical order so equal records serialize identically."""
        self.speech.sort(key=lambda s: (s.start, s.end))
        self.events.sort(key=lambda e: (e.start, e.kind, e.source, e.text))
        self.objects.sort(key=lambda o: (o.first_seen, o.id))
        return self

    def to_json(self, indent: int | None = 1) -> str:
        return self.model_dump_json(indent=indent)

    @classmethod
    def from_json(cls, text: str) -> VideoContext:
        return cls.model_validate_json(text)

    def render(
        self, budget_tokens: int | None = None, window_s: float | None = None
    ) -> Rendered:
        """The record as the LLM's text, within `budget_tokens` when given (see
        `vidchat.text.render.render`)."""
        # The one upward import of the kernel, made at call time: the record's own convenience
        # method; the layer contract lists it as its only exception.
        from vidchat.text.render import render

        return render(self, budget_tokens=budget_tokens, window_s=window_s)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the record atomically (a reader never sees half a file)."""
        return atomic_write_text(Path(path), self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> VideoContext:
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}: not a vidchat record (invalid JSON: {e.msg})") from None
        if not isinstance(data, dict) or "video" not in data:
            raise ValueError(f"{p}: not a vidchat record (expected a JSON object with 'video')")
        return cls.model_validate(data)


Observation = ObjectTrack | SpeechSegment | Event | ObjectMask


def _minor(version: str) -> int:
    try:
        return int(version.split(".")[1])
    except (IndexError, ValueError):
        return 0


def attach_mask(track: ObjectTrack, t: float, mask: RLE) -> TrackPoint | None:
    """Put `mask` (full resolution) on `track` at time `t`: on its trajectory point at that time
    (within `MASK_TIME_TOLERANCE_S`), else on a new point (no score) whose box is the track's
    box interpolated at `t`, or the mask's box when the track has no samples around `t`. An
    empty mask with no point to hold it is dropped (SAM-2 lost the object there): None.

    Why not the mask's box on every new point: a segmenter's stray pixels can make a mask's box
    span the frame, and every reader of the trajectory (motion in the text, the fidelity
    scorer, the annotated video) would then follow it; the detector's path stays its own.
    """
    for p in track.trajectory:
        if abs(p.t - t) <= MASK_TIME_TOLERANCE_S:
            p.mask = mask
            return p
    if mask.area() == 0:
        return None
    near = track_box_at(track, t, max_gap=math.inf)
    box = (near[0], near[1], near[2], near[3]) if near is not None else mask.box()
    if box is None:
        return None
    point = TrackPoint(t=t, box=box, mask=mask)
    track.trajectory.append(point)
    track.trajectory.sort(key=lambda p: p.t)
    return point


def track_masks(track: ObjectTrack) -> list[tuple[float, RLE]]:
    """The object's masks in time order, as ``(t, mask)``."""
    return [(p.t, p.mask) for p in sorted(track.trajectory, key=lambda p: p.t) if p.mask]


def legacy_mask_rle(event: Event) -> RLE:
    """The mask a 1.0/1.1 ``mask`` event carries (sam2's RLE counts as a JSON string in
    ``data["rle"]``, at the fast frame's ``data["height"]`` x ``data["width"]``); ValueError
    naming what is wrong when the event is not one."""
    rle = event.data.get("rle")
    if event.kind != "mask" or not isinstance(rle, str):
        raise ValueError(f"expected a 'mask' event with data['rle'], got kind {event.kind!r}")
    where = f"mask event of {', '.join(event.objects) or 'no object'} at {event.start:g} s"
    h, w = event.data.get("height"), event.data.get("width")
    if not isinstance(h, int) or not isinstance(w, int):
        raise ValueError(f"{where}: expected integer data height and width, got {h!r}, {w!r}")
    try:
        counts = json.loads(rle)
        return RLE(size=(h, w), counts=counts)
    except ValueError as e:  # invalid JSON, or counts that do not fill h x w
        why = str(e).splitlines()[-1].strip()
        raise ValueError(f"{where}: data rle is not a {h}x{w} mask's run lengths ({why})") from None


def upgrade_mask_events(ctx: VideoContext) -> int:
    """Move a 1.0/1.1 record's sam2 ``mask`` events (`legacy_mask_rle`) onto the objects' tracks
    (`attach_mask`) at the video's full size, in place; returns how many masks moved. Other
    events (the ``mask_track`` summaries, a ``mask`` event without ``rle``) stay."""
    legacy = [e for e in ctx.events if e.kind == "mask" and isinstance(e.data.get("rle"), str)]
    height, width = ctx.video.height, ctx.video.width
    for e in legacy:
        if len(e.objects) != 1:
            raise ValueError(
                f"mask event at {e.start:g} s: expected exactly one object id, got {e.objects}"
            )
        rle = legacy_mask_rle(e)
        if height > 0 and width > 0:
            rle = rle.resized(height, width)
        attach_mask(ctx.object(e.objects[0]), e.start, rle)
    moved = {id(e) for e in legacy}
    ctx.events = [e for e in ctx.events if id(e) not in moved]
    return len(legacy)


def track_box_at(o: ObjectTrack, t: float, max_gap: float) -> tuple[float, ...] | None:
    """A track's box at `t` within its first..last seen: linear between the trajectory samples
    around `t` when they are at most `max_gap` s apart, else the nearest sample's box when it is
    within `max_gap / 2`; None otherwise (the track was not followed there)."""
    if t < o.first_seen - 1e-6 or t > o.last_seen + 1e-6 or not o.trajectory:
        return None
    pts = o.trajectory
    for a, b in itertools.pairwise(pts):
        if a.t <= t <= b.t:
            if b.t - a.t > max_gap:
                if t == b.t:
                    continue  # the first sample after a gap: the next pair starts there
                return None
            f = 0.0 if b.t == a.t else (t - a.t) / (b.t - a.t)
            return tuple(x + f * (y - x) for x, y in zip(a.box, b.box, strict=True))
    near = min(pts, key=lambda p: abs(p.t - t))
    return near.box if abs(near.t - t) <= max_gap / 2 else None


def unknown_object_ids(events: list[Event], known: set[str]) -> list[str]:
    """The object ids the events name that are not in `known`, in first-seen order."""
    out: list[str] = []
    for e in events:
        out.extend(oid for oid in e.objects if oid not in known and oid not in out)
    return out


def atomic_write_text(path: Path, text: str) -> Path:
    """Write text to `path` through a temporary file in the same folder and an atomic rename."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write bytes atomically (see `vidchat.kernel.outputs`: umask, symlinks replaced, devices
    written to, a failed write leaves nothing behind); missing folders are created."""
    from vidchat.kernel.outputs import write_output

    write_output(path, data, make_parents=True)
    return Path(path)
