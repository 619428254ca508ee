"""The ``action`` perceiver: video classification on windows of the fast stream (transformers).

Any model transformers' ``AutoModelForVideoClassification`` loads works: VideoMAE
(``MCG-NJU/videomae-base-finetuned-kinetics``), TimeSformer
(``facebook/timesformer-base-finetuned-k400``), ViViT (``google/vivit-b-16x2-kinetics400``); its
video processor (``AutoVideoProcessor``, else ``AutoImageProcessor``) prepares the clip. The
model is a local folder or a hub id (`vidchat.kernel.models.resolve`), downloaded by transformers
on first use. (X-CLIP is a zero-shot text-video model, not a classifier: not supported here.)

Windows of `window_s` seconds start every `stride_s` seconds; each takes `clip_frames` fast
frames spread evenly over the window (repeating frames when the window holds fewer; default:
the model's ``num_frames``). Only the frames of open windows are held, so memory does not grow
with the video. Each window gives its top-k labels with scores; consecutive windows with the same
top label merge (when `merge` is on) into one ``Event(kind="action")``.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, model_validator

from vidchat.kernel.errors import ConfigError, PerceiverSkipped, PerceiverUnavailable
from vidchat.kernel.models import ResolvedModel
from vidchat.kernel.record import Event
from vidchat.perceivers.base import Frame, Input, Media, Perceiver, PerceiverOptions
from vidchat.perceivers.caption import import_transformers, pretrained_source

__all__ = ["ActionOptions", "ActionPerceiver", "window_starts"]

_EPS = 1e-6


class ActionOptions(PerceiverOptions):
    """Options of the ``action`` perceiver (unknown keys are errors)."""

    model: str = Field(
        "MCG-NJU/videomae-base-finetuned-kinetics",
        description="transformers video classifier: a local folder or a hub id",
    )
    window_s: float = Field(2.0, gt=0, le=60, description="seconds of video each window covers")
    stride_s: float = Field(2.0, gt=0, le=60, description="seconds between window starts")
    clip_frames: int | None = Field(
        None, ge=1, le=128, description="frames per clip; None: the model's num_frames"
    )
    top_k: int = Field(3, ge=1, le=20, description="labels kept per window")
    min_score: float = Field(
        0.1, ge=0, le=1, description="labels under this score are dropped (a window whose best "
        "label is under it gives no event)",
    )  # fmt: skip
    merge: bool = Field(True, description="merge consecutive windows with the same top label")
    device: str = Field("cpu", description="torch device (cpu, cuda, cuda:0)")

    @model_validator(mode="after")
    def _no_gaps(self) -> ActionOptions:
        if self.stride_s > self.window_s:
            raise ValueError(
                f"stride_s ({self.stride_s}) must not exceed window_s ({self.window_s}): "
                "frames between windows would never be looked at"
            )
        return self


def window_starts(t: float, window_s: float, stride_s: float) -> list[int]:
    """Indices k of the windows ``[k*stride, k*stride + window)`` that contain time `t`."""
    last = int(np.floor(t / stride_s + _EPS))
    first = max(0, int(np.floor((t - window_s) / stride_s + _EPS)) + 1)
    return [k for k in range(first, last + 1) if k * stride_s <= t + _EPS < k * stride_s + window_s]


@dataclass
class _Window:
    k: int
    frames: list[Frame]


@dataclass
class _Result:
    start: float
    end: float
    labels: list[tuple[str, float]]
    windows: int = 1


class ActionPerceiver(Perceiver):
    """Top-k action labels per window of the fast stream (VideoMAE, TimeSformer, ViViT)."""

    name: ClassVar[str] = "action"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "action recognition on fast-stream windows (video classifier)"
    Options: ClassVar[type[PerceiverOptions]] = ActionOptions
    inputs: ClassVar[frozenset[Input]] = frozenset({"fast"})
    packages: ClassVar[tuple[str, ...]] = ("transformers", "torch")

    options: ActionOptions

    def __init__(self, options: ActionOptions | dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self._model: Any = None
        self._processor: Any = None
        self._video_processor = False
        self._labels: dict[int, str] = {}
        self._clip_frames = 16
        self._multi_label = False

    def _resolved(self) -> ResolvedModel:
        resolved = self.resolve_model()
        assert resolved is not None  # `model` is a required option
        return resolved

    def load(self) -> None:
        """Load the classifier and its video (or image) processor once."""
        T = import_transformers()
        source = pretrained_source(self._resolved())
        try:
            model = T.AutoModelForVideoClassification.from_pretrained(source)
        except OSError as e:
            raise PerceiverUnavailable(f"action: could not load model {source!r}: {e}") from e
        except ValueError as e:
            raise ConfigError(
                f"action: {source!r} is not a video classifier transformers can load "
                f"(AutoModelForVideoClassification): {e}"
            ) from None
        try:
            self._processor = T.AutoVideoProcessor.from_pretrained(source)
            self._video_processor = True
        except (OSError, ValueError, KeyError, TypeError):
            self._processor = T.AutoImageProcessor.from_pretrained(source)
            self._video_processor = False
        self._model = model.to(self.options.device).eval()
        cfg = model.config
        self._labels = {int(k): str(v) for k, v in (cfg.id2label or {}).items()}
        self._clip_frames = self.options.clip_frames or int(getattr(cfg, "num_frames", 16) or 16)
        self._multi_label = getattr(cfg, "problem_type", None) == "multi_label_classification"

    # -- the work ---------------------------------------------------------------------------

    def perceive(self, media: Media) -> Iterator[Event]:
        """Classify each window as soon as the stream passes its end."""
        self.ensure_loaded()
        opts = self.options
        open_windows: deque[_Window] = deque()
        pending: _Result | None = None
        last_t = -1.0
        n = 0
        for frame in media.frames("fast"):
            n += 1
            last_t = frame.t
            while open_windows and frame.t >= open_windows[0].k * opts.stride_s + opts.window_s:
                pending = yield from self._emit(self._classify(open_windows.popleft()), pending)
            for k in window_starts(frame.t, opts.window_s, opts.stride_s):
                if not open_windows or open_windows[-1].k < k:
                    open_windows.append(_Window(k, []))
            for w in open_windows:
                w.frames.append(frame)
        if n == 0:
            raise PerceiverSkipped("the fast frame stream had no frames")
        done_any = pending is not None
        for i, w in enumerate(open_windows):
            # The tail: a window cut short by the end counts only when it holds at least half a
            # window of video beyond the last full one (or it is the video's only window).
            span = last_t - w.k * opts.stride_s
            if (i == 0 and not done_any) or span >= opts.window_s / 2:
                pending = yield from self._emit(self._classify(w), pending)
        if pending is not None:
            yield self._event(pending)

    def _classify(self, window: _Window) -> _Result | None:
        import torch

        frames = window.frames
        if not frames:
            return None
        idx = np.linspace(0, len(frames) - 1, self._clip_frames).round().astype(int)
        clip = [frames[i].image for i in idx]
        if self._video_processor:
            inputs = self._processor(videos=[np.stack(clip)], return_tensors="pt")
        else:
            inputs = self._processor(clip, return_tensors="pt")
        inputs = inputs.to(self.options.device)
        with torch.inference_mode():
            logits = self._model(**inputs).logits[0].float()
        probs = torch.sigmoid(logits) if self._multi_label else torch.softmax(logits, dim=-1)
        scores, ids = probs.topk(min(self.options.top_k, probs.numel()))
        labels = [
            (self._labels.get(int(i), f"class_{int(i)}"), round(float(s), 4))
            for s, i in zip(scores, ids, strict=True)
            if float(s) >= self.options.min_score
        ]
        if not labels:
            return None
        return _Result(frames[0].t, frames[-1].t, labels)

    def _emit(
        self, result: _Result | None, pending: _Result | None
    ) -> Generator[Event, None, _Result | None]:
        """Merge `result` into `pending` when their top labels agree; yield what is finished.
        Returns the new pending result (a generator's return value, via ``yield from``)."""
        if result is None:
            return pending
        if pending is None:
            return result
        if self.options.merge and pending.labels[0][0] == result.labels[0][0]:
            n = pending.windows
            merged: dict[str, float] = {}
            for label, s in pending.labels:
                merged[label] = merged.get(label, 0.0) + s * n
            for label, s in result.labels:
                merged[label] = merged.get(label, 0.0) + s
            top = sorted(merged.items(), key=lambda x: -x[1])[: self.options.top_k]
            pending.labels = [(label, round(s / (n + 1), 4)) for label, s in top]
            pending.end = max(pending.end, result.end)
            pending.windows = n + 1
            return pending
        yield self._event(pending)
        return result

    def _event(self, r: _Result) -> Event:
        label, score = r.labels[0]
        return Event(
            start=r.start,
            end=max(r.start, r.end),
            kind="action",
            text=", ".join(f"{lab} ({s:.2f})" for lab, s in r.labels),
            source=self.name,
            confidence=score,
            data={"label": label, "top": json.dumps(r.labels), "windows": r.windows},
        )
