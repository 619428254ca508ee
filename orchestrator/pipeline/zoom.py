"""Zoom: on-demand perception of one time window, merged into the record.

The record is made once at a modest rate (the profile's sampling: a few frames a second, OCR and
tags on keyframes). When a question needs a closer look at one moment, `zoom` runs chosen
perceivers again on that window only, at a higher rate, and merges what they find::

    from vidchat import zoom
    result = zoom("record.json", 12, 22, perceivers=["detect", "ocr"], fps=10)
    print(result.summary())
    ctx = result.context          # the record with the zoom merged (the input is not changed)

How a window is perceived: ffmpeg seeks to the window and decodes only it, both streams at
`fps`; perceivers see the window as a short clip of its own (times from 0, the audio of the
window only, the record's observations of the window as upstream results) and their results
are shifted back to the video's times. Options tied to the rate follow it: keyframe perceivers
(OCR, tags, captions) may take a keyframe every ``1/fps`` seconds instead of every few seconds
(near-duplicate frames are still skipped), and the detector keeps a trajectory point every
``1/fps`` seconds. Each perceiver's result is cached per window, rate and options, so zooming
the same window again costs nothing.

How results merge (the record never holds the same thing twice):

- objects: a zoomed track whose boxes agree with an existing object of the same label (mean
  IoU >= `MATCH_IOU` on the samples both have, the existing trajectory interpolated at the
  zoom's times) refines it: its samples join the trajectory and its span may grow (the zoom
  followed someone the sparse pass lost). One zoomed track may continue several existing
  objects that do not overlap in time; each sample goes to the one seen at its time. Tracks
  that agree with nothing become new objects with fresh ids (``person#13``, attribute
  ``found_by``): things the sparse pass missed.
- events (OCR text, tags, captions…): the same kind and text overlapping an existing event
  widens that event; anything else is added with ``data["zoom"]`` naming the zoom.
- speech: a zoomed segment is added unless half of it overlaps speech already in the record.
- masks (`ObjectMask`, e.g. sam2): onto the track of the object they name (`attach_mask`).

The record keeps a `ZoomRun` per zoom (window, rate, perceivers with their provenance, what
was added or refined); zooming the identical window, rate and perceivers again changes nothing.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidchat.kernel.cache import Cache, CacheEntry, cache_key
from vidchat.kernel.errors import ConfigError, InputError, PerceiverSkipped
from vidchat.kernel.record import (
    Event,
    ObjectMask,
    ObjectTrack,
    Provenance,
    SpeechSegment,
    TrackPoint,
    VideoContext,
    VideoInfo,
    ZoomRun,
    attach_mask,
)
from vidchat.kernel.video import Sampling, decode_frames, load_audio, output_size, probe
from vidchat.perceivers.base import Frame, FrameStreamName, Perceiver
from vidchat.pipeline.core import entry_items, plan_levels
from vidchat.pipeline.profiles import Profile, load_profile

__all__ = [
    "DEFAULT_ZOOM_FPS",
    "MAX_ZOOM_FPS",
    "ZoomResult",
    "Zoomer",
    "clip_to_window",
    "merge_results",
    "zoom",
    "zoom_options",
]

DEFAULT_ZOOM_FPS = 10.0
MAX_ZOOM_FPS = 30.0  # the slow stream's limit (`Sampling.slow_fps`)
# Used when neither the caller nor the profile names frame perceivers.
FALLBACK_PERCEIVERS = ("detect", "ocr", "tags")
MATCH_IOU = 0.3  # mean IoU at which a zoomed track is the same object as an existing one
_EDGE_S = 1.0  # a zoomed sample this close before/after an object's span still compares


# ------------------------------------------------------------------------------------- results


@dataclass
class ZoomResult:
    """What one zoom did: the merged record, its `ZoomRun`, and how long it took."""

    context: VideoContext
    run: ZoomRun
    seconds: float
    reused: bool = False  # the identical zoom was already in the record: nothing changed
    new_events: list[Event] = field(default_factory=list)
    new_speech: list[SpeechSegment] = field(default_factory=list)

    @property
    def cached(self) -> bool:
        """Every perceiver's result came from the cache."""
        return all(p.cached for p in self.run.provenance)

    def summary(self) -> str:
        """One line: window, rate, each perceiver's status, what was added."""
        from vidchat.kernel.timecode import fmt_span

        r = self.run
        parts = []
        for p in r.provenance:
            how = "cached" if p.cached else f"{p.seconds:.1f} s"
            parts.append(
                f"{p.name} {p.status} ({how})"
                if p.status == "ok"
                else f"{p.name} {p.status} ({p.reason})"
            )
        added = [
            f"+{len(r.objects_added)} objects"
            + (f" ({', '.join(r.objects_added[:8])})" if r.objects_added else ""),
            f"{len(r.objects_refined)} refined",
            f"+{r.events_added} events",
            f"+{r.speech_added} speech",
        ]
        if r.masks_added:
            added.append(f"+{r.masks_added} masks")
        head = f"{r.id} {fmt_span(r.start, r.end)} at {r.fps:g} fps"
        if self.reused:
            head += " (already in the record)"
        return f"{head}: {'; '.join(parts)} → {', '.join(added)}; {self.seconds:.1f} s"


