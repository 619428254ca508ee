"""The ``ocr`` perceiver: on-screen text with RapidOCR (PP-OCR ONNX models) on keyframes.

Only keyframes (see `perceivers.keyframes`) are read: on-screen text rarely changes between two
frames a second apart that look the same, and OCR costs about a second a frame on a CPU.

The default models are the ones inside the ``rapidocr`` wheel (3.10.0): PP-OCRv6 small text
detection and recognition (one multilingual model: Latin-script languages, Chinese, Japanese)
and the PP-OCR mobile angle classifier. The perceiver passes their file paths to RapidOCR
explicitly, so RapidOCR never looks for (or downloads) anything else; other PP-OCR ONNX models
are used by giving their local paths (`det_model`, `rec_model`, `rec_keys`).

Each keyframe gives text lines with boxes (full-resolution pixels). A line seen again in the
next keyframe (same text after normalizing case, spacing and Unicode forms, fuzzy ratio at
least `merge_ratio`) extends the same span; the span ends when a keyframe no longer shows it.
Each span becomes one ``Event(kind="ocr")`` from the first keyframe it was seen in to the last
frame that keyframe's successors stood for (frames between keyframes showed nothing new),
with its text as read most confidently, the box of that reading (``data["box"]`` is
``"x1,y1,x2,y2"``), its best score, and how many keyframes saw it. The text is untrusted data
from the video (the renderer quotes it).
"""

from __future__ import annotations

import difflib
import importlib.metadata as md
import importlib.util
import threading
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from vidchat.kernel.errors import ConfigError
from vidchat.kernel.models import file_fingerprint, resolve
from vidchat.kernel.record import Event
from vidchat.perceivers.base import Availability, Frame, Input, Media, Perceiver, PerceiverOptions
from vidchat.perceivers.keyframes import KeyframeOptions, media_keyframes

__all__ = ["OCRLine", "OCROptions", "OCRPerceiver", "TextSpan", "merge_lines", "normalize_text"]

# The models that ship inside the rapidocr 3.10 wheel (rapidocr/models/).
_SHIPPED_DET = "PP-OCRv6_det_small.onnx"
_SHIPPED_REC = "PP-OCRv6_rec_small.onnx"
_SHIPPED_CLS = "ch_ppocr_mobile_v2.0_cls_mobile.onnx"

# RapidOCR's engine construction is not safe to run twice at once for the same object.
_load_lock = threading.Lock()


class OCROptions(PerceiverOptions):
    """Options of the ``ocr`` perceiver (unknown keys are errors)."""

    keyframes: KeyframeOptions = Field(
        default_factory=KeyframeOptions, description="which slow frames are read"
    )
    use_shots: bool = Field(
        False,
        description="also start a keyframe at every cut of the shots perceiver (requires "
        "shots, which then runs in an earlier decode pass)",
    )
    min_score: float = Field(0.6, ge=0, le=1, description="recognition score a line needs")
    min_chars: int = Field(
        2, ge=1, description="lines with fewer letters/digits are dropped (stray marks)"
    )
    merge_ratio: float = Field(
        0.8, gt=0, le=1, description="fuzzy match of normalized texts that counts as the same"
    )
    max_missed: int = Field(
        0,
        ge=0,
        description="keyframes a text may be missing from and still continue its span "
        "(0: it must be seen in consecutive keyframes)",
    )
    use_angle_cls: bool = Field(
        False, description="run the 180-degree text-direction classifier (upside-down text)"
    )
    det_model: str | None = Field(
        None, description="local PP-OCR text-detection .onnx (default: the one in rapidocr)"
    )
    rec_model: str | None = Field(
        None, description="local PP-OCR recognition .onnx (default: the one in rapidocr)"
    )
    rec_keys: str | None = Field(
        None,
        description="character dictionary of `rec_model` (one character a line); not needed "
        "when the .onnx embeds it, as rapidocr's models do",
    )
    det_side: int = Field(
        736,
        ge=32,
        description="text detection resizes the frame so its shorter side is at least this "
        "(det_limit=min, RapidOCR's default: small text gets bigger) or its longer side at "
        "most this (det_limit=max: faster on big frames)",
    )
    det_limit: Literal["min", "max"] = Field("min", description="how det_side applies")
    threads: int = Field(
        1,
        ge=0,
        description="onnxruntime threads (0: all cores). 1 leaves the other core to the "
        "perceivers running beside it",
    )


