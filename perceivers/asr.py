"""Speech recognition: the video's audio track → timestamped `SpeechSegment`s (Whisper).

Two backends run the same Whisper models:

- ``faster-whisper`` (default): CTranslate2, int8 on CPU. Loads the shipped ``whisper:tiny.en``
  and ``whisper:base`` folders, any local CTranslate2 folder, or a size name ("small") that it
  downloads from the Hugging Face hub where the network allows.
- ``openai-whisper``: the reference PyTorch implementation. Loads a local ``.pt`` checkpoint or an
  official name from ``whisper.available_models()`` (downloaded where the network allows).

With ``vad`` on, silero VAD (shipped inside faster-whisper's wheel, used for both backends) keeps
Whisper off silence, where it hallucinates ("You", "Thank you."), and pulls each segment's start
and end in to where speech really begins and ends: Whisper's own timestamps on a segment that
follows silence run about 0.3 s early.

Whisper's outputs (faster-whisper `Segment`s, openai-whisper dicts) are converted at this
module's boundary into `SpeechSegment`s whose times are seconds of the video (the audio track
starts at 0).
"""

from __future__ import annotations

import ctypes
import importlib.metadata as md
import importlib.util
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from vidchat.kernel.errors import ConfigError, InputError, PerceiverSkipped, PerceiverUnavailable
from vidchat.kernel.models import ResolvedModel, resolve
from vidchat.kernel.record import SpeechSegment, Word
from vidchat.perceivers.base import Availability, Input, Media, Perceiver, PerceiverOptions

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000  # what Media.audio() delivers and what Whisper expects

Backend = Literal["faster-whisper", "openai-whisper"]

# A segment Whisper itself was unsure was speech is still kept when its text is this likely:
# whisper's own skip rule does the same with its log-probability threshold, but it applies it per
# 30 s window, which lets short hallucinations on silence through (" You", no-speech 0.94).
_KEEP_CONFIDENCE = 0.5

# Tight speech regions for snapping boundaries: no padding (the filter pads by 400 ms so Whisper
# hears the onsets), and short pauses already split regions so each phrase's onset is found.
_SNAP_VAD = {"speech_pad_ms": 0, "min_silence_duration_ms": 100}


class ASROptions(PerceiverOptions):
    """Options of the `asr` perceiver."""

    backend: Backend = Field(
        "faster-whisper", description="faster-whisper (CTranslate2) or openai-whisper (PyTorch)"
    )
    model: str = Field(
        "whisper:tiny.en",
        description=(
            "a shipped name (whisper:tiny.en, whisper:base), a local CTranslate2 folder "
            "(faster-whisper) or .pt checkpoint (openai-whisper), or a library model name that "
            "the library downloads where the network allows"
        ),
    )
    language: str | None = Field(
        None, description="language code such as 'en'; None detects it (English-only models: en)"
    )
    word_timestamps: bool = Field(True, description="also time every word")
    vad: bool = Field(True, description="skip non-speech with silero VAD and snap boundaries")
    beam_size: int = Field(5, ge=1, description="beam width of the first decoding pass")
    compute_type: str = Field(
        "int8", description="faster-whisper quantization (int8, float16, float32, …)"
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = Field(0, ge=0, description="faster-whisper CPU threads; 0 = library default")
    no_speech_threshold: float = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="drop segments whose no-speech probability is above this, unless confident",
    )


@dataclass(frozen=True)
class RawWord:
    """A word as either backend reports it (text keeps Whisper's leading space)."""

    start: float
    end: float
    text: str
    probability: float | None


@dataclass(frozen=True)
class RawSegment:
    """One Whisper segment in backend-neutral form, before cleaning."""

    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    words: tuple[RawWord, ...] | None