# ---------------------------------------------------------------------------------- the media


class _WindowMedia:
    """`vidchat.perceivers.base.Media` over one window, seen as a clip of its own (times from 0)."""

    def __init__(
        self,
        video: VideoInfo,
        start: float,
        end: float,
        sampling: Sampling,
        declared: frozenset[str],
        upstream: VideoContext,
    ) -> None:
        self.video = video
        self.start, self.end = start, end
        self.sampling = sampling
        self.declared = declared
        self.info = video.model_copy(update={"duration": end - start})
        self._upstream = upstream
        self._audio: np.ndarray | None = None
        self._audio_done = False
        self._used = False

    def _stream(self) -> Iterator[tuple[FrameStreamName, Frame]]:
        import cv2

        if self._used:
            raise RuntimeError("the frame streams can be iterated only once")
        self._used = True
        streams = self.declared & {"slow", "fast"}
        s = self.sampling
        rate = max(s.fast_fps if "fast" in streams else 0.0, s.slow_fps if "slow" in streams else 0)
        max_side = s.slow_max_side if "slow" in streams else s.fast_max_side
        decode_size = output_size(self.video, max_side)
        fast_size = output_size(self.video, s.fast_max_side)
        slow_size = output_size(self.video, s.slow_max_side)
        last_bucket, n_fast, n_slow = -1, 0, 0
        for df in decode_frames(
            self.video, rate, max_side, s.stall_timeout_s, start=self.start, end=self.end
        ):
            t = max(0.0, df.t - self.start)
            if "fast" in streams:
                img = df.image
                if fast_size != decode_size:
                    img = cv2.resize(img, fast_size, interpolation=cv2.INTER_AREA)
                yield "fast", Frame(n_fast, t, img, fast_size[0] / self.video.width)
                n_fast += 1
            bucket = int(t * s.slow_fps + 1e-6)
            if "slow" in streams and bucket > last_bucket:
                last_bucket = bucket
                img = df.image
                if slow_size != decode_size:
                    img = cv2.resize(img, slow_size, interpolation=cv2.INTER_AREA)
                yield "slow", Frame(n_slow, t, img, slow_size[0] / self.video.width)
                n_slow += 1

    def frames(self, stream: str) -> Iterator[Frame]:
        streams = self.declared & {"slow", "fast"}
        if stream not in streams:
            raise ValueError(f"stream {stream!r} was not declared in the perceiver's inputs")
        if len(streams) > 1:
            raise ValueError("a perceiver that declares both streams reads media.frames_all()")
        return (f for _, f in self._stream())

    def frames_all(self) -> Iterator[tuple[FrameStreamName, Frame]]:
        if not self.declared & {"slow", "fast"}:
            raise ValueError("no frame stream was declared in the perceiver's inputs")
        return self._stream()

    def audio(self) -> np.ndarray | None:
        if "audio" not in self.declared:
            raise ValueError("audio was not declared in the perceiver's inputs")
        if not self._audio_done:
            self._audio = load_audio(self.video, self.start, self.end)
            self._audio_done = True
        return self._audio

    @property
    def upstream(self) -> VideoContext:
        return self._upstream


