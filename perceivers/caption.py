"""Captions through transformers: ``caption`` (keyframes) and ``region_caption`` (objects).

Both load any image-to-text model that transformers' ``AutoModelForImageTextToText`` knows,
with its ``AutoProcessor``: BLIP (``Salesforce/blip-image-captioning-base``), GIT
(``microsoft/git-base-coco``), Florence-2 (``microsoft/Florence-2-base``, prompt ``<CAPTION>``),
or a chat VLM (SmolVLM, Qwen2-VL, LLaVA…) whose processor has a chat template: the prompt is
then sent as a user turn with the image. The model is named as a local folder or a hub id
(`vidchat.kernel.models.resolve`); a hub id is downloaded by transformers on first use.

- ``caption`` reads the slow stream's keyframes (`vidchat.perceivers.keyframes`): one
  ``Event(kind="caption")`` per keyframe, at its time.
- ``region_caption`` (VideoRefer-style object descriptions) requires ``detect``: for each object
  it keeps the best crop seen in the slow stream (the trajectory box nearest a slow frame, the
  largest box times its score wins), then captions the crops. Objects merge by id in the record
  and ``ObjectTrack.description`` belongs to the detector, so each description is an
  ``Event(kind="object_description", objects=[id])`` spanning the object's lifetime.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from vidchat.kernel.compat import import_transformers
from vidchat.kernel.errors import ConfigError, PerceiverSkipped, PerceiverUnavailable
from vidchat.kernel.models import ResolvedModel
from vidchat.kernel.record import Event
from vidchat.perceivers.base import Frame, Input, Media, Perceiver, PerceiverOptions
from vidchat.perceivers.keyframes import KeyframeOptions, media_keyframes

__all__ = [
    "CaptionOptions",
    "CaptionPerceiver",
    "Captioner",
    "RegionCaptionOptions",
    "RegionCaptionPerceiver",
    "import_transformers",
    "torch_device",
]


def torch_device(name: str) -> str:
    """A torch device string; ``auto`` is ``cuda`` when a GPU is visible, else ``cpu``."""
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def pretrained_source(resolved: ResolvedModel) -> str:
    """What ``from_pretrained`` gets: the local folder, or the hub id (downloaded by it)."""
    if resolved.origin == "hub":
        return resolved.name
    return str(resolved.require())


class _CaptionModelOptions(PerceiverOptions):
    model: str = Field(
        "Salesforce/blip-image-captioning-base",
        description="transformers image-to-text model: a local folder or a hub id (BLIP, GIT, "
        "Florence-2, or a chat VLM)",
    )
    prompt: str | None = Field(
        None,
        description="text prompt: BLIP/GIT continue it ('a photography of'), Florence-2 takes a "
        "task ('<CAPTION>', '<DETAILED_CAPTION>'), a chat VLM gets it as the user's question; "
        "None: none for BLIP/GIT, '<CAPTION>' for Florence-2, 'Describe this image in one "
        "sentence.' for a chat VLM",
    )
    max_new_tokens: int = Field(30, ge=1, le=512, description="longest caption, in tokens")
    num_beams: int = Field(1, ge=1, le=16, description="beam search width (1: greedy)")
    device: str = Field("cpu", description="torch device (cpu, cuda, cuda:0, auto)")


class Captioner:
    """One image-to-text model and its processor; `caption(images)` gives one text per image."""

    def __init__(self, source: str, options: _CaptionModelOptions) -> None:
        transformers = import_transformers()
        self.options = options
        self.device = torch_device(options.device)
        try:
            self.processor = transformers.AutoProcessor.from_pretrained(source)
            self.model = transformers.AutoModelForImageTextToText.from_pretrained(source)
        except OSError as e:
            raise PerceiverUnavailable(f"could not load captioning model {source!r}: {e}") from e
        except ValueError as e:
            raise ConfigError(
                f"{source!r} is not an image-to-text model transformers can load "
                f"(AutoModelForImageTextToText): {e}"
            ) from None
        self.model.to(self.device).eval()
        model_type = str(getattr(self.model.config, "model_type", ""))

        self._takes_token_types = (
            "token_type_ids" in inspect.signature(self.model.forward).parameters
        )
        self._strip_sep = model_type == "git"
        # Saved processors keep the template on the processor or (transformers 5, for some
        # processor classes) on its tokenizer.
        tokenizer = getattr(self.processor, "tokenizer", None)
        self.chat_template: str | None = getattr(self.processor, "chat_template", None) or getattr(
            tokenizer, "chat_template", None
        )
        self.chat = self.chat_template is not None
        if options.prompt is not None:
            self.prompt: str | None = options.prompt
        elif model_type == "florence2":
            self.prompt = "<CAPTION>"
        elif self.chat:
            self.prompt = "Describe this image in one sentence."
        else:
            self.prompt = None

    def _text_input(self) -> str | None:
        if not self.chat:
            return self.prompt
        messages = [
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": self.prompt}]}
        ]
        return self.processor.apply_chat_template(
            messages, chat_template=self.chat_template, add_generation_prompt=True
        )

    def caption(self, images: Sequence[np.ndarray]) -> list[str]:
        """Captions of RGB uint8 images, in order (one generate call per image: prompts differ
        in length across models and batching saves little on CPU)."""
        import torch
        from PIL import Image

        out: list[str] = []
        text = self._text_input()
        for image in images:
            pil = Image.fromarray(np.ascontiguousarray(image))
            kwargs: dict[str, Any] = {"images": pil, "return_tensors": "pt"}
            if text is not None:
                kwargs["text"] = text
            inputs = self.processor(**kwargs)
            if "token_type_ids" in inputs and not self._takes_token_types:
                del inputs["token_type_ids"]  # BERT tokenizers make them; GIT's generate refuses
            ids_in = inputs.get("input_ids")
            sep = getattr(self.processor.tokenizer, "sep_token_id", None)
            if (
                self._strip_sep
                and ids_in is not None
                and ids_in.shape[1] > 1
                and int(ids_in[0, -1]) == sep
            ):
                # GIT continues the prompt's tokens: a trailing [SEP] would end the caption.
                inputs["input_ids"] = ids_in[:, :-1]
                if "attention_mask" in inputs:
                    inputs["attention_mask"] = inputs["attention_mask"][:, :-1]
            inputs = inputs.to(self.device)
            with torch.inference_mode():
                ids = self.model.generate(
                    **inputs,
                    max_new_tokens=self.options.max_new_tokens,
                    num_beams=self.options.num_beams,
                    do_sample=False,
                )
            prompt_ids = inputs.get("input_ids")
            if (
                prompt_ids is not None
                and ids.shape[1] >= prompt_ids.shape[1]
                and torch.equal(ids[:, : prompt_ids.shape[1]], prompt_ids.to(ids.device))
            ):
                ids = ids[:, prompt_ids.shape[1] :]  # decoder-only models echo the prompt
            decoded = self.processor.batch_decode(ids, skip_special_tokens=True)[0]
            out.append(_clean(decoded, self.prompt))
        return out


def _clean(text: str, prompt: str | None) -> str:
    text = " ".join(text.split())
    if prompt and not prompt.startswith("<") and text.lower().startswith(prompt.lower()):
        text = text[len(prompt) :].strip()
    return text


class _CaptionBase(Perceiver):
    """Model resolution and loading shared by both caption perceivers."""

    packages: ClassVar[tuple[str, ...]] = ("transformers", "torch", "PIL")
    options: _CaptionModelOptions

    def __init__(self, options: PerceiverOptions | dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self._captioner: Captioner | None = None

    def _resolved(self) -> ResolvedModel:
        resolved = self.resolve_model()
        assert resolved is not None  # `model` is a required option
        return resolved

    def load(self) -> None:
        """Load the processor and model once."""
        self._captioner = Captioner(pretrained_source(self._resolved()), self.options)


# --------------------------------------------------------------------------------- caption


class CaptionOptions(_CaptionModelOptions):
    """Options of the ``caption`` perceiver (unknown keys are errors)."""

    keyframes: KeyframeOptions = Field(
        default_factory=KeyframeOptions, description="how keyframes are chosen"
    )
    use_shots: bool = Field(
        False, description="start a keyframe at every cut of the shots perceiver (requires it)"
    )


class CaptionPerceiver(_CaptionBase):
    """A caption per slow-stream keyframe (BLIP, GIT, Florence-2 or a chat VLM)."""

    name: ClassVar[str] = "caption"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "frame captions on keyframes (transformers image-to-text)"
    Options: ClassVar[type[PerceiverOptions]] = CaptionOptions
    inputs: ClassVar[frozenset[Input]] = frozenset({"slow"})

    options: CaptionOptions

    def __init__(self, options: CaptionOptions | dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.requires = ("shots",) if self.options.use_shots else ()

    def perceive(self, media: Media) -> Iterator[Event]:
        """Caption each keyframe as it arrives; one ``caption`` event per keyframe."""
        self.ensure_loaded()
        assert self._captioner is not None
        n = 0
        for kf, until in media_keyframes(media, self.options.keyframes, self.options.use_shots):
            # What a keyframe shows holds until the frame before the next keyframe.
            frame = kf.frame
            text = self._captioner.caption([frame.image])[0]
            n += 1
            if not text:
                continue
            yield Event(
                start=frame.t,
                end=max(frame.t, until),
                kind="caption",
                text=text,
                source=self.name,
                data={"keyframe": n, "frame": frame.index, "reason": str(kf.reason)},
            )
        if n == 0:
            raise PerceiverSkipped("the slow frame stream had no frames")


# ---------------------------------------------------------------------------- region captions


class RegionCaptionOptions(_CaptionModelOptions):
    """Options of the ``region_caption`` perceiver (unknown keys are errors)."""

    margin: float = Field(
        0.1, ge=0, le=1, description="crop margin around the box, as a fraction of its size"
    )
    max_gap_s: float = Field(
        0.5, ge=0, description="a slow frame uses a trajectory box at most this far in time"
    )
    min_side_px: int = Field(16, ge=1, description="skip crops smaller than this (full-res px)")


@dataclass
class _BestCrop:
    quality: float
    t: float
    box: tuple[float, float, float, float]
    crop: np.ndarray


class RegionCaptionPerceiver(_CaptionBase):
    """A description of each detected object, captioned from its best crop."""

    name: ClassVar[str] = "region_caption"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "object descriptions from each object's best crop (captioner)"
    Options: ClassVar[type[PerceiverOptions]] = RegionCaptionOptions
    inputs: ClassVar[frozenset[Input]] = frozenset({"slow"})
    requires = ("detect",)

    options: RegionCaptionOptions

    def perceive(self, media: Media) -> Iterator[Event]:
        """Keep one crop per object while the slow frames stream, then caption the crops."""
        objects = [o for o in media.upstream.objects if o.trajectory]
        if not objects:
            raise PerceiverSkipped("the detector found no objects to describe")
        best: dict[str, _BestCrop] = {}
        for frame in media.frames("slow"):
            for o in objects:
                if not (o.first_seen - self.options.max_gap_s <= frame.t):
                    continue
                if frame.t > o.last_seen + self.options.max_gap_s:
                    continue
                p = min(o.trajectory, key=lambda p: abs(p.t - frame.t))
                if abs(p.t - frame.t) > self.options.max_gap_s:
                    continue
                w, h = p.box[2] - p.box[0], p.box[3] - p.box[1]
                if min(w, h) < self.options.min_side_px:
                    continue
                quality = w * h * (p.score if p.score is not None else 1.0)
                if o.id in best and best[o.id].quality >= quality:
                    continue
                crop = _crop(frame, p.box, self.options.margin)
                if crop is not None:
                    best[o.id] = _BestCrop(quality, frame.t, p.box, crop)
        if not best:
            raise PerceiverSkipped("no slow frame showed a detected object large enough")
        self.ensure_loaded()
        assert self._captioner is not None
        for o in objects:
            b = best.get(o.id)
            if b is None:
                continue
            text = self._captioner.caption([b.crop])[0]
            if not text:
                continue
            yield Event(
                start=o.first_seen,
                end=o.last_seen,
                kind="object_description",
                text=text,
                source=self.name,
                objects=[o.id],
                data={"crop_t": round(b.t, 3), "box": ",".join(f"{v:.1f}" for v in b.box)},
            )


def _crop(frame: Frame, box: tuple[float, float, float, float], margin: float) -> np.ndarray | None:
    """The box (full-res px) plus a margin, cut from the frame at its own resolution."""
    h, w = frame.image.shape[:2]
    x1, y1, x2, y2 = (v * frame.scale for v in box)
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    xa, ya = max(0, int(x1 - mx)), max(0, int(y1 - my))
    xb, yb = min(w, int(np.ceil(x2 + mx))), min(h, int(np.ceil(y2 + my)))
    if xb - xa < 2 or yb - ya < 2:
        return None
    return np.ascontiguousarray(frame.image[ya:yb, xa:xb]).copy()
