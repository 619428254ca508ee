"""The ``sam2`` perceiver: SAM-2 video mask tracking of the detector's objects.

Every object ``detect`` found is prompted with its box on the fast frame where it first appears;
SAM-2's video predictor then propagates its mask through the following fast frames. Object ids
are the detector's (``person#3``): this perceiver adds masks to objects, it never invents any.

Memory stays bounded whatever the video's length: frames are processed in chunks of at most
`chunk_frames` fast frames (SAM-2's ``init_state`` wants a folder of JPEG frames, written to a
temporary folder per chunk). Consecutive chunks overlap by one frame, and each object's mask on
that frame carries it into the next chunk (``add_new_mask``). A chunk is also cut where a new
object first appears, so every prompt lands on a chunk's first frame (SAM-2 propagates from the
earliest prompt). An object whose carried mask vanished is re-prompted with the detector's box
nearest in time; tracking of an object stops after the detector last saw it.

Output:

- `ObjectMask` per object per kept fast frame: the mask as `vidchat.kernel.record.RLE` (COCO
  uncompressed run lengths, column-major, starting with zeros) scaled from the fast frame to the
  video's full resolution (nearest neighbour). The pipeline puts each on the object's track
  (`TrackPoint.mask`; record schema 1.2): on the detector's point at that time, else on a new
  point (the detector's box interpolated there). An empty mask (SAM-2 lost the object) is kept
  only where the detector has a point; the summary below counts every frame.
- ``Event(kind="mask_track")`` per object: frames tracked, frames with a visible mask, mean area
  and motion in its text.

Records of schema 1.0/1.1 held masks as ``mask`` events (RLE counts as a JSON string at the
fast frame's size); reading one upgrades it (`vidchat.kernel.record.upgrade_mask_events`), and
`mask_from_event` still decodes such an event.

The model is named as a hub id of the SAM-2 release (``facebook/sam2.1-hiera-small``, downloaded
by huggingface_hub on first use) or a local checkpoint ``.pt`` with `config`: a config name that
ships in the sam2 package (``configs/sam2.1/sam2.1_hiera_s.yaml``) or a path to a config YAML.
"""

from __future__ import annotations

import itertools
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from vidchat.kernel.errors import ConfigError, PerceiverSkipped, PerceiverUnavailable
from vidchat.kernel.models import ResolvedModel, resolve
from vidchat.kernel.record import RLE, Event, ObjectMask, ObjectTrack, legacy_mask_rle
from vidchat.perceivers.base import Availability, Frame, Input, Media, Perceiver, PerceiverOptions

__all__ = [
    "SAM2Options",
    "SAM2Perceiver",
    "decode_rle",
    "encode_rle",
    "mask_from_event",
]

_EPS = 1e-6
# Hydra's global state is process-wide: one model build at a time.
_hydra_lock = threading.Lock()


class SAM2Options(PerceiverOptions):
    """Options of the ``sam2`` perceiver (unknown keys are errors)."""

    model: str = Field(
        "facebook/sam2.1-hiera-small",
        description="SAM-2 hub id (facebook/sam2.1-hiera-tiny|small|base-plus|large, sam2 too) "
        "or a local checkpoint .pt (then `config` is needed unless its file name is a release's)",
    )
    config: str | None = Field(
        None,
        description="sam2 config: a name shipped in the sam2 package "
        "(configs/sam2.1/sam2.1_hiera_s.yaml) or a path to a YAML file; None: from the model",
    )
    chunk_frames: int = Field(
        16, ge=2, le=512, description="fast frames per SAM-2 state: the memory bound"
    )
    mask_step_s: float = Field(
        0.0, ge=0, description="one mask event per object per this many seconds (0: every frame)"
    )
    reprompt_s: float = Field(
        1.0, ge=0, description="a lost mask is re-prompted with a detector box this close in time"
    )
    device: str = Field("cpu", description="torch device (cpu, cuda, cuda:0, auto)")


# ------------------------------------------------------------------------------------ masks


# The RLE coding belongs to the record's RLE model; these names are kept for callers.
encode_rle = RLE.from_mask
decode_rle = RLE.to_mask


# A 1.0/1.1 record's ``mask`` event (RLE counts as a JSON string, fast-frame size) as an RLE;
# the decoding lives with the record, which upgrades such events on reading.
mask_from_event = legacy_mask_rle