# ------------------------------------------------------------------------- time and windows


def _shift_obs(obs: Any, dt: float) -> Any:
    """A copy of an observation with every time moved by `dt` (never below 0)."""

    def m(t: float) -> float:
        return round(max(0.0, t + dt), 3)

    if isinstance(obs, ObjectTrack):
        traj = [p.model_copy(update={"t": m(p.t)}) for p in obs.trajectory]
        return obs.model_copy(
            update={
                "first_seen": m(obs.first_seen),
                "last_seen": m(obs.last_seen),
                "trajectory": traj,
            }
        )
    if isinstance(obs, ObjectMask):
        return obs.model_copy(update={"t": m(obs.t)})
    if isinstance(obs, SpeechSegment):
        words = (
            [w.model_copy(update={"start": m(w.start), "end": m(w.end)}) for w in obs.words]
            if obs.words
            else obs.words
        )
        return obs.model_copy(update={"start": m(obs.start), "end": m(obs.end), "words": words})
    return obs.model_copy(update={"start": m(obs.start), "end": m(obs.end)})


def clip_to_window(ctx: VideoContext, start: float, end: float) -> VideoContext:
    """The record's observations that overlap [start, end], clipped to it, with times from
    `start` (what a perceiver running on the window sees as upstream results)."""
    out = VideoContext(
        video=ctx.video.model_copy(update={"duration": end - start}), profile=ctx.profile
    )
    for o in ctx.objects:
        if o.last_seen < start or o.first_seen > end:
            continue
        pts = [p for p in o.trajectory if start <= p.t <= end]
        first, last = max(o.first_seen, start), min(o.last_seen, end)
        clipped = o.model_copy(
            deep=True, update={"first_seen": first, "last_seen": last, "trajectory": pts}
        )
        out.objects.append(_shift_obs(clipped, -start))
    for s in ctx.speech:
        if s.end >= start and s.start <= end:
            seg = s.model_copy(update={"start": max(s.start, start), "end": min(s.end, end)})
            out.speech.append(_shift_obs(seg, -start))
    for e in ctx.events:
        if e.end >= start and e.start <= end:
            ev = e.model_copy(update={"start": max(e.start, start), "end": min(e.end, end)})
            out.events.append(_shift_obs(ev, -start))
    return out


def zoom_options(perceiver: type[Perceiver], options: Mapping[str, Any], fps: float) -> dict:
    """A perceiver's options for a zoom at `fps`: the options tied to a rate follow it.

    ``keyframes.max_interval_s`` (OCR, tags, captions) becomes at most ``1/fps``, so every frame
    that is not a near-duplicate of the last keyframe is read; ``trajectory_step_s`` (detect)
    becomes at most ``1/fps``, so tracks keep the zoom's time detail.
    """
    opts = perceiver.parse_options(dict(options)).model_dump(mode="json")
    step = round(1.0 / fps, 6)
    if isinstance(opts.get("keyframes"), dict) and "max_interval_s" in opts["keyframes"]:
        kf = dict(opts["keyframes"])
        kf["max_interval_s"] = min(float(kf["max_interval_s"]), step)
        kf["min_interval_s"] = min(float(kf.get("min_interval_s") or 0.0), kf["max_interval_s"])
        opts["keyframes"] = kf
    if "trajectory_step_s" in opts:
        opts["trajectory_step_s"] = min(float(opts["trajectory_step_s"]), step)
    return perceiver.parse_options(opts).model_dump(mode="json")


# ----------------------------------------------------------------------------------- merging


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _box_at(o: ObjectTrack, t: float) -> tuple[float, ...] | None:
    """The object's box at time t: interpolated inside its trajectory, the end box just
    outside it (within `_EDGE_S`), None elsewhere."""
    tr = o.trajectory
    if not tr:
        return None
    if t <= tr[0].t:
        return tr[0].box if tr[0].t - t <= _EDGE_S else None
    if t >= tr[-1].t:
        return tr[-1].box if t - tr[-1].t <= _EDGE_S else None
    for a, b in itertools.pairwise(tr):
        if a.t <= t <= b.t:
            w = (t - a.t) / (b.t - a.t) if b.t > a.t else 0.0
            return tuple(x + (y - x) * w for x, y in zip(a.box, b.box, strict=True))
    return None


