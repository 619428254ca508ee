"""Retrieval over a long record's timeline: which windows of the video a question is about.

When the rendered record does not fit its token budget, the chat sends the LLM the video facts,
the object list and only the timeline windows relevant to the question. Relevance is:

1. **time expressions** in the question (``12:30``, ``1:02:03``, ``from 10:00 to 12:00``,
   ``at 5 minutes``, ``minute 12``, ``at the end``) pull the windows covering those times, first;
2. **semantic similarity**: the top-k windows by cosine similarity between the question and the
   window's text, embedded with all-MiniLM-L6-v2 (shipped as ``embed:all-minilm-l6-v2``).

A window's text can be longer than the embedding model reads (256 word pieces), so each window is
embedded in pieces of a few lines and scores as its best piece. Embeddings are cached on disk per
record, keyed by the record's hash, the model's identity and the pieces' text, so a record is
embedded once across sessions.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import math
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from vidchat.kernel.errors import ConfigError
from vidchat.kernel.models import cache_dir, resolve
from vidchat.kernel.record import atomic_write_bytes
from vidchat.kernel.timecode import parse_timecode, timecode_or_none

if TYPE_CHECKING:
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from vidchat.kernel.record import VideoContext

__all__ = [
    "DEFAULT_EMBED_MODEL",
    "Embedder",
    "Hit",
    "RetrievalIndex",
    "SentenceEmbedder",
    "TimeSpan",
    "Window",
    "get_embedder",
    "parse_time_mentions",
    "recall_at_k",
    "record_hash",
]

DEFAULT_EMBED_MODEL = "embed:all-minilm-l6-v2"

# Bump when the chunking or the cache layout changes: old cache files are then never read.
_INDEX_VERSION = "1"
# About 150 word pieces: well inside MiniLM's 256, so a piece is never silently truncated.
_PIECE_CHARS = 600
_MAX_LINE_CHARS = 600
# Similarity lost per e-fold of windows sharing a piece (0.02: a line in 20 windows loses 0.06).
_COMMONNESS = 0.02


class Window(Protocol):
    """A timeline window as `vidchat.text.render` produces it (`TimelineWindow`)."""

    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...
    @property
    def text(self) -> str: ...


class Embedder(Protocol):
    """Turns texts into L2-normalized vectors; `identity` changes when the weights change."""

    # Read-only: an embedder may compute it lazily (a cached property), and nothing sets it.
    @property
    def identity(self) -> str: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class TimeSpan:
    """A time the question names: a point (start == end) or a range, in seconds."""

    start: float
    end: float
    text: str  # as written in the question


@dataclass(frozen=True)
class Hit:
    """One retrieved window: its index in the window list, its span, why and how well."""

    index: int
    start: float
    end: float
    score: float
    reason: Literal["time", "semantic", "neighbor"]


# ---------------------------------------------------------------------------------------------
# Time expressions

_NUM = r"\d+(?:\.\d+)?"
_CLOCK = r"(?<![\d:.])(?:\d{1,2}:)?\d{1,3}:\d{2}(?:\.\d+)?(?![\d:])"
_H = rf"(?:{_NUM})\s*(?:hours?|hrs?|h)\b"
_M = rf"(?:{_NUM})\s*(?:minutes?|mins?|m)\b"
_S = rf"(?:{_NUM})\s*(?:seconds?|secs?|s)\b"
_AND = r"(?:\s*,?\s*(?:and\s+)?)"
# One or more unit quantities in decreasing order ("1 hour 5 minutes", "12 min 30 s", "90 s").
_DURATION = rf"(?<![\w:.])(?:{_H}(?:{_AND}{_M})?(?:{_AND}{_S})?|{_M}(?:{_AND}{_S})?|{_S})"
_POINT = rf"(?:{_CLOCK}|{_DURATION})"
_RANGE_RE = re.compile(
    rf"(?:between|from)?\s*(?P<a>{_POINT})\s*(?:-|–|—|to|and|until|till)\s*(?P<b>{_POINT})",
    re.IGNORECASE,
)
_POINT_RE = re.compile(_POINT, re.IGNORECASE)
_MINUTE_N_RE = re.compile(r"\bminute\s+(\d+)\b", re.IGNORECASE)
_UNIT_RE = re.compile(rf"({_NUM})\s*(hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)\b", re.I)
_START_RE = re.compile(r"\b(?:at|in|near)\s+the\s+(?:very\s+)?(?:start|beginning|opening)\b", re.I)
_END_RE = re.compile(r"\b(?:at|in|near)\s+the\s+(?:very\s+)?end\b", re.I)


def _point_seconds(text: str) -> float:
    """Seconds of a clock time (checked by `_valid_clock` first) or a spoken duration."""
    text = text.strip()
    if ":" in text:
        return parse_timecode(text)
    total = 0.0
    for value, unit in _UNIT_RE.findall(text):
        scale = 3600 if unit[0].lower() == "h" else 60 if unit[0].lower() == "m" else 1
        total += float(value) * scale
    return total


def _valid_clock(text: str) -> bool:
    # "12:75" is not a time; the first field of h:mm:ss or mm:ss is free.
    return timecode_or_none(text) is not None


def parse_time_mentions(question: str, duration: float | None = None) -> list[TimeSpan]:
    """Times and time ranges a question names, in the order they appear.

    ``duration`` lets "at the end" resolve; without it only "at the start" does.
    """
    spans: list[tuple[int, TimeSpan]] = []
    taken: list[tuple[int, int]] = []

    def free(a: int, b: int) -> bool:
        return all(b <= s or a >= e for s, e in taken)

    for m in _RANGE_RE.finditer(question):
        a, b = m.group("a"), m.group("b")
        if (":" in a and not _valid_clock(a)) or (":" in b and not _valid_clock(b)):
            continue
        ta, tb = _point_seconds(a), _point_seconds(b)
        if tb < ta:
            continue
        spans.append((m.start(), TimeSpan(ta, tb, m.group(0).strip())))
        taken.append(m.span())
    for m in _MINUTE_N_RE.finditer(question):
        if free(*m.span()):
            n = int(m.group(1))
            spans.append((m.start(), TimeSpan(n * 60.0, n * 60.0 + 60.0, m.group(0))))
            taken.append(m.span())
    for m in _POINT_RE.finditer(question):
        if not free(*m.span()) or (":" in m.group(0) and not _valid_clock(m.group(0))):
            continue
        t = _point_seconds(m.group(0))
        spans.append((m.start(), TimeSpan(t, t, m.group(0).strip())))
        taken.append(m.span())
    for m in _START_RE.finditer(question):
        spans.append((m.start(), TimeSpan(0.0, 0.0, m.group(0))))
    if duration is not None:
        for m in _END_RE.finditer(question):
            spans.append((m.start(), TimeSpan(duration, duration, m.group(0))))
    return [s for _, s in sorted(spans, key=lambda p: p[0])]


# ---------------------------------------------------------------------------------------------
# Embeddings


@contextlib.contextmanager
def _quiet_weight_loading() -> Iterator[None]:
    """Hide transformers' "Loading weights" progress bar while the embedder loads: it is written
    to stderr in the middle of `vidchat ask`/`chat` output and says nothing a user needs. Only
    the progress bars are switched off (and back on if they were on); warnings and errors are
    logged as before."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - sentence-transformers requires transformers
        yield
        return
    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