class ASRPerceiver(Perceiver):
    """Transcribes the audio track with Whisper into timestamped speech segments."""

    name: ClassVar[str] = "asr"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "speech → timestamped text (Whisper; faster-whisper by default)"
    Options: ClassVar[type[PerceiverOptions]] = ASROptions
    inputs: ClassVar[frozenset[Input]] = frozenset({"audio"})

    options: ASROptions

    def __init__(self, options: ASROptions | Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self._resolved: ResolvedModel | None = None
        self._model: Any = None  # faster_whisper.WhisperModel or whisper.model.Whisper
        self._multilingual = True
        self._torch_device = "cpu"

    # -- model -------------------------------------------------------------------------------

    def resolved_model(self) -> ResolvedModel:
        """The model named in the options, resolved once (shipped parts are assembled here)."""
        if self._resolved is None:
            self._resolved = resolve(self.options.model)
        return self._resolved

    def model_identity(self) -> str:
        """Backend plus the weights' identity: either changing makes a different transcript."""
        return f"{self.options.backend}:{self.resolved_model().identity}"

    def availability(self) -> Availability:
        """Is the backend's package here, and the model (or at least a way to download it)?"""
        o = self.options
        if o.backend == "faster-whisper":
            if importlib.util.find_spec("faster_whisper") is None:
                return Availability(
                    False, "missing Python package faster_whisper: pip install faster-whisper"
                )
        else:
            # `pip install whisper` is an unrelated package that also imports as `whisper`.
            if importlib.util.find_spec("whisper") is None or not _has_dist("openai-whisper"):
                return Availability(
                    False, "backend openai-whisper needs the package: pip install openai-whisper"
                )
            if o.vad and importlib.util.find_spec("faster_whisper") is None:
                return Availability(
                    False,
                    "vad uses the silero VAD inside faster-whisper: pip install faster-whisper, "
                    "or set vad: false",
                )
        try:
            rm = self.resolved_model()
        except ConfigError as e:
            return Availability(False, str(e))
        if not rm.available:
            return Availability(False, rm.reason)
        problem = _format_problem(o.backend, rm)
        if problem:
            return Availability(False, problem)
        if rm.origin == "hub":
            return Availability(True, f"downloads {rm.name} on first use (needs network)")
        return Availability(True)

    def load(self) -> None:
        """Load the Whisper model once; it is kept for every later `perceive` (batch reuse)."""
        if self._model is not None:
            return
        avail = self.availability()
        if not avail.ok:
            rm = self.resolved_model()
            # A model file of the wrong kind is a mistake in the options, not a missing install.
            problem = _format_problem(self.options.backend, rm) if rm.available else None
            error = ConfigError if problem else PerceiverUnavailable
            raise error(f"perceiver asr: {avail.reason}")
        rm = self.resolved_model()
        if self.options.backend == "faster-whisper":
            self._load_faster_whisper(rm)
        else:
            self._load_openai_whisper(rm)
        lang = self.options.language
        if not self._multilingual and lang not in (None, "en"):
            self._model = None
            raise ConfigError(
                f"perceiver asr: model {rm.name} is English-only, got language={lang!r} "
                "(use language: en or null, or a multilingual model such as whisper:base)"
            )

    def _load_faster_whisper(self, rm: ResolvedModel) -> None:
        from faster_whisper import WhisperModel

        o = self.options
        source = str(rm.path) if rm.path is not None else rm.name
        try:
            self._model = WhisperModel(
                source,
                device=ct2_device(o.device),
                compute_type=o.compute_type,
                cpu_threads=o.threads,
            )
        except Exception as e:
            raise _load_error(rm, e) from e
        self._multilingual = bool(self._model.model.is_multilingual)

    def _load_openai_whisper(self, rm: ResolvedModel) -> None:
        import torch
        import whisper

        o = self.options
        if rm.path is None and rm.name not in whisper.available_models():
            raise ConfigError(
                f"perceiver asr: openai-whisper has no model {rm.name!r}; expected a .pt "
                f"checkpoint path or one of {', '.join(whisper.available_models())}"
            )
        device = o.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        source = str(rm.path) if rm.path is not None else rm.name
        try:
            self._model = whisper.load_model(source, device=device)
        except Exception as e:
            raise _load_error(rm, e) from e
        self._torch_device = device
        self._multilingual = bool(self._model.is_multilingual)

    # -- perception --------------------------------------------------------------------------

    def perceive(self, media: Media) -> list[SpeechSegment]:
        """Transcribe `media.audio()`; PerceiverSkipped when the video has no audio track."""
        raw_audio = media.audio()
        if raw_audio is None:
            raise PerceiverSkipped("video has no audio track")
        audio = _as_mono_float32(raw_audio)
        if audio.size == 0:
            raise PerceiverSkipped("the audio track is empty (0 samples)")
        self.ensure_loaded()
        duration = audio.size / SAMPLE_RATE
        o = self.options

        regions: list[tuple[float, float]] = []
        if o.vad:
            regions = speech_regions(audio, **_SNAP_VAD)
            if not regions:
                return []  # no speech anywhere: nothing for Whisper to hallucinate on
        if o.backend == "faster-whisper":
            raw, language = self._transcribe_faster_whisper(audio)
        else:
            raw, language = self._transcribe_openai_whisper(audio)
        return to_speech_segments(
            raw,
            language=language,
            duration=duration,
            regions=regions,
            no_speech_threshold=o.no_speech_threshold,
        )

    def _transcribe_faster_whisper(self, audio: np.ndarray) -> tuple[list[RawSegment], str | None]:
        o = self.options
        segments, info = self._model.transcribe(
            audio,
            language=o.language,
            beam_size=o.beam_size,
            word_timestamps=o.word_timestamps,
            vad_filter=o.vad,
        )
        # `segments` is a lazy generator: the decoding happens while it is consumed here.
        raw = [from_faster_whisper(s) for s in segments]
        return raw, info.language

    def _transcribe_openai_whisper(self, audio: np.ndarray) -> tuple[list[RawSegment], str | None]:
        import whisper

        o = self.options
        kwargs: dict[str, Any] = {}
        if o.vad:
            # The same padded regions faster-whisper's vad_filter feeds its model.
            clips = speech_regions(audio)
            if not clips:
                return [], o.language
            kwargs["clip_timestamps"] = [t for clip in clips for t in clip]
        result = whisper.transcribe(
            self._model,
            audio,
            verbose=None,
            language=o.language,
            beam_size=o.beam_size,
            word_timestamps=o.word_timestamps,
            fp16=self._torch_device == "cuda",
            **kwargs,
        )
        raw = [from_openai_whisper(s) for s in result.get("segments", [])]
        return raw, result.get("language") or o.language


# -- boundary conversions (pure functions, unit-tested without a model) ----------------------


def from_faster_whisper(segment: Any) -> RawSegment:
    """A faster_whisper.transcribe.Segment → RawSegment."""
    words = None
    if segment.words is not None:
        words = tuple(
            RawWord(float(w.start), float(w.end), w.word, float(w.probability))
            for w in segment.words
        )
    return RawSegment(
        float(segment.start),
        float(segment.end),
        segment.text,
        float(segment.avg_logprob),
        float(segment.no_speech_prob),
        words,
    )


def from_openai_whisper(segment: dict[str, Any]) -> RawSegment:
    """One entry of openai-whisper's ``transcribe(...)["segments"]`` → RawSegment."""
    words = None
    if "words" in segment:
        words = tuple(
            RawWord(float(w["start"]), float(w["end"]), w["word"], _opt_float(w.get("probability")))
            for w in segment["words"]
        )
    return RawSegment(
        float(segment["start"]),
        float(segment["end"]),
        segment["text"],
        float(segment["avg_logprob"]),
        float(segment["no_speech_prob"]),
        words,
    )


def to_speech_segments(
    raw: Iterable[RawSegment],
    *,
    language: str | None,
    duration: float,
    regions: Sequence[tuple[float, float]] = (),
    no_speech_threshold: float = 0.6,
) -> list[SpeechSegment]:
    """Clean Whisper segments into the record's `SpeechSegment`s.

    Drops segments with nothing spoken in them (empty, or only punctuation and symbols: Whisper
    writes "." or "♪" on silence and music) and likely non-speech (no-speech probability above
    the threshold while the text's confidence is below 0.5), snaps boundaries to `regions`
    (speech found by VAD), clamps every time into ``[0, duration]`` and sorts by start. Words
    with nothing spoken in them are dropped the same way.
    """
    out: list[SpeechSegment] = []
    for seg in raw:
        text = seg.text.strip()
        confidence = min(1.0, max(0.0, math.exp(seg.avg_logprob)))
        if not has_spoken_text(text):
            log.debug("asr: dropped %r (no letters or digits)", text)
            continue
        if seg.no_speech_prob > no_speech_threshold and confidence < _KEEP_CONFIDENCE:
            log.debug("asr: dropped %r (no_speech %.2f)", text, seg.no_speech_prob)
            continue
        if regions:
            seg = snap_to_speech(seg, regions)
        start = _clamp(seg.start, 0.0, duration)
        end = _clamp(seg.end, start, duration)
        words = None
        if seg.words is not None:
            words = []
            for w in seg.words:
                wt = w.text.strip()
                if not has_spoken_text(wt):
                    continue
                ws = _clamp(w.start, start, end)
                words.append(Word(start=ws, end=_clamp(w.end, ws, end), text=wt,
                                  probability=_opt_prob(w.probability)))  # fmt: skip
        out.append(
            SpeechSegment(
                start=start,
                end=end,
                text=text,
                language=language,
                confidence=confidence,
                words=words,
            )
        )
    out.sort(key=lambda s: (s.start, s.end))
    return out


def has_spoken_text(text: str) -> bool:
    """Does `text` hold at least one letter or digit (in any script)?

    Punctuation, symbols and whitespace alone ("." "…" "♪" "-") are what Whisper emits on
    silence, noise and music, never a transcript of speech.
    """
    return any(ch.isalnum() for ch in text)


def snap_to_speech(seg: RawSegment, regions: Sequence[tuple[float, float]]) -> RawSegment:
    """Move a segment boundary that lies in silence to the nearest VAD speech edge inside it.

    Only a start that falls outside every region moves, and only forward to a region onset
    before the first word ends (so it never cuts a word off); an end likewise moves back to a
    region offset after the last word starts. Words are kept inside the new bounds.
    """
    start, end = seg.start, seg.end
    words = seg.words
    first_end = words[0].end if words else end
    last_start = words[-1].start if words else start
    if not _inside(start, regions):
        onsets = [s for s, _ in regions if start < s < min(first_end, end)]
        if onsets:
            start = onsets[0]
    if not _inside(end, regions):
        offsets = [e for _, e in regions if max(last_start, start) < e < end]
        if offsets:
            end = offsets[-1]
    if (start, end) == (seg.start, seg.end):
        return seg
    new_words = None
    if words is not None:
        new_words = tuple(
            RawWord(_clamp(w.start, start, end), _clamp(w.end, start, end), w.text, w.probability)
            for w in words
        )
    return RawSegment(start, end, seg.text, seg.avg_logprob, seg.no_speech_prob, new_words)


def speech_regions(audio: np.ndarray, **vad_options: Any) -> list[tuple[float, float]]:
    """Speech (start, end) seconds in 16 kHz audio by silero VAD (faster-whisper's copy).

    `vad_options` are fields of ``faster_whisper.vad.VadOptions`` (its defaults pad each region by
    400 ms and merge across pauses shorter than 2 s, as faster-whisper's own vad_filter does).
    """
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    chunks = get_speech_timestamps(audio, VadOptions(**vad_options), sampling_rate=SAMPLE_RATE)
    return [(c["start"] / SAMPLE_RATE, c["end"] / SAMPLE_RATE) for c in chunks]


# -- helpers ---------------------------------------------------------------------------------


def ct2_device(requested: Literal["auto", "cpu", "cuda"]) -> Literal["cpu", "cuda"]:
    """The device faster-whisper should use; "auto" takes the GPU only when it can run there.

    CTranslate2 sees a GPU through the driver but loads cuBLAS 12 only at the first decode, so
    its own "auto" picks a GPU that then fails mid-video on a machine without the CUDA
    libraries. An explicit "cuda" is passed through, so that failure stays visible.
    """
    if requested != "auto":
        return requested
    import ctranslate2

    if ctranslate2.get_cuda_device_count() == 0:
        return "cpu"
    try:
        ctypes.CDLL("libcublas.so.12")
    except OSError:
        log.warning("asr: a GPU is present but libcublas.so.12 is not loadable; using the CPU")
        return "cpu"
    return "cuda"


def _as_mono_float32(audio: np.ndarray) -> np.ndarray:
    a = np.asarray(audio)
    if a.ndim == 2 and 1 in a.shape:
        a = a.reshape(-1)
    if a.ndim != 1:
        raise InputError(
            f"perceiver asr: expected mono 16 kHz audio of shape (samples,), got shape {a.shape}"
        )
    if not np.issubdtype(a.dtype, np.floating):
        raise InputError(
            f"perceiver asr: expected float audio in [-1, 1] (float32), got dtype {a.dtype}"
        )
    return np.ascontiguousarray(a, dtype=np.float32)


def _format_problem(backend: Backend, rm: ResolvedModel) -> str | None:
    """Why this backend cannot read this model's files, or None when it can (or cannot tell)."""
    if rm.path is None:
        return None
    if backend == "faster-whisper":
        if not (rm.path.is_dir() and (rm.path / "model.bin").is_file()):
            return (
                f"backend faster-whisper needs a CTranslate2 model folder (with model.bin), "
                f"got {rm.path}"
            )
    elif not rm.path.is_file():
        kind = "a CTranslate2 folder" if (rm.path / "model.bin").is_file() else "a folder"
        return (
            f"backend openai-whisper needs a .pt checkpoint file, got {kind}: {rm.path} "
            f"(use backend faster-whisper for {rm.name})"
        )
    return None


def _load_error(rm: ResolvedModel, e: Exception) -> Exception:
    detail = f"{type(e).__name__}: {e}".strip()
    if rm.origin == "hub":
        return PerceiverUnavailable(
            f"perceiver asr: could not download model {rm.name!r} ({detail}); without network use "
            "a shipped model (whisper:tiny.en, whisper:base) or a local path"
        )
    return ConfigError(f"perceiver asr: could not load model {rm.name} from {rm.path}: {detail}")


def _has_dist(name: str) -> bool:
    try:
        md.distribution(name)
    except md.PackageNotFoundError:
        return False
    return True


def _inside(t: float, regions: Sequence[tuple[float, float]]) -> bool:
    return any(s <= t <= e for s, e in regions)


def _clamp(x: float, lo: float, hi: float) -> float:
    return float(min(max(x, lo), hi))


def _opt_float(x: Any) -> float | None:
    return None if x is None else float(x)


def _opt_prob(x: float | None) -> float | None:
    return None if x is None else _clamp(x, 0.0, 1.0)


__all__ = [
    "ASROptions",
    "ASRPerceiver",
    "RawSegment",
    "RawWord",
    "from_faster_whisper",
    "from_openai_whisper",
    "has_spoken_text",
    "snap_to_speech",
    "speech_regions",
    "to_speech_segments",
]