def _match_score(z: ObjectTrack, e: ObjectTrack) -> tuple[float, int]:
    """(mean IoU, samples compared) of z's samples against e at the same times, over the
    samples e can answer (inside its span or just outside it)."""
    if z.label != e.label or not z.trajectory:
        return 0.0, 0
    ious = [_iou(p.box, box) for p in z.trajectory if (box := _box_at(e, p.t)) is not None]
    return (sum(ious) / len(ious), len(ious)) if ious else (0.0, 0)


def _covers(e: ObjectTrack, t: float) -> bool:
    return e.first_seen - _EDGE_S <= t <= e.last_seen + _EDGE_S


def _next_ids(ctx: VideoContext) -> dict[str, int]:
    top: dict[str, int] = {}
    for o in ctx.objects:
        label, _, n = o.id.rpartition("#")
        top[label] = max(top.get(label, 0), int(n))
    return top


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def merge_results(
    ctx: VideoContext, entries: list[CacheEntry], run: ZoomRun
) -> tuple[list[Event], list[SpeechSegment]]:
    """Merge zoom results (in video times) into `ctx` in place (see the module docstring) and
    fill `run`'s lists and counts; returns the events and speech that were added."""
    id_map: dict[str, str] = {}
    top = _next_ids(ctx)
    existing = list(ctx.objects)
    zoomed = sorted((o for en in entries for o in en.objects), key=lambda o: (o.first_seen, o.id))
    # A zoomed track is an existing object when their boxes agree (mean IoU >= MATCH_IOU) on
    # the samples both have (at least two, or its only one). One zoomed track may continue
    # several existing objects that do not overlap in time (the sparse pass lost a person and
    # found them again under a new id), and one existing object may take several zoomed tracks
    # that do not overlap in time (the zoom's tracker split it). Best agreement first.
    pairs = []
    for i, z in enumerate(zoomed):
        for j, e in enumerate(existing):
            iou, n = _match_score(z, e)
            if iou >= MATCH_IOU and n >= min(2, len(z.trajectory)):
                pairs.append((iou * n, i, j))
    pairs.sort(key=lambda x: -x[0])
    owners: dict[int, list[int]] = {}  # zoomed index -> existing indices
    claimed: dict[int, list[int]] = {}  # existing index -> zoomed indices

    def disjoint(a: ObjectTrack, b: ObjectTrack) -> bool:
        return a.last_seen < b.first_seen or b.last_seen < a.first_seen

    for _, i, j in pairs:
        z, e = zoomed[i], existing[j]
        if not all(disjoint(e, existing[k]) for k in owners.get(i, [])):
            continue
        if not all(disjoint(z, zoomed[k]) for k in claimed.get(j, [])):
            continue
        owners.setdefault(i, []).append(j)
        claimed.setdefault(j, []).append(i)
    for i, z in enumerate(zoomed):
        if i not in owners:
            top[z.label] = top.get(z.label, 0) + 1
            new_id = f"{z.label}#{top[z.label]}"
            id_map[z.id] = new_id
            attrs = {**z.attributes, "found_by": f"zoom {run.id}"}
            ctx.objects.append(z.model_copy(update={"id": new_id, "attributes": attrs}))
            run.objects_added.append(new_id)
            continue
        matches = [existing[j] for j in owners[i]]
        # Each sample goes to the object seen at its time, else to the nearest in time (the
        # zoom followed it further than the sparse pass did).
        given: dict[str, list[TrackPoint]] = {e.id: [] for e in matches}
        for p in z.trajectory:
            covering = [e for e in matches if _covers(e, p.t)]
            if covering:
                e = covering[0]
            else:
                e = min(matches, key=lambda m: min(abs(p.t - m.first_seen), abs(p.t - m.last_seen)))
            given[e.id].append(p)
        for e in matches:
            pts = given[e.id]
            if not pts:
                continue
            have = [q.t for q in e.trajectory]
            # A sample at (nearly) the time of one the record has is the same moment: keep one.
            tol = 0.45 / run.fps
            extra = [q for q in pts if all(abs(q.t - t) > tol for t in have)]
            e.trajectory = sorted([*e.trajectory, *extra], key=lambda q: q.t)
            e.first_seen = min(e.first_seen, pts[0].t)
            e.last_seen = max(e.last_seen, pts[-1].t)
            if e.id not in run.objects_refined:
                run.objects_refined.append(e.id)
        id_map[z.id] = max(matches, key=lambda m: len(given[m.id])).id
    new_events: list[Event] = []
    for en in entries:
        for ev in en.events:
            ev = ev.model_copy(update={"objects": [id_map.get(x, x) for x in ev.objects]})
            same = next(
                (
                    x
                    for x in ctx.events
                    if x.kind == ev.kind
                    and _norm(x.text) == _norm(ev.text)
                    and x.start <= ev.end + _EDGE_S
                    and ev.start <= x.end + _EDGE_S
                ),
                None,
            )
            if same is not None:
                same.start, same.end = min(same.start, ev.start), max(same.end, ev.end)
                continue
            ev = ev.model_copy(update={"data": {**ev.data, "zoom": run.id}})
            ctx.events.append(ev)
            new_events.append(ev)
    new_speech: list[SpeechSegment] = []
    for en in entries:
        for s in en.speech:
            length = max(s.end - s.start, 1e-3)
            overlap = sum(max(0.0, min(s.end, x.end) - max(s.start, x.start)) for x in ctx.speech)
            if overlap >= 0.5 * length:
                continue
            ctx.speech.append(s)
            new_speech.append(s)
    # Masks go on the tracks of the objects they name (renamed like the events' ids); a mask
    # on an object the record does not hold (it cannot happen: ids come from upstream) is
    # dropped rather than invented into an object.
    by_id = {o.id: o for o in ctx.objects}
    for en in entries:
        for mk in en.masks:
            track = by_id.get(id_map.get(mk.object_id, mk.object_id))
            if track is not None and attach_mask(track, mk.t, mk.mask) is not None:
                run.masks_added += 1
    run.events_added = len(new_events)
    run.speech_added = len(new_speech)
    ctx.sort()
    return new_events, new_speech