class SentenceEmbedder:
    """A sentence-transformers model loaded offline from a local path or a shipped name."""

    def __init__(self, model: str = DEFAULT_EMBED_MODEL, batch_size: int = 64) -> None:
        self.name = model
        self.batch_size = batch_size
        self._resolved = resolve(model)
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()

    @functools.cached_property
    def identity(self) -> str:
        return self._resolved.identity

    def _load(self) -> SentenceTransformer:
        with self._lock:
            if self._model is None:
                r = self._resolved
                # A local folder (shipped or a path), or a hub id already in the local HF cache:
                # `local_files_only` means nothing is ever downloaded from here.
                path = str(r.require()) if r.origin != "hub" else r.name
                # transformers imports torchvision when present; the CPU wheel needs its nms op.
                from vidchat.kernel.compat import ensure_torchvision

                ensure_torchvision()
                from sentence_transformers import SentenceTransformer

                try:
                    with _quiet_weight_loading():
                        self._model = SentenceTransformer(path, device="cpu", local_files_only=True)
                except OSError as e:
                    raise ConfigError(
                        f"embedding model {self.name} could not be loaded from {path} "
                        f"(offline: local files only): {e}"
                    ) from None
            return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        model = self._load()
        vectors = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return np.asarray(vectors, dtype=np.float32)


_embedders: dict[str, SentenceEmbedder] = {}
_embedders_lock = threading.Lock()