# ---------------------------------------------------------------------------------- tracking


@dataclass
class _ObjectState:
    """What the perceiver knows of one detector object while it streams the frames."""

    track: ObjectTrack
    started: bool = False
    mask: np.ndarray | None = None  # last mask, at fast-frame resolution
    last_t: float = -1.0
    frames: int = 0
    areas: list[float] = field(default_factory=list)
    centroids: list[tuple[float, float, float]] = field(default_factory=list)  # (t, x, y) norm.
    last_emitted_t: float = -1e9

    def box_near(self, t: float) -> tuple[float, tuple[float, float, float, float]] | None:
        if not self.track.trajectory:
            return None
        p = min(self.track.trajectory, key=lambda p: abs(p.t - t))
        return abs(p.t - t), p.box


class SAM2Perceiver(Perceiver):
    """Masks for every detected object through the fast frames (SAM-2 video predictor)."""

    name: ClassVar[str] = "sam2"
    # 2: masks as ObjectMask at full resolution (record 1.2) instead of "mask" events
    version: ClassVar[str] = "2"
    description: ClassVar[str] = "SAM-2 mask tracking of the detector's objects (fast frames)"
    Options: ClassVar[type[PerceiverOptions]] = SAM2Options
    inputs: ClassVar[frozenset[Input]] = frozenset({"fast"})
    requires = ("detect",)
    packages: ClassVar[tuple[str, ...]] = ("sam2", "torch", "hydra")

    options: SAM2Options

    def __init__(self, options: SAM2Options | dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self._predictor: Any = None

    # -- contract ---------------------------------------------------------------------------

    def _resolved(self) -> ResolvedModel:
        return resolve(self.options.model)

    def availability(self) -> Availability:
        """sam2 importable (not imported) and the checkpoint here, or a known hub id."""
        base = super().availability()
        if not base.ok:
            return base
        resolved = self._resolved()
        if not resolved.available:
            return Availability(False, resolved.reason)
        try:
            self._config_source(resolved)
        except ConfigError as e:
            return Availability(False, str(e))
        return Availability(True)

    def model_identity(self) -> str | None:
        ident = self._resolved().identity
        cfg = self.options.config
        if cfg and Path(cfg).expanduser().is_file():
            cfg = f"{cfg}:{resolve(str(Path(cfg).expanduser().resolve())).identity}"
        return f"{ident}|config={cfg}"

    def _config_source(self, resolved: ResolvedModel) -> tuple[str, str | None]:
        """(config name or YAML path, hub checkpoint file name or None)."""
        table = _release_table()
        if resolved.origin == "hub":
            if self.options.model not in table:
                known = ", ".join(sorted(table))
                raise ConfigError(
                    f"sam2: unknown SAM-2 hub id {self.options.model!r}; known: {known} "
                    "(or give a local checkpoint .pt with `config`)"
                )
            cfg, ckpt = table[self.options.model]
            return self.options.config or cfg, ckpt
        if self.options.config:
            return self.options.config, None
        path = resolved.path
        by_file = {ckpt: cfg for cfg, ckpt in table.values()}
        if path is not None and path.name in by_file:
            return by_file[path.name], None
        raise ConfigError(
            f"sam2: model {self.options.model!r} is a local checkpoint whose file name is not a "
            f"SAM-2 release's ({', '.join(sorted(by_file))}); set `config` to its config"
        )

    def load(self) -> None:
        """Build the video predictor from its config and load the checkpoint once."""
        resolved = self._resolved()
        config, hub_file = self._config_source(resolved)
        if hub_file is not None:
            from huggingface_hub import hf_hub_download

            try:
                ckpt = hf_hub_download(repo_id=self.options.model, filename=hub_file)
            except OSError as e:  # offline, or no such file: one line, not a traceback
                raise PerceiverUnavailable(
                    f"sam2: could not get {hub_file} from {self.options.model}: {e}"
                ) from e
        else:
            ckpt = str(resolved.require())
        from vidchat.perceivers.caption import torch_device

        self._predictor = build_video_predictor(config, ckpt, torch_device(self.options.device))
        _quiet_sam2_progress()
        from importlib.util import find_spec

        if find_spec("sam2._C") is None:
            # Hole filling needs sam2's compiled extension (absent from a CPU build); without it
            # sam2 skips the step anyway, but warns on every video.
            self._predictor.fill_hole_area = 0

    # -- the work ---------------------------------------------------------------------------

    def perceive(self, media: Media) -> Iterator[ObjectMask | Event]:
        """Stream the fast frames in chunks; yield masks, then one summary event per object."""
        objects = [o for o in media.upstream.objects if o.trajectory]
        if not objects:
            raise PerceiverSkipped("the detector found no objects to segment")
        self.ensure_loaded()
        states = {o.id: _ObjectState(o) for o in sorted(objects, key=lambda o: o.first_seen)}
        full = (media.info.height, media.info.width)
        chunk: list[Frame] = []
        n = 0
        with tempfile.TemporaryDirectory(prefix="vidchat-sam2-") as tmp:
            for frame in media.frames("fast"):
                n += 1
                if not chunk:
                    chunk = [frame]
                    continue
                chunk.append(frame)
                # An object first seen after the chunk's first frame: end the chunk here and
                # start the next one on this frame, so its box prompt is on a first frame.
                starting = any(
                    chunk[0].t + _EPS < s.track.first_seen <= frame.t + _EPS
                    for s in states.values()
                )
                if starting or len(chunk) >= self.options.chunk_frames:
                    yield from self._chunk(chunk, states, Path(tmp), full)
                    chunk = [frame]  # the overlap frame carries the masks into the next chunk
            if chunk:
                yield from self._chunk(chunk, states, Path(tmp), full)
        if n == 0:
            raise PerceiverSkipped("the fast frame stream had no frames")
        yield from self._summaries(states.values())

    def _chunk(
        self,
        chunk: list[Frame],
        states: dict[str, _ObjectState],
        tmp: Path,
        full: tuple[int, int],
    ) -> Iterator[ObjectMask]:
        """Prompt on the chunk's first frame, propagate through the chunk, emit masks."""
        import torch

        first = chunk[0]
        prompts: list[tuple[str, str, Any]] = []  # (id, "box"|"mask", value)
        new_ids: set[str] = set()
        for oid, s in states.items():
            tr = s.track
            if first.t > tr.last_seen + _EPS:
                s.mask = None  # gone for the detector: stop tracking
                continue
            if not s.started and tr.first_seen <= first.t + _EPS:
                near = s.box_near(tr.first_seen)
                if near is not None:
                    prompts.append((oid, "box", _scaled(near[1], first.scale)))
                    new_ids.add(oid)
                s.started = True
            elif s.started:
                if s.mask is not None and s.mask.any() and s.last_t >= first.t - _EPS:
                    prompts.append((oid, "mask", s.mask))
                else:
                    near = s.box_near(first.t)
                    if near is not None and near[0] <= self.options.reprompt_s:
                        prompts.append((oid, "box", _scaled(near[1], first.scale)))
                        new_ids.add(oid)
        if not prompts or (len(chunk) == 1 and not new_ids):
            return  # nothing new to see: a lone overlap frame was emitted already
        _write_jpegs(chunk, tmp)
        predictor = self._predictor
        with torch.inference_mode():
            state = predictor.init_state(
                str(tmp), offload_video_to_cpu=True, offload_state_to_cpu=True
            )
            for oid, kind, value in prompts:
                if kind == "box":
                    predictor.add_new_points_or_box(state, 0, oid, box=np.asarray(value))
                else:
                    predictor.add_new_mask(state, 0, oid, value)
            for idx, obj_ids, logits in predictor.propagate_in_video(state, start_frame_idx=0):
                frame = chunk[idx]
                masks = (logits[:, 0] > 0.0).cpu().numpy()
                for oid, mask in zip(obj_ids, masks, strict=True):
                    s = states[oid]
                    s.mask, s.last_t = mask, frame.t
                    if idx == 0 and oid not in new_ids:
                        continue  # emitted by the previous chunk (the overlap frame)
                    if frame.t > s.track.last_seen + _EPS:
                        continue
                    observed = self._observe(s, frame, mask, full)
                    if observed is not None:
                        yield observed
            predictor.reset_state(state)
        del state

    def _observe(
        self, s: _ObjectState, frame: Frame, mask: np.ndarray, full: tuple[int, int]
    ) -> ObjectMask | None:
        """Count the frame for the object's summary; the mask at full size (`full` is the
        video's (height, width)) when this frame's mask is kept (`mask_step_s`)."""
        h, w = mask.shape
        area = float(mask.sum()) / float(h * w)
        s.frames += 1
        s.areas.append(area)
        if area > 0:
            ys, xs = np.nonzero(mask)
            s.centroids.append((frame.t, float(xs.mean()) / w, float(ys.mean()) / h))
        step = self.options.mask_step_s
        if step > 0 and frame.t - s.last_emitted_t < step - _EPS:
            return None
        s.last_emitted_t = frame.t
        return ObjectMask(object_id=s.track.id, t=frame.t, mask=encode_rle(mask).resized(*full))

    def _summaries(self, states: Any) -> Iterator[Event]:
        for s in states:
            if s.frames == 0:
                continue
            c = s.centroids
            motion = 0.0
            if len(c) > 1 and c[-1][0] > c[0][0]:
                path = sum(
                    float(np.hypot(b[1] - a[1], b[2] - a[2])) for a, b in itertools.pairwise(c)
                )
                motion = path / (c[-1][0] - c[0][0])
            mean_area = float(np.mean(s.areas))
            visible = sum(a > 0 for a in s.areas)
            yield Event(
                start=s.track.first_seen,
                end=max(s.track.first_seen, min(s.last_t, s.track.last_seen)),
                kind="mask_track",
                text=(
                    f"{s.track.id} segmented in {visible}/{s.frames} frames, mean area "
                    f"{mean_area * 100:.1f}% of the frame, moving {motion:.3f} frame widths/s"
                ),
                source=self.name,
                objects=[s.track.id],
                data={
                    "frames": s.frames,
                    "visible_frames": visible,
                    "mean_area_frac": round(mean_area, 5),
                    "motion_per_s": round(motion, 4),
                },
            )


# ------------------------------------------------------------------------------- helpers


def _scaled(
    box: tuple[float, float, float, float], scale: float
) -> tuple[float, float, float, float]:
    return (box[0] * scale, box[1] * scale, box[2] * scale, box[3] * scale)


def _write_jpegs(chunk: list[Frame], folder: Path) -> None:
    """The chunk as ``00000.jpg``… (SAM-2's frame-folder format), replacing the last chunk."""
    from PIL import Image

    for old in folder.glob("*.jpg"):
        old.unlink()
    for i, fr in enumerate(chunk):
        Image.fromarray(fr.image).save(folder / f"{i:05d}.jpg", quality=95)


def _release_table() -> dict[str, tuple[str, str]]:
    """SAM-2 release hub ids -> (packaged config name, checkpoint file name), from sam2 itself."""
    try:
        from sam2.build_sam import HF_MODEL_ID_TO_FILENAMES
    except ImportError:
        return {}
    return dict(HF_MODEL_ID_TO_FILENAMES)


def build_video_predictor(config: str, checkpoint: str | None, device: str = "cpu") -> Any:
    """`sam2.build_sam.build_sam2_video_predictor` for a packaged config name or a YAML path.

    A YAML path is composed by pointing Hydra at its folder for the duration of the build, then
    Hydra is handed back to sam2's own config module.
    """
    import sam2  # noqa: F401 — initializes Hydra with sam2's config module
    from hydra import initialize_config_dir, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from sam2.build_sam import build_sam2_video_predictor

    path = Path(config).expanduser()
    with _hydra_lock:
        if not (path.suffix in (".yaml", ".yml") and path.is_file()):
            return build_sam2_video_predictor(config, checkpoint, device=device)
        GlobalHydra.instance().clear()
        try:
            with initialize_config_dir(config_dir=str(path.parent.resolve()), version_base="1.2"):
                return build_sam2_video_predictor(path.stem, checkpoint, device=device)
        finally:
            GlobalHydra.instance().clear()
            initialize_config_module("sam2", version_base="1.2")


def _no_bar(iterable: Any, *args: Any, **kwargs: Any) -> Any:
    return iterable


def _quiet_sam2_progress() -> None:
    """Silence sam2's tqdm bars ("frame loading", "propagate in video"): they would print twice
    per chunk, through vidchat's own progress display. Only sam2's modules are touched."""
    import sam2.sam2_video_predictor as predictor_module
    import sam2.utils.misc as misc_module

    predictor_module.tqdm = _no_bar
    misc_module.tqdm = _no_bar