# ------------------------------------------------------------------------------------ running


def _digest(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class Zoomer:
    """Zooms with perceivers kept loaded between calls (a chat session or an MCP server zooms
    many times; loading a detector each time would cost more than the zoom).

    `profile` gives each perceiver's options and the sampling sizes (default: the record's
    profile when it is a known one, else the default profile). `cache=False` recomputes.
    """

    def __init__(self, profile: str | Profile | None = None, *, cache: Cache | bool = True) -> None:
        self.profile = load_profile(profile) if profile is not None else None
        self.cache = Cache() if cache is True else (cache or None)
        self._perceivers: dict[str, Perceiver] = {}
        self._lock = threading.Lock()  # one zoom at a time: perceivers are not re-entrant

    def _profile_for(self, ctx: VideoContext) -> Profile:
        if self.profile is not None:
            return self.profile
        try:
            return load_profile(ctx.profile)
        except ConfigError:
            return load_profile(None)

    def _instance(self, name: str, options: dict) -> Perceiver:
        from vidchat.perceivers import get_perceiver

        key = f"{name}:{_digest(options)}"
        if key not in self._perceivers:
            self._perceivers[key] = get_perceiver(name)(options)
        return self._perceivers[key]

    def zoom(
        self,
        target: VideoContext | str | os.PathLike[str],
        start: float,
        end: float,
        perceivers: Sequence[str] | None = None,
        fps: float | None = None,
        *,
        options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> ZoomResult:
        """Run `perceivers` on [start, end] at `fps` and merge them into the record.

        `target` is a record, a saved record (.json) or a video (textualized first, through
        the cache). `perceivers` default to the profile's frame perceivers; `fps` to
        `DEFAULT_ZOOM_FPS`; `options` override a perceiver's options. InputError (one line) for
        a bad window, a missing video or a video that changed since the record was made.
        """
        t0 = time.perf_counter()
        ctx = self._load(target)
        prof = self._profile_for(ctx)
        fps = float(DEFAULT_ZOOM_FPS if fps is None else fps)
        start, end = self._check_window(ctx, float(start), float(end), fps)
        from vidchat.perceivers import get_perceiver

        names = list(dict.fromkeys(perceivers or self._default_perceivers(prof)))
        if not names:
            raise ConfigError("zoom needs at least one perceiver, e.g. detect or ocr")
        classes = {n: get_perceiver(n) for n in names}
        for n, cls in classes.items():
            if not cls.inputs:
                raise ConfigError(
                    f"perceiver {n} reads no frames or audio: zooming it adds nothing"
                )
        same = (start, end, fps, sorted(names))
        previous = next(
            (z for z in ctx.zooms if (z.start, z.end, z.fps, sorted(z.perceivers)) == same), None
        )
        if previous is not None and not options:
            return ZoomResult(
                ctx.model_copy(deep=True), previous, time.perf_counter() - t0, reused=True
            )
        video = self._video(ctx)
        sampling = prof.sampling.model_copy(update={"slow_fps": fps, "fast_fps": fps})
        out = ctx.model_copy(deep=True)
        run = ZoomRun(
            id=f"zoom{len(out.zooms) + 1}", start=start, end=end, fps=fps, perceivers=names
        )
        upstream = clip_to_window(ctx, start, end)
        entries: dict[str, CacheEntry] = {}
        with self._lock:
            # Dependencies that were not chosen are read from the record (not re-run).
            given = {d for cls in classes.values() for d in cls.requires} - set(names)
            for level in plan_levels(classes, given=given):
                jobs = []
                for n in level:
                    base = dict(prof.perceivers.get(n) or {})
                    base.update((options or {}).get(n) or {})
                    opts = zoom_options(classes[n], base, fps)
                    jobs.append((n, self._instance(n, opts)))
                with ThreadPoolExecutor(len(jobs), thread_name_prefix="zoom") as pool:
                    futures = {
                        n: pool.submit(self._run_one, p, video, start, end, sampling, upstream)
                        for n, p in jobs
                    }
                results = {n: f.result() for n, f in futures.items()}
                for n, _ in jobs:
                    entry = results[n]
                    entries[n] = entry
                    # Later levels read this level's results (window times) as upstream.
                    upstream.objects.extend(_shift_obs(o, -start) for o in entry.objects)
                    upstream.speech.extend(_shift_obs(s, -start) for s in entry.speech)
                    upstream.events.extend(_shift_obs(e, -start) for e in entry.events)
        run.provenance = [entries[n].provenance for n in names]
        ok = [entries[n] for n in names if entries[n].provenance.status == "ok"]
        new_events, new_speech = merge_results(out, ok, run)
        out.zooms.append(run)
        return ZoomResult(
            out, run, time.perf_counter() - t0, new_events=new_events, new_speech=new_speech
        )

    # -- pieces -------------------------------------------------------------------------------

    @staticmethod
    def _default_perceivers(prof: Profile) -> list[str]:
        from vidchat.perceivers import get_perceiver

        frame = [n for n in prof.perceivers if get_perceiver(n).inputs & {"slow", "fast"}]
        return frame or list(FALLBACK_PERCEIVERS)

    def _load(self, target: VideoContext | str | os.PathLike[str]) -> VideoContext:
        if isinstance(target, VideoContext):
            return target
        from vidchat.pipeline.open import open_context  # one reader of "a video or a record"

        return open_context(Path(target), self.profile, progress=False)

    @staticmethod
    def _check_window(
        ctx: VideoContext, start: float, end: float, fps: float
    ) -> tuple[float, float]:
        from vidchat.kernel.timecode import fmt_time

        if not 0 < fps <= MAX_ZOOM_FPS:
            raise InputError(f"zoom fps must be above 0 and at most {MAX_ZOOM_FPS:g}, got {fps:g}")
        if not (start == start and end == end) or start < 0:
            raise InputError(f"zoom window must start at 0 or later, got {start:g}")
        if end <= start:
            raise InputError(f"zoom window must end after it starts, got {start:g}..{end:g}")
        duration = ctx.video.duration
        if duration > 0 and start >= duration:
            raise InputError(
                f"zoom window starts at {fmt_time(start)}, after the end of the video "
                f"({fmt_time(duration)})"
            )
        if duration > 0:
            end = min(end, duration)
        return round(start, 3), round(end, 3)

    @staticmethod
    def _video(ctx: VideoContext) -> VideoInfo:
        """The record's video, checked to be the same file (zoom decodes it again)."""
        path = Path(ctx.video.path)
        if not path.exists():
            raise InputError(f"the record's video is not at {path}: zoom needs the video file")
        info = probe(path)
        if info.sha256 != ctx.video.sha256:
            raise InputError(f"{path} changed since the record was made (different content)")
        return info

    def _run_one(
        self,
        p: Perceiver,
        video: VideoInfo,
        start: float,
        end: float,
        sampling: Sampling,
        upstream: VideoContext,
    ) -> CacheEntry:
        """One perceiver on the window: from the cache, or run and cached (video times)."""
        options = p.options.model_dump(mode="json")
        avail = p.availability()
        model = p.model_identity() if avail.ok else None
        window = {
            **sampling.model_dump(exclude={"stall_timeout_s"}),
            "window": [start, end],
            # Perceivers that read upstream results depend on what the record held there.
            "upstream": _digest(upstream.model_dump(mode="json", exclude={"video"}))
            if p.requires
            else None,
        }
        key = cache_key(
            video_sha256=video.sha256,
            name=p.name,
            version=p.version,
            options=options,
            model_identity=model,
            sampling=window,
        )
        prov = Provenance(name=p.name, version=p.version, status="ok", options=options, model=model)
        if not avail.ok:
            prov.status, prov.reason = "skipped", f"unavailable: {avail.reason}"
            return CacheEntry(key=key, provenance=prov)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                hit.provenance.cached = True
                return hit
        t0 = time.perf_counter()
        entry = CacheEntry(key=key, provenance=prov)
        media = _WindowMedia(video, start, end, sampling, frozenset(p.inputs), upstream)
        try:
            p.ensure_loaded()
            for obs in p.perceive(media):
                if isinstance(obs, ObjectTrack):
                    entry.objects.append(_shift_obs(obs, start))
                elif isinstance(obs, SpeechSegment):
                    entry.speech.append(_shift_obs(obs, start))
                elif isinstance(obs, Event):
                    entry.events.append(_shift_obs(obs, start))
                elif isinstance(obs, ObjectMask):
                    entry.masks.append(_shift_obs(obs, start))
                else:
                    raise TypeError(
                        f"perceiver yielded {type(obs).__name__}; expected "
                        "ObjectTrack, SpeechSegment, Event or ObjectMask"
                    )
        except PerceiverSkipped as e:
            entry = CacheEntry(key=key, provenance=prov)
            prov.status, prov.reason = "skipped", str(e)
        except InputError as e:
            entry = CacheEntry(key=key, provenance=prov)
            prov.status, prov.reason = "failed", str(e)
        except Exception as e:
            entry = CacheEntry(key=key, provenance=prov)
            prov.status, prov.reason = "failed", f"{type(e).__name__}: {e}".strip()
        prov.seconds = round(time.perf_counter() - t0, 3)
        prov.items = entry_items(entry)
        if self.cache is not None and prov.status != "failed":
            self.cache.put(entry)
        return entry


def zoom(
    target: VideoContext | str | os.PathLike[str],
    start: float,
    end: float,
    perceivers: Sequence[str] | None = None,
    fps: float | None = None,
    *,
    profile: str | Profile | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    cache: bool = True,
) -> ZoomResult:
    """Look closer at [start, end] of a video: re-run `perceivers` there at `fps` (default 10)
    and return the record with what they found merged in (see the module docstring).

    `target` is a `VideoContext`, a saved record (.json) or a video file. Keep a `Zoomer` to
    zoom many times without loading the models again.
    """
    return Zoomer(profile, cache=cache).zoom(target, start, end, perceivers, fps, options=options)