def get_embedder(model: str = DEFAULT_EMBED_MODEL) -> SentenceEmbedder:
    """The process-wide embedder for `model` (loaded once, reused by every session)."""
    with _embedders_lock:
        if model not in _embedders:
            _embedders[model] = SentenceEmbedder(model)
        return _embedders[model]


def record_hash(ctx: VideoContext) -> str:
    """A hash of the record's content (any change to the record changes it)."""
    return hashlib.sha256(ctx.to_json(indent=None).encode("utf-8")).hexdigest()


_WINDOW_HEAD_RE = re.compile(r"^\s*\[[\d:]+\s*[–-]\s*[\d:]+\]\s*$")
_LINE_TIME_RE = re.compile(r"^\s*\d{1,2}(?::\d{2}){1,2}(?:\s*[–-]\s*\d{1,2}(?::\d{2}){1,2})?\s+")


def _content(line: str) -> str:
    """A timeline line as the embedder should read it: without its time stamp, and nothing
    for lines that carry no meaning of their own (the window's span, who is visible)."""
    if _WINDOW_HEAD_RE.match(line) or line.strip().startswith("visible:"):
        return ""
    return _LINE_TIME_RE.sub("", line).strip()


def _pieces(text: str, limit: int = _PIECE_CHARS) -> list[str]:
    """Split a window's text into runs of whole lines of at most `limit` characters (a single
    line longer than the embedder reads is cut into several pieces rather than truncated)."""
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for line in (_content(ln) for ln in text.splitlines()):
        if not line:
            continue
        while len(line) > _MAX_LINE_CHARS:
            pieces.append(line[:_MAX_LINE_CHARS])
            line = line[_MAX_LINE_CHARS:]
        if current and size + len(line) + 1 > limit:
            pieces.append("\n".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        pieces.append("\n".join(current))
    return pieces


# ---------------------------------------------------------------------------------------------
# The index


class RetrievalIndex:
    """Time-expression and embedding search over a record's timeline windows."""

    def __init__(
        self,
        windows: Sequence[Window],
        embedder: Embedder | None = None,
        *,
        record_hash: str | None = None,
        cache: bool = True,
        duration: float | None = None,
        piece_chars: int = _PIECE_CHARS,
        commonness: float = _COMMONNESS,
    ) -> None:
        if not windows:
            raise ValueError("a retrieval index needs at least one timeline window, got none")
        self.windows = list(windows)
        self.embedder: Embedder = embedder or get_embedder()
        self.duration = duration if duration is not None else max(w.end for w in self.windows)
        # Identical pieces (a line repeated all through the video) are embedded once; how many
        # windows share a piece lowers its weight (see `commonness`).
        texts: dict[str, int] = {}
        piece_text: list[int] = []
        owner: list[int] = []
        for i, w in enumerate(self.windows):
            for piece in dict.fromkeys(_pieces(w.text, piece_chars)):
                piece_text.append(texts.setdefault(piece, len(texts)))
                owner.append(i)
        self._texts = list(texts)
        self._piece_text = piece_text
        self._owner = owner
        counts = [0] * len(self._texts)
        for t in piece_text:
            counts[t] += 1
        self._counts = counts
        self.commonness = commonness
        self._record_hash = record_hash
        self._cache = cache
        self._vectors: np.ndarray | None = None
        self.cache_path: Path | None = self._cache_path() if cache else None
        self.loaded_from_cache = False

    # -- embeddings ------------------------------------------------------------------------

    def _cache_path(self) -> Path:
        content = hashlib.sha256("\x00".join(self._texts).encode("utf-8")).hexdigest()
        key = json.dumps([_INDEX_VERSION, self._record_hash, self.embedder.identity, content])
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
        return cache_dir() / "retrieval" / f"{digest}.npz"

    @property
    def vectors(self) -> np.ndarray:
        """Embeddings of the distinct pieces, (n_texts, dim), computed once or read from the
        on-disk cache."""
        if self._vectors is None:
            self._vectors = self._load_or_embed()
        return self._vectors

    def _load_or_embed(self) -> np.ndarray:
        import numpy as np

        path = self.cache_path
        if path is not None and path.is_file():
            try:
                with np.load(path) as data:
                    vectors = data["vectors"]
                if vectors.shape[0] == len(self._texts):
                    self.loaded_from_cache = True
                    return vectors.astype(np.float32, copy=False)
            except (OSError, ValueError, KeyError):
                pass  # a damaged cache file is rebuilt below
        vectors = self.embedder.encode(self._texts)
        if vectors.shape[0] != len(self._texts):
            raise ValueError(
                f"embedder returned {vectors.shape[0]} vectors for {len(self._texts)} texts"
            )
        if path is not None:
            buf = io.BytesIO()
            np.savez(buf, vectors=vectors)
            atomic_write_bytes(path, buf.getvalue())
        return vectors

    # -- search -----------------------------------------------------------------------------

    def window_at(self, t: float) -> int:
        """Index of the window covering time `t` (the nearest one when none covers it)."""
        for i, w in enumerate(self.windows):
            if w.start <= t < w.end:
                return i
        return min(
            range(len(self.windows)),
            key=lambda i: min(abs(self.windows[i].start - t), abs(self.windows[i].end - t)),
        )

    def time_hits(self, question: str, max_windows: int = 6) -> list[Hit]:
        """Windows covering the times the question names, in the order it names them."""
        hits: list[Hit] = []
        seen: set[int] = set()
        for span in parse_time_mentions(question, self.duration):
            if span.end > span.start:
                idx = [
                    i
                    for i, w in enumerate(self.windows)
                    if w.start < span.end and w.end > span.start
                ][:max_windows]
            else:
                idx = [self.window_at(span.start)]
            for i in idx:
                if i not in seen:
                    seen.add(i)
                    w = self.windows[i]
                    hits.append(Hit(i, w.start, w.end, 1.0, "time"))
        return hits

    def semantic_scores(self, question: str) -> np.ndarray:
        """Similarity of the question to each window, (n_windows,): the cosine similarity to its
        best piece, less a small penalty for pieces many windows share; -1 for a window with
        nothing to embed."""
        import numpy as np

        scores = np.full(len(self.windows), -1.0, dtype=np.float32)
        if not self._texts:
            return scores
        q = self.embedder.encode([question])[0]
        text_scores = self.vectors @ q
        # A line found in many windows says little about *which* window a question means (the
        # same tag or caption at every keyframe): like IDF, its similarity counts for a bit less.
        text_scores = text_scores - self.commonness * np.log(np.asarray(self._counts))
        np.maximum.at(scores, np.asarray(self._owner), text_scores[np.asarray(self._piece_text)])
        return scores

    def search(self, question: str, k: int = 3) -> list[Hit]:
        """Time-matched windows first, then the top-k windows by similarity (no repeats)."""
        hits = self.time_hits(question)
        seen = {h.index for h in hits}
        scores = self.semantic_scores(question)
        for i in scores.argsort()[::-1]:
            if len([h for h in hits if h.reason == "semantic"]) >= k:
                break
            if int(i) in seen:
                continue
            w = self.windows[int(i)]
            hits.append(Hit(int(i), w.start, w.end, float(scores[i]), "semantic"))
        return hits

    def select(
        self,
        question: str,
        budget_tokens: int,
        count_tokens: Callable[[str], int],
        k: int = 4,
        neighbors: int = 1,
    ) -> list[Hit]:
        """The hits of `search` that fit in `budget_tokens`, returned in time order.

        Hits are taken best first; one that does not fit is skipped and smaller ones after it
        still get their chance. Budget left over then goes to the windows just before and after
        each hit (up to `neighbors` on each side, nearest first), so the model also sees what led
        to a moment and what followed it.
        """
        chosen: dict[int, Hit] = {}
        used = 0

        def take(hit: Hit) -> None:
            nonlocal used
            cost = count_tokens(self.windows[hit.index].text) + 1
            if hit.index not in chosen and used + cost <= budget_tokens:
                chosen[hit.index] = hit
                used += cost

        hits = self.search(question, k=k)
        for hit in hits:
            take(hit)
        for d in range(1, neighbors + 1):
            for hit in [h for h in hits if h.index in chosen]:
                for j in (hit.index - d, hit.index + d):
                    if 0 <= j < len(self.windows):
                        w = self.windows[j]
                        take(Hit(j, w.start, w.end, hit.score, "neighbor"))
        return sorted(chosen.values(), key=lambda h: h.start)


def recall_at_k(index: RetrievalIndex, questions: Sequence[tuple[str, float]], k: int = 3) -> float:
    """Share of questions whose known answer time lies in one of the top-k retrieved windows.

    Each question comes with the time (seconds) of the fact that answers it.
    """
    if not questions:
        return math.nan
    found = 0
    for question, t in questions:
        target = index.window_at(t)
        if target in [h.index for h in index.search(question, k=k)[:k]]:
            found += 1
    return found / len(questions)