@dataclass(frozen=True)
class OCRLine:
    """One text line read in one keyframe; box in full-resolution pixels."""

    t: float
    text: str
    score: float
    box: tuple[float, float, float, float]


@dataclass
class TextSpan:
    """One text followed across consecutive keyframes."""

    key: str  # normalized text of the first reading: what later readings are compared with
    best: OCRLine
    start: float
    end: float
    keyframes: int
    last_seen: int  # keyframe number it was last seen in
    score_sum: float

    def event(self, source: str) -> Event:
        x1, y1, x2, y2 = (round(v) for v in self.best.box)
        return Event(
            kind="ocr",
            text=self.best.text,
            start=self.start,
            end=self.end,
            source=source,
            confidence=round(self.score_sum / self.keyframes, 4),
            data={
                "box": f"{x1},{y1},{x2},{y2}",
                "score": round(self.best.score, 4),
                "keyframes": self.keyframes,
            },
        )


def normalize_text(text: str) -> str:
    """Text as compared across keyframes: Unicode NFKC, case-folded, runs of spaces as one."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _ratio(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def merge_lines(
    keyframes: Iterable[tuple[list[OCRLine], float]],
    merge_ratio: float = 0.8,
    max_missed: int = 0,
) -> Iterator[TextSpan]:
    """Follow texts across keyframes, given in time order as ``(lines, until)``: the lines read
    in a keyframe and the time of the last frame that keyframe stands for (see
    `vidchat.perceivers.keyframes.keyframes_with_extent`); a span ends at the `until` of the last
    keyframe that showed it.

    A line continues the open span whose key it matches best (ratio >= `merge_ratio`), each
    span taking at most one line per keyframe; other lines open new spans. A span not seen for
    more than `max_missed` keyframes is finished and yielded; the rest are yielded at the end.
    """
    open_spans: list[TextSpan] = []
    n = -1
    for n, (lines, until) in enumerate(keyframes):
        taken: set[int] = set()
        # Most confident lines pick first, so a clean reading claims the span before a noisy one.
        for line in sorted(lines, key=lambda ln: -ln.score):
            key = normalize_text(line.text)
            best_i, best_r = -1, merge_ratio
            for i, span in enumerate(open_spans):
                if i in taken:
                    continue
                r = 1.0 if span.key == key else _ratio(span.key, key)
                if r >= best_r:
                    best_i, best_r = i, r
            if best_i >= 0:
                span = open_spans[best_i]
                span.end = max(until, line.t)
                span.keyframes += 1
                span.last_seen = n
                span.score_sum += line.score
                if line.score > span.best.score:
                    span.best = line
                taken.add(best_i)
            else:
                end = max(until, line.t)
                open_spans.append(TextSpan(key, line, line.t, end, 1, n, line.score))
                taken.add(len(open_spans) - 1)
        still_open = []
        for span in open_spans:
            if n - span.last_seen > max_missed:
                yield span
            else:
                still_open.append(span)
        open_spans = still_open
    yield from open_spans


def _count_alnum(text: str) -> int:
    return sum(ch.isalnum() for ch in text)


def _quad_to_box(quad: Any) -> tuple[float, float, float, float]:
    pts = np.asarray(quad, dtype=np.float64).reshape(-1, 2)
    return (
        float(pts[:, 0].min()),
        float(pts[:, 1].min()),
        float(pts[:, 0].max()),
        float(pts[:, 1].max()),
    )


def _shipped_models_dir() -> Path | None:
    spec = importlib.util.find_spec("rapidocr")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "models"


class OCRPerceiver(Perceiver):
    """On-screen text (RapidOCR) on keyframes; one ``ocr`` event per text and time span."""

    name: ClassVar[str] = "ocr"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "on-screen text with RapidOCR (PP-OCR ONNX) on keyframes"
    Options: ClassVar[type[PerceiverOptions]] = OCROptions
    inputs: ClassVar[frozenset[Input]] = frozenset({"slow"})
    packages: ClassVar[tuple[str, ...]] = ("rapidocr", "onnxruntime", "cv2")

    options: OCROptions

    def __init__(self, options: PerceiverOptions | dict[str, Any] | None = None) -> None:
        super().__init__(options)
        # Instance attribute on purpose: the dependency exists only when the option asks for it.
        self.requires = ("shots",) if self.options.use_shots else ()
        self._engine: Any = None

    # -- models ---------------------------------------------------------------------------------

    def model_paths(self) -> dict[str, Path]:
        """The .onnx (and keys) files in use; ConfigError names a missing one and the fix."""
        shipped = _shipped_models_dir()
        paths: dict[str, Path] = {}
        for role, option, default in (
            ("det", self.options.det_model, _SHIPPED_DET),
            ("rec", self.options.rec_model, _SHIPPED_REC),
            ("cls", None, _SHIPPED_CLS),
        ):
            if option is not None:
                paths[role] = resolve(option).require()
            elif shipped is None:
                raise ConfigError("perceiver ocr needs rapidocr: pip install rapidocr==3.10.0")
            else:
                paths[role] = shipped / default
                if not paths[role].is_file():
                    raise ConfigError(
                        f"perceiver ocr: {paths[role]} is missing from the rapidocr package "
                        f"(expected rapidocr==3.10.0, which ships it); give {role}_model a path"
                    )
        if self.options.rec_keys is not None:
            paths["keys"] = resolve(self.options.rec_keys).require()
        return paths

    def availability(self) -> Availability:
        """Needs rapidocr, onnxruntime, OpenCV, and the model files."""
        base = super().availability()
        if not base.ok:
            return base
        try:
            self.model_paths()
        except ConfigError as e:
            return Availability(False, str(e))
        return Availability(True)

    def model_identity(self) -> str | None:
        """rapidocr's version and a fingerprint of every model file in use."""
        paths = self.model_paths()
        prints = ",".join(f"{k}:{file_fingerprint(p)}" for k, p in sorted(paths.items()))
        return f"rapidocr=={md.version('rapidocr')};{prints}"

    def load(self) -> None:
        """Build the RapidOCR engine with explicit model paths (no download can happen)."""
        from rapidocr import RapidOCR

        paths = self.model_paths()
        threads = self.options.threads or -1
        params: dict[str, Any] = {
            # "error": RapidOCR warns on every frame without text, which is most frames.
            "Global.log_level": "error",
            "Global.use_cls": self.options.use_angle_cls,
            "Global.text_score": self.options.min_score,
            "Det.model_path": str(paths["det"]),
            "Rec.model_path": str(paths["rec"]),
            "Cls.model_path": str(paths["cls"]),
            "Det.limit_side_len": self.options.det_side,
            "Det.limit_type": self.options.det_limit,
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
        if "keys" in paths:
            params["Rec.rec_keys_path"] = str(paths["keys"])
        with _load_lock:
            self._engine = RapidOCR(params=params)

    # -- perception -----------------------------------------------------------------------------

    def read(self, frame: Frame) -> list[OCRLine]:
        """The text lines RapidOCR reads in one frame that pass `min_score` and `min_chars`."""
        self.ensure_loaded()
        result = self._engine(np.ascontiguousarray(frame.image[..., ::-1]))  # RapidOCR: BGR
        if result.boxes is None or result.txts is None:
            return []
        lines = []
        for quad, text, score in zip(result.boxes, result.txts, result.scores, strict=True):
            text = " ".join(str(text).split())
            if float(score) < self.options.min_score:
                continue
            if _count_alnum(text) < self.options.min_chars:
                continue
            lines.append(OCRLine(frame.t, text, float(score), frame.to_full(_quad_to_box(quad))))
        return lines

    def perceive(self, media: Media) -> Iterator[Event]:
        """Read every keyframe; yield one event per text span, in order of the span's end."""
        keyframes = media_keyframes(media, self.options.keyframes, self.options.use_shots)
        per_keyframe = ((self.read(kf.frame), until) for kf, until in keyframes)
        for span in merge_lines(per_keyframe, self.options.merge_ratio, self.options.max_missed):
            yield span.event(self.name)
