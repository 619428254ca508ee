"""The perceiver contract: what every perception module (built-in or plugin) implements.

A perceiver has a `name`, a `version` (bump it whenever its output can change: it is part of the
cache key), a pydantic `Options` model with ``extra="forbid"``, the `inputs` it needs from the
shared decode (``slow`` frames, ``fast`` frames, ``audio``), the perceivers whose results it
reads (`requires`), and one method, `perceive`, that turns a `Media` into observations
(`ObjectTrack`, `SpeechSegment`, `Event` from `vidchat.kernel.record`).

Heavy libraries are imported inside `load`/`perceive`, never at module import, and library
objects (ultralytics Results, whisper dicts…) never leave the perceiver.
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from vidchat.kernel.errors import ConfigError
from vidchat.kernel.models import ResolvedModel, resolve
from vidchat.kernel.record import Observation, VideoContext, VideoInfo

Input = Literal["slow", "fast", "audio"]
FrameStreamName = Literal["slow", "fast"]


@dataclass(frozen=True)
class Frame:
    """One decoded frame of a stream.

    `image` is RGB uint8, shape (H, W, 3). `scale` is image size / full size, so a box found on a
    downscaled fast frame maps back to full-resolution pixels with `to_full`.
    """

    index: int  # position within its stream
    t: float  # seconds from the start, from the frame's presentation timestamp
    image: np.ndarray
    scale: float = 1.0

    def to_full(self, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        s = self.scale
        x1, y1, x2, y2 = box
        return (x1 / s, y1 / s, x2 / s, y2 / s)


class Media(Protocol):
    """What a perceiver sees: video facts, the shared frame streams, audio, upstream results."""

    info: VideoInfo

    def frames(self, stream: FrameStreamName) -> Iterator[Frame]:
        """The frames of the one stream a perceiver declared, in time order, iterable once."""
        ...

    def frames_all(self) -> Iterator[tuple[FrameStreamName, Frame]]:
        """Both declared streams interleaved in time order as ``(stream, frame)``, iterable once.

        A perceiver that declares both ``slow`` and ``fast`` must read them this way: reading
        one stream to its end first would force the other to be held in memory.
        """
        ...

    def audio(self) -> np.ndarray | None:
        """The whole audio track as 16 kHz mono float32, or None when the video has none."""
        ...

    @property
    def upstream(self) -> VideoContext:
        """The record so far: results of the perceivers named in `requires`."""
        ...


class PerceiverOptions(BaseModel):
    """Base of every perceiver's options: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


@dataclass(frozen=True)
class Availability:
    """Whether a perceiver can run here; `reason` says what is missing when it cannot."""

    ok: bool
    reason: str | None = None


class Perceiver(ABC):
    """Base class of all perceivers. Subclasses set the class variables and `perceive`."""

    name: ClassVar[str]
    version: ClassVar[str]
    description: ClassVar[str] = ""
    Options: ClassVar[type[PerceiverOptions]] = PerceiverOptions
    inputs: ClassVar[frozenset[Input]] = frozenset()
    # Not a ClassVar: a perceiver may narrow it per instance from its options (caption, ocr and
    # tags read the shots only with use_shots).
    requires: tuple[str, ...] = ()
    # Python import names the perceiver needs; checked without importing them.
    packages: ClassVar[tuple[str, ...]] = ()

    def __init__(self, options: PerceiverOptions | Mapping[str, Any] | None = None) -> None:
        self.options = self.parse_options(options)
        self._loaded = False

    @classmethod
    def parse_options(
        cls, options: PerceiverOptions | Mapping[str, Any] | None
    ) -> PerceiverOptions:
        """Validate options; a ConfigError names the perceiver, the key and what was expected."""
        if isinstance(options, cls.Options):
            return options
        if options is not None and not isinstance(options, Mapping):
            raise ConfigError(
                f"perceiver {cls.name}: options must be a mapping, got {type(options).__name__}"
            )
        try:
            return cls.Options.model_validate(dict(options or {}))
        except ValidationError as e:
            raise ConfigError(f"perceiver {cls.name}: {format_validation_error(e)}") from None

    def model_name(self) -> str | None:
        """The model named in the options (their ``model`` field), if any."""
        name = getattr(self.options, "model", None)
        return name if isinstance(name, str) else None

    def resolve_model(self) -> ResolvedModel | None:
        """Where the options' model comes from (`kernel.models.resolve`); never downloads."""
        name = self.model_name()
        return resolve(name) if name is not None else None

    def availability(self) -> Availability:
        """Can this perceiver run here? Default: its packages are importable and the model named
        in its options (if any) is here or is a hub id its library can fetch."""
        missing = [p for p in self.packages if importlib.util.find_spec(p) is None]
        if missing:
            return Availability(False, f"missing Python package(s): {', '.join(missing)}")
        resolved = self.resolve_model()
        if resolved is not None and not resolved.available:
            return Availability(False, resolved.reason)
        return Availability(True)

    def can_run_here(self) -> Availability:
        """`availability`, and also whether the model's weights can really be had now: on disk,
        or fetched on first use from a host that answers (`vidchat.kernel.models.obtainable`).
        `availability` alone accepts a hub id it could fetch somewhere; this is what
        ``vidchat perceivers`` reports, agreeing with ``vidchat models``."""
        avail = self.availability()
        name = self.model_name()
        if not avail.ok or name is None:
            return avail
        from vidchat.kernel.models import locate, obtainable

        if locate(name).available:
            return avail
        return Availability(*obtainable(name))

    def model_identity(self) -> str | None:
        """Identity of the model weights (part of the cache key); None when there is no model."""
        resolved = self.resolve_model()
        return resolved.identity if resolved is not None else None

    def load(self) -> None:  # noqa: B027 — optional hook: perceivers without a model skip it
        """Load models once. Called by the pipeline before the first `perceive`; keep them."""

    def ensure_loaded(self) -> None:
        if not self._loaded:
            self.load()
            self._loaded = True

    @abstractmethod
    def perceive(self, media: Media) -> Iterable[Observation]:
        """Turn the media into observations; raise `PerceiverSkipped` if there is nothing to do."""


def format_validation_error(e: ValidationError) -> str:
    """One line per problem: where, what was expected, what arrived."""
    parts = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "(top)"
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown key {loc!r}")
        else:
            parts.append(f"{loc}: {err['msg']} (got {err.get('input')!r})")
    return "; ".join(parts)
