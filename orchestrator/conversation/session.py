"""Conversation about one video: `ChatSession` answers questions from the video's record.

The LLM sees, in order:

1. one system message: the system prompt (``prompts/chat.yaml:system``, the same for every
   video), then the record inside a ``<record>…</record>`` data block (escaped so nothing from
   the video can close it), then a one-line-per-turn summary of older turns when the history has
   outgrown its budget;
2. the most recent turns, verbatim (user question, assistant answer);
3. the new question.

Token budget (all counts with the LLM's own tokenizer when it has one)::

    total     = budget_tokens, else config.context_tokens - config.max_tokens
    available = total - system prompt - question - per-message overhead
    record    = what the full rendering needs, at most record_share * available
                (and at most the profile's render.budget_tokens)
    history   = available - record

When the full rendering does not fit but the renderer can fit it by widening windows and
dropping only the "visible" lines (every observation kept), that compacted record is used. When
it is far over (long videos), the record block holds the video facts, the whole object list and
the timeline windows retrieved for this question (`vidchat.text.retrieval`). History
shrinks from the oldest end: whole turns first become one-line summaries, then are dropped; the
record's header and object list are never dropped.

Usable from a notebook::

    from vidchat.conversation.session import ChatSession
    chat = ChatSession(VideoContext.load("record.json"))
    print(chat.ask("Who enters first?").text)
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field
from vidchat.kernel.errors import ConfigError, InputError
from vidchat.kernel.llm_config import DEFAULT_LOCAL_MODEL, LLMConfig
from vidchat.kernel.record import VideoContext

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import BaseMessage
    from vidchat.pipeline.profiles import Profile
    from vidchat.text.render import Rendered
    from vidchat.text.retrieval import Embedder, RetrievalIndex

__all__ = [
    "Answer",
    "ChatSession",
    "Citation",
    "Evidence",
    "Turn",
    "format_messages",
    "parse_citations",
    "parse_object_ids",
    "split_reply",
    "verify_evidence",
]

log = logging.getLogger(__name__)

CHAT_PROMPT = "chat"
DEFAULT_RECORD_SHARE = 0.7
# Role markers and separators a chat template adds around each message (ChatML: about 5).
MESSAGE_OVERHEAD = 6
# Shortened turns in the "earlier" summary keep this many characters of question and answer.
SUMMARY_QUESTION_CHARS = 120
SUMMARY_ANSWER_CHARS = 160
# Share of the history budget for verbatim turns when older turns must be summarized.
VERBATIM_SHARE = 0.7

RecordMode = Literal["full", "retrieval", "compact"]


# ---------------------------------------------------------------------------------------------
# The answer and what it cites


class Citation(BaseModel):
    """A time the answer cites: ``[01:02]`` (start == end) or a range ``[01:02-01:10]``."""

    text: str = Field(description="as written in the answer, brackets included")
    start: float = Field(description="seconds")
    end: float = Field(description="seconds; equal to start for a single time")
    in_video: bool = Field(True, description="False when the time lies past the video's end")


class Evidence(BaseModel):
    """A record line the answer relies on, as quoted by the model (or computed by code), and
    whether it was found in the record. Only verified evidence is shown as a citation."""

    quote: str = Field(description="as the model wrote it (or the computed fact)")
    verified: bool = Field(description="found in the record (exact or near-exact line match)")
    source: Literal["record", "computed", "answer"] = Field(
        "record",
        description="record: quoted by the model; computed: a fact computed by code; answer: "
        "a line the answer reproduces or cites, found by code when the model quoted none",
    )
    line: str | None = Field(None, description="the matching record line, when verified")
    start: float | None = Field(None, description="seconds: the line's time, when it has one")
    end: float | None = None
    objects: list[str] = Field(default_factory=list, description="object ids on the line")


class Answer(BaseModel):
    """One answer and where it came from."""

    question: str
    text: str
    evidence: list[Evidence] = Field(
        default_factory=list, description="quoted record lines, each checked against the record"
    )
    answered_by: Literal["llm", "facts"] = Field(
        "llm", description="facts: a pure lookup answered by code from the record, no model"
    )
    facts: list[str] = Field(
        default_factory=list, description="facts computed from the record and given to the model"
    )
    raw_text: str = Field("", description="the model's whole reply (evidence, then answer)")
    citations: list[Citation] = Field(default_factory=list)
    objects: list[str] = Field(default_factory=list, description="cited ids found in the record")
    unknown_objects: list[str] = Field(
        default_factory=list, description="cited ids that are NOT in the record (likely invented)"
    )
    model: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float = Field(description="wall time from sending the prompt to the last token")
    first_token_seconds: float | None = None
    cancelled: bool = False
    loop_stopped: bool = Field(
        False,
        description="generation was stopped because the model repeated itself; `text` keeps "
        "one copy of the repeated passage",
    )
    record_mode: RecordMode = Field(
        "full", description="full record, retrieved windows, or the renderer's compacted record"
    )
    windows: list[tuple[float, float]] = Field(
        default_factory=list, description="retrieved timeline windows (record_mode='retrieval')"
    )


_BRACKET_RE = re.compile(r"\[([^\[\]\n]{1,80})\]")
_TIME_RE = re.compile(r"(?<![\d:.])(?:(\d{1,2}):)?(\d{1,3}):(\d{2})(?:\.(\d+))?(?![\d:])")
_RANGE_SEP_RE = re.compile(r"^\s*(?:-|–|—|to|until)\s*$", re.IGNORECASE)
_WINDOW_HEAD_RE = re.compile(r"^\[[\d:]+–[\d:]+\]$")
_OBJECT_RE = re.compile(r"(?<![\w#])([a-z][a-z0-9_\-]*#[1-9][0-9]*)(?![\w#])", re.IGNORECASE)


def _seconds(m: re.Match[str]) -> float | None:
    h, mm, ss, frac = m.groups()
    if int(ss) >= 60 or (h is not None and int(mm) >= 60):
        return None
    t = int(mm) * 60 + int(ss) + (int(h) * 3600 if h else 0)
    return t + (float(f"0.{frac}") if frac else 0.0)


def parse_citations(text: str, duration: float | None = None) -> list[Citation]:
    """Times cited in square brackets: ``[mm:ss]``, ``[h:mm:ss]``, ranges with -, –, — or "to",
    and several in one bracket (``[00:12, 00:40-00:45]``). Repeats are listed once."""
    out: list[Citation] = []
    seen: set[tuple[float, float]] = set()
    for b in _BRACKET_RE.finditer(text):
        inner = b.group(1)
        times = [(m, _seconds(m)) for m in _TIME_RE.finditer(inner)]
        i = 0
        while i < len(times):
            m, t = times[i]
            if t is None:
                i += 1
                continue
            start = end = t
            shown = m.group(0)
            if i + 1 < len(times):
                m2, t2 = times[i + 1]
                between = inner[m.end() : m2.start()]
                if t2 is not None and t2 >= t and _RANGE_SEP_RE.match(between):
                    end = t2
                    shown = inner[m.start() : m2.end()]
                    i += 1
            i += 1
            if (start, end) in seen:
                continue
            seen.add((start, end))
            in_video = duration is None or start <= duration + 0.5
            out.append(Citation(text=f"[{shown}]", start=start, end=end, in_video=in_video))
    return out


def parse_object_ids(text: str, known: set[str] | list[str]) -> tuple[list[str], list[str]]:
    """Object ids the text mentions, split into (in the record, not in the record).

    Ids are matched case-insensitively and returned in record spelling, each once, in order of
    first mention. Record ids whose label contains a space (``traffic light#2``) are found too.
    """
    known_set = set(known)
    found: list[tuple[int, str]] = []
    lower = text.lower()
    for m in _OBJECT_RE.finditer(text):
        found.append((m.start(), m.group(1).lower()))
    for oid in known_set:
        if " " in oid:
            for m in re.finditer(re.escape(oid), lower):
                found.append((m.start(), oid))
    cited: list[str] = []
    unknown: list[str] = []
    for _, oid in sorted(found):
        # "light#2" inside "traffic light#2" is the same mention, not an unknown id.
        if oid not in known_set and any(k.endswith(" " + oid) and k in lower for k in known_set):
            continue
        target = cited if oid in known_set else unknown
        if oid not in target:
            target.append(oid)
    return cited, unknown


_ANSWER_MARK_RE = re.compile(r"(?im)^\W*answer\W*:[*\s]*")
_EVIDENCE_HEAD_RE = re.compile(r"(?im)^\W*evidence\W*:?\s*$")
_LEAD_TIME_RE = re.compile(
    r"^\s*(?:\d{1,2}:)?\d{1,3}:\d{2}(?:\s*[–-]\s*(?:\d{1,2}:)?\d{1,3}:\d{2})?"
)
_QUOTES = "\"'“”‘’`"
_QUOTE_LEAD_RE = re.compile(r"(?i)^(?:\W*evidence\W*:\s*)?(?:[-*•]+|\d{1,2}[.)])?\s*")
# Shortest quote checked against the record: "- yes" verifies nothing.
MIN_QUOTE_CHARS = 8
# difflib ratio over which a quote counts as the same line (a dropped comma, a changed case).
NEAR_MATCH = 0.9
# Shortest quoted passage (the words inside quotation marks) that identifies a line on its own,
# whatever the model wrote around it ('[00:08] speaker 1 says, "..."' for a speech line).
MIN_PASSAGE_CHARS = 16
_PASSAGE_RE = re.compile(r"[\"“”]([^\"“”]+)[\"“”]?")


def split_reply(text: str) -> tuple[list[str], str]:
    """The model's reply as (evidence quotes, answer). Without an ANSWER: mark, lines that look
    like quotes ("- ...") are evidence and the rest is the answer."""
    m = _ANSWER_MARK_RE.search(text)
    head, answer = (text[: m.start()], text[m.end() :]) if m else ("", text)
    if not m and _EVIDENCE_HEAD_RE.search(text):
        keep = []
        for ln in text.splitlines():
            if ln.strip().startswith("- "):
                head += ln + "\n"
            elif not _EVIDENCE_HEAD_RE.match(ln):
                keep.append(ln)
        answer = "\n".join(keep)
    quotes = []
    for ln in head.splitlines():
        q = ln.strip()
        if not q or _EVIDENCE_HEAD_RE.match(q):
            continue
        # Format slips: "EVIDENCE: line" on one line, "1. line", "**line**", "[00:12] line".
        q = _QUOTE_LEAD_RE.sub("", q).strip("*").strip().strip(_QUOTES).strip()
        q = re.sub(r"^\[([\d:]+(?:\s*[–-]\s*[\d:]+)?)\]", r"\1", q)
        if q and q.lower().strip(".()[] ") not in ("none", "n/a", "nothing"):
            quotes.append(q)
    return quotes, answer.strip()


def _norm(text: str) -> str:
    text = text.lower().replace("–", "-").replace("—", "-")
    text = "".join(ch for ch in text if ch not in _QUOTES)
    return " ".join(text.split()).strip(" .-")


def _line_times(line: str) -> tuple[float | None, float | None]:
    m = _LEAD_TIME_RE.match(line)
    if not m:
        return None, None
    times = [t for t in (_seconds(x) for x in _TIME_RE.finditer(m.group(0))) if t is not None]
    return (times[0], times[-1]) if times else (None, None)


def _near_line(q: str, quote: str, normed: list[tuple[str, str]]) -> str | None:
    """The record line a quote nearly equals (difflib ratio >= NEAR_MATCH), comparing the text
    after the leading time when the quote's time falls within the line's (models often write
    ``00:20`` for ``00:20–00:24``)."""
    import difflib

    q_start, _ = _line_times(quote)
    q_body = _norm(_LEAD_TIME_RE.sub("", quote, count=1))
    best, best_ratio = None, 0.0
    for n, ln in normed:
        ratio = difflib.SequenceMatcher(None, q, n).ratio()
        start, end = _line_times(ln)
        if None not in (q_start, start, end) and start - 1 <= q_start <= end + 1:  # type: ignore[operator]
            body = _norm(_LEAD_TIME_RE.sub("", ln, count=1))
            ratio = max(ratio, difflib.SequenceMatcher(None, q_body, body).ratio())
        if ratio > best_ratio:
            best, best_ratio = ln, ratio
    return best if best_ratio >= NEAR_MATCH else None


def _passage_line(quote: str, normed: list[tuple[str, str]]) -> str | None:
    """The one record line that holds the passage the quote puts in quotation marks (speech or
    on-screen text, copied word for word) when the model reworded the line around it. A passage
    found in several lines identifies none of them."""
    for m in _PASSAGE_RE.finditer(quote):
        passage = _norm(m.group(1))
        if len(passage) < MIN_PASSAGE_CHARS:
            continue
        hits = [ln for n, ln in normed if passage in n]
        if len(hits) == 1:
            return hits[0]
    return None


def verify_evidence(quotes: list[str], record_text: str, known_ids: set[str]) -> list[Evidence]:
    """Check each quote against the record's lines: an exact line (or a line contained in it,
    or it in a line), or a near-exact one (difflib ratio >= NEAR_MATCH). Verified quotes are
    mapped to the line's time and object ids."""
    # Window headers ("[00:30–00:40]") and "visible:" lists say nothing a quote could rest on.
    lines = [
        ln.strip()
        for ln in record_text.splitlines()
        if ln.strip()
        and not _WINDOW_HEAD_RE.match(ln.strip())
        and not ln.strip().startswith("visible:")
    ]
    normed = [(_norm(ln), ln) for ln in lines]
    out = []
    for quote in quotes:
        q = _norm(quote)
        match: str | None = None
        if len(q) >= MIN_QUOTE_CHARS:
            for n, ln in normed:
                if q == n or (len(n) >= MIN_QUOTE_CHARS and (q in n or n in q)):
                    match = ln
                    break
            if match is None:
                match = _near_line(q, quote, normed)
            if match is None:
                match = _passage_line(quote, normed)
        if match is None:
            out.append(Evidence(quote=quote, verified=False))
            continue
        start, end = _line_times(match)
        ids, _ = parse_object_ids(match, known_ids)
        out.append(
            Evidence(quote=quote, verified=True, line=match, start=start, end=end, objects=ids)
        )
    return out


def _record_block(system_text: str) -> str:
    """The record as the model saw it: the text between <record> and </record>, unescaped
    (quotes are checked against the record only, never against the instructions)."""
    from vidchat.prompts import unescape_data

    start, end = system_text.find("<record>"), system_text.rfind("</record>")
    if start < 0 or end < start:
        return ""
    return unescape_data(system_text[start + len("<record>") : end])


class _AnswerGate:
    """Holds back the evidence part of a streamed reply and lets the answer through: the user
    sees the answer first; the evidence is checked and shown as citations after it."""

    def __init__(self) -> None:
        self.text = ""
        self.open = False
        self.plain = False  # no evidence section: everything was the answer
        self._sent = 0
        self._shown = False  # nothing but white space let through yet

    def feed(self, chunk: str) -> str:
        self.text += chunk
        if not self.open:
            head = self.text.lstrip().lower()
            marks = ("evidence", "**evidence", "- ")
            if not head or any(m.startswith(head) for m in marks):
                return ""  # too early to tell: this could be the start of an evidence section
            m = _ANSWER_MARK_RE.search(self.text)
            if m:
                self.open, self._sent = True, m.end()
            elif not head.startswith(marks):
                # The model skipped the format: its reply is the answer, streamed as it comes.
                self.open, self._sent = True, 0
                self.plain = True
            else:
                return ""
        out = self.text[self._sent :]
        self._sent = len(self.text)
        if not self._shown:
            out = out.lstrip()  # the space after "ANSWER:" may come in the next chunk
            self._shown = bool(out)
        return out

    def rest(self) -> str:
        """What was never let through when the reply ended (no ANSWER: mark at all)."""
        if self.open:
            return ""
        return split_reply(self.text)[1]


class _LoopGuard:
    """Notices a model stuck repeating itself (small local models do: the same sentence over and
    over until max_tokens). A sentence of some length seen for the third time means a loop; the
    answer is then cut where the repeated sentence first came back, keeping one full cycle."""

    MIN_CHARS = 16
    REPEATS = 3

    def __init__(self) -> None:
        self.text = ""
        self.looping = False
        self._cut: int | None = None
        self._scanned = 0  # sentences before this offset have been counted
        self._seen: dict[str, list[int]] = {}

    def feed(self, chunk: str) -> bool:
        self.text += chunk
        for m in _SENTENCE_RE.finditer(self.text, self._scanned):
            sentence = " ".join(m.group(1).lower().split())
            self._scanned = m.end()
            if len(sentence) < self.MIN_CHARS:
                continue
            starts = self._seen.setdefault(sentence, [])
            starts.append(m.start(1))
            if len(starts) >= self.REPEATS:
                self.looping = True
                self._cut = starts[1]
                return True
        return False

    def kept(self) -> str:
        return self.text if self._cut is None else self.text[: self._cut].rstrip()


# A finished sentence: text up to . ! or ? followed by white space ("3.5", "a.avi" go on).
_SENTENCE_RE = re.compile(r"\s*((?:[^.!?]|[.!?](?!\s))*[^.!?\s][.!?]+)(?=\s)")


# ---------------------------------------------------------------------------------------------
# Turns and prompt assembly


@dataclass
class Turn:
    """One finished exchange of the conversation."""

    question: str
    answer: Answer


@dataclass
class _Plan:
    """Everything sent for one question, and how it was budgeted."""

    messages: list[BaseMessage]
    prompt_tokens: int
    budget: int
    record_tokens: int
    history_tokens: int
    record_mode: RecordMode
    windows: list[tuple[float, float]] = field(default_factory=list)
    turns_verbatim: int = 0
    turns_summarized: int = 0
    turns_dropped: int = 0


def _partial_note(shown: int, total: int) -> str:
    return f"{shown} of {total} timeline windows"


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def format_messages(
    messages: list[BaseMessage], count_tokens: Callable[[str], int] | None = None
) -> str:
    """Messages as readable text, one ``=== role ===`` header each (for /context and logs)."""
    parts = []
    for m in messages:
        role = {"system": "system", "human": "user", "ai": "assistant"}.get(m.type, m.type)
        content = m.content if isinstance(m.content, str) else str(m.content)
        n = f" ({count_tokens(content)} tokens)" if count_tokens else ""
        parts.append(f"=== {role}{n} ===\n{content}")
    return "\n\n".join(parts)


class ChatSession:
    """A conversation about one video record.

    Args:
        ctx: the record.
        llm: None (the profile's LLM, after environment overrides), an `LLMConfig` (used as
            given), or a ready langchain chat model.
        profile: a profile name, path or `Profile` (render window and budget, LLM settings);
            None uses the defaults.
        budget_tokens: total tokens the prompt may use (system + record + history + question);
            default: the LLM's context window minus its answer's max_tokens.
        record_share: the most of the available budget the record may take.
        retrieval_k: windows retrieved by similarity per question on long records.
        count_tokens: token counter; default the LLM's tokenizer (local) or an estimate.
        embedder: the retrieval embedder; default the shipped all-MiniLM-L6-v2.
        cache: keep retrieval embeddings on disk between sessions.
        use_facts: compute facts from the record for lookup questions (`vidchat.text.facts`)
            and answer pure lookups directly; off only to measure what the model does alone.
    """

    def __init__(
        self,
        ctx: VideoContext,
        llm: LLMConfig | BaseChatModel | None = None,
        profile: str | Profile | None = None,
        budget_tokens: int | None = None,
        *,
        record_share: float = DEFAULT_RECORD_SHARE,
        retrieval_k: int = 4,
        count_tokens: Callable[[str], int] | None = None,
        embedder: Embedder | None = None,
        cache: bool = True,
        use_facts: bool = True,
    ) -> None:
        if not isinstance(ctx, VideoContext):
            raise InputError(f"ChatSession needs a VideoContext, got {type(ctx).__name__}")
        if not 0 < record_share <= 1:
            raise ConfigError(f"record_share must be in (0, 1], got {record_share}")
        if budget_tokens is not None and budget_tokens < 256:
            raise ConfigError(f"budget_tokens must be at least 256, got {budget_tokens}")
        self.ctx = ctx
        self.profile = self._load_profile(profile)
        self.record_share = record_share
        self.retrieval_k = retrieval_k
        self.cache = cache
        self.use_facts = use_facts
        self._embedder = embedder
        self._count = count_tokens
        self._model: BaseChatModel | None = None
        self.config = self._config_for(llm)
        # A chat model given directly is used as it is; otherwise one is made from the config.
        self._given_model: BaseChatModel | None = None
        if llm is not None and not isinstance(llm, LLMConfig):
            self._given_model = self._model = llm
        self.budget_tokens = budget_tokens or (self.config.context_tokens - self.config.max_tokens)
        self.turns: list[Turn] = []
        self.last_answer: Answer | None = None
        self.last_messages: list[BaseMessage] | None = None
        self.last_plan: _Plan | None = None
        self._cancel = threading.Event()
        self._full: Rendered | None = None
        self._compacted: dict[int, Rendered] = {}
        self._floor: int | None = None
        self.retrieval_error: str | None = None
        self._index: RetrievalIndex | None = None
        self._known_ids = {o.id for o in ctx.objects}

    # -- set-up ------------------------------------------------------------------------------

    @staticmethod
    def _load_profile(profile: str | Profile | None) -> Profile | None:
        if profile is None:
            return None
        from vidchat.pipeline.profiles import load_profile

        return load_profile(profile)

    def _config_for(self, llm: Any) -> LLMConfig:
        if isinstance(llm, LLMConfig):
            return llm
        base = self.profile.llm if self.profile else None
        if llm is None:
            from vidchat.llm.client import resolve_llm_config

            return resolve_llm_config(base)
        from langchain_core.language_models import BaseChatModel

        if not isinstance(llm, BaseChatModel):
            raise ConfigError(
                "llm must be None, an LLMConfig or a langchain BaseChatModel, "
                f"got {type(llm).__name__}"
            )
        # A model given directly: its settings are its own; the config only sizes the budget.
        return base or LLMConfig()

    @property
    def window_s(self) -> float:
        from vidchat.pipeline.profiles import RenderConfig

        return (self.profile.render if self.profile else RenderConfig()).window_s

    @property
    def render_budget(self) -> int | None:
        return self.profile.render.budget_tokens if self.profile else None

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` for this session's LLM (its tokenizer, or an estimate)."""
        if self._count is None:
            self._count = self._make_counter()
        return self._count(text)

    def _make_counter(self) -> Callable[[str], int]:
        from vidchat.text.render import estimate_tokens

        if self._given_model is not None:
            # A model given directly: no tokenizer we can rely on without loading more.
            return estimate_tokens
        from vidchat.llm.client import token_counter

        return token_counter(self.config)

    def chat_model(self) -> BaseChatModel:
        """The langchain chat model, created on first use (loading a local model takes time)."""
        if self._model is None:
            from vidchat.llm.client import make_chat_model

            self._model = make_chat_model(self.config)
        return self._model

    @property
    def model_name(self) -> str:
        """A short name of the answering model, for answers and transcripts."""
        if self._given_model is not None:
            m = self._given_model
            for attr in ("model_name", "model", "model_id"):
                v = getattr(m, attr, None)
                if isinstance(v, str) and v:
                    return v
            return type(m).__name__
        c = self.config
        if c.backend == "local":
            return f"local:{c.model or DEFAULT_LOCAL_MODEL}"
        if c.backend == "openai":
            return f"openai:{c.model or 'default'}"
        return f"openai-compatible:{c.model or 'default'}@{c.base_url}"

    def describe_llm(self) -> str:
        """Which LLM answers and where it comes from (for /llm)."""
        if self._given_model is not None:
            return f"{self.model_name} (a {type(self._given_model).__name__} given directly)"
        from vidchat.llm.client import describe

        return describe(self.config)

    # -- the record --------------------------------------------------------------------------

    @property
    def rendered(self) -> Rendered:
        """The full rendering of the record (no budget), computed once."""
        if self._full is None:
            from vidchat.text.render import render

            self._full = render(self.ctx, window_s=self.window_s, count_tokens=self.count_tokens)
        return self._full

    def retrieval_index(self) -> RetrievalIndex:
        """The retrieval index over the full rendering's windows, built on first need."""
        if self._index is None:
            from vidchat.text.retrieval import RetrievalIndex, record_hash

            self._index = RetrievalIndex(
                self.rendered.windows,
                self._embedder,
                record_hash=record_hash(self.ctx),
                cache=self.cache,
                duration=self.ctx.video.duration,
            )
        return self._index

    def _compact(self, cap: int) -> Rendered:
        """The renderer's own fit of the whole record into `cap` tokens (cached per cap)."""
        if cap not in self._compacted:
            from vidchat.text.render import render

            # One entry: the cap moves a little with each question's length.
            self._compacted = {
                cap: render(
                    self.ctx,
                    budget_tokens=cap,
                    window_s=self.window_s,
                    count_tokens=self.count_tokens,
                )
            }
        return self._compacted[cap]

    @property
    def _lossless_floor(self) -> int:
        """Tokens of the record with every observation but no window or "visible" lines: no
        compaction that keeps every observation can go below it (counted once)."""
        if self._floor is None:
            kept = [
                ln
                for ln in self.rendered.text.splitlines()
                if not ln.strip().startswith("visible:") and not _WINDOW_HEAD_RE.match(ln)
            ]
            self._floor = self.count_tokens("\n".join(kept))
        return self._floor

    def _record_text(
        self, question: str, cap: int
    ) -> tuple[str, RecordMode, list[tuple[float, float]], str]:
        """(record text, mode, retrieved windows, note on what the record holds)."""
        full = self.rendered
        if full.tokens <= cap:
            return full.text, "full", [], ""
        # A little over: the renderer's compaction widens windows and drops only the "visible"
        # lines, so every observation survives, for the whole video. Better than retrieval.
        # (Tried only when it can work: on long records it is slow with a real tokenizer.)
        if self._lossless_floor <= cap:
            compact = self._compact(cap)
            if (
                not compact.over_budget
                and not set(compact.dropped) - {"visible"}
                and compact.objects == full.objects
            ):
                return compact.text, "compact", [], ""

        # Far over (long videos): header, every object, and the windows relevant to the question.
        label = f"{full.window_s:g} s" if full.window_s < 120 else f"{full.window_s / 60:g} min"
        head = "\n".join([full.header, full.objects])
        timeline_head = f"TIMELINE ({label} windows; only those relevant to the question):"
        base = self.count_tokens(head + "\n" + timeline_head) + 1
        if full.windows and base < cap and self.retrieval_error is None:
            try:
                index = self.retrieval_index()
                hits = index.select(question, cap - base, self.count_tokens, k=self.retrieval_k)
            except ConfigError as e:
                # No embedding model here: say so once, then answer from the compacted record.
                self.retrieval_error = str(e)
                log.warning("retrieval unavailable, using the compacted record: %s", e)
                hits = []
            if hits:
                chosen = [index.windows[h.index] for h in hits]
                text = "\n".join([head, timeline_head, *(w.text for w in chosen)])
                spans = [(w.start, w.end) for w in chosen]
                return text, "retrieval", spans, _partial_note(len(chosen), len(full.windows))
        # The object list alone is too big (or nothing was retrievable): the renderer's
        # compaction by salience, which keeps the header and says what it left out.
        return self._compact(cap).text, "compact", [], ""

    # -- prompt assembly ---------------------------------------------------------------------

    def build_messages(self, question: str, facts: list[str] | None = None) -> _Plan:
        """The messages the LLM would receive for `question` now, with their budget.

        `facts`: lines computed from the record for this question (`vidchat.text.facts`); they
        go into the user's turn, after the record, so the record stays a fixed prefix.
        """
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
        from vidchat.prompts import load_prompt

        prompt = load_prompt(CHAT_PROMPT)
        system = prompt.render("system")
        count = self.count_tokens
        user_turn = prompt.render("question", question=question, facts=facts or []).strip()
        fixed = count(system) + count(user_turn) + 3 * MESSAGE_OVERHEAD
        available = self.budget_tokens - fixed
        if available < 64:
            raise ConfigError(
                f"the prompt budget ({self.budget_tokens} tokens) leaves no room for the record: "
                f"the system prompt and question alone take {fixed}"
            )
        cap = int(available * self.record_share)
        if self.render_budget is not None:
            cap = min(cap, self.render_budget)
        # The block's own lines (delimiters, the note on a partial record) come out of the cap.
        wrapper = prompt.render("record", record="", partial=_partial_note(99, 999))
        record, mode, windows, note = self._record_text(question, cap - count(wrapper))
        block = prompt.render("record", record=record, partial=note)
        record_tokens = count(block) + 2  # the blank line joining it to the system prompt
        history_budget = available - record_tokens

        # Newest turns verbatim while they fit; then older ones as one-line summaries; the rest
        # is dropped (and counted, so the model knows the conversation is longer). When not every
        # turn fits verbatim, verbatim turns get only part of the history budget, so that the
        # summary of what came before has room too.
        costs = [
            count(t.question) + count(t.answer.raw_text or t.answer.text) + 2 * MESSAGE_OVERHEAD
            for t in self.turns
        ]
        verbatim_budget = history_budget
        if sum(costs) > history_budget:
            verbatim_budget = int(history_budget * VERBATIM_SHARE)
        verbatim: list[Turn] = []
        used = 0
        remaining = list(self.turns)
        while remaining:
            cost = costs[len(remaining) - 1]
            # The newest turn may use the whole history budget: a follow-up needs it most.
            limit = history_budget if not verbatim else verbatim_budget
            if used + cost > limit:
                break
            verbatim.insert(0, remaining.pop())
            used += cost
        summary = ""
        summarized = 0
        dropped = len(remaining)
        if remaining:
            lines: list[dict[str, str]] = []
            for t in reversed(remaining):
                line = {
                    "question": _shorten(t.question, SUMMARY_QUESTION_CHARS),
                    "answer": _shorten(t.answer.text, SUMMARY_ANSWER_CHARS),
                }
                trial = prompt.render(
                    "earlier", turns=[line, *lines], dropped=len(remaining) - len(lines) - 1
                )
                if used + count(trial) + 2 > history_budget:
                    break
                lines.insert(0, line)
                summary = trial
            summarized = len(lines)
            dropped = len(remaining) - summarized
            if summary:
                used += count(summary) + 2
            elif dropped:
                note_only = prompt.render("earlier", turns=[], dropped=dropped)
                if used + count(note_only) + 2 <= history_budget:
                    summary = note_only
                    used += count(note_only) + 2

        system_text = "\n\n".join(x for x in (system, block, summary) if x)
        messages: list[BaseMessage] = [SystemMessage(system_text)]
        for t in verbatim:
            # The reply as written (evidence, then answer): the model keeps to the format.
            messages += [HumanMessage(t.question), AIMessage(t.answer.raw_text or t.answer.text)]
        messages.append(HumanMessage(user_turn))
        prompt_tokens = sum(count(str(m.content)) + MESSAGE_OVERHEAD for m in messages)
        return _Plan(
            messages=messages,
            prompt_tokens=prompt_tokens,
            budget=self.budget_tokens,
            record_tokens=record_tokens,
            history_tokens=used,
            record_mode=mode,
            windows=windows,
            turns_verbatim=len(verbatim),
            turns_summarized=summarized,
            turns_dropped=dropped,
        )

    def context_text(self, question: str | None = None) -> str:
        """Exactly what the LLM saw for the last question, or would see for `question`."""
        if question is None and self.last_messages is not None:
            messages = self.last_messages
            head = "(the context of the last question)"
        else:
            plan = self.build_messages(question or "(your next question)")
            messages = plan.messages
            head = f"(the context for {'this' if question else 'the next'} question)"
        total = sum(self.count_tokens(str(m.content)) + MESSAGE_OVERHEAD for m in messages)
        return f"{head} {total} of {self.budget_tokens} tokens\n\n" + format_messages(
            messages, self.count_tokens
        )

    # -- asking ------------------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop the generation in progress (from another thread or a signal handler)."""
        self._cancel.set()

    def stream(self, question: str, cancel: threading.Event | None = None) -> Iterator[str]:
        """Stream the answer's text; afterwards `last_answer` holds the full `Answer`.

        Closing the iterator early or setting `cancel` stops generation; the partial answer is
        then `last_answer` with ``cancelled=True`` and is not added to the history. LLM errors
        propagate (as `vidchat.llm.client.LLMError`) and leave the history unchanged.
        """
        question = (question or "").strip()
        if not question:
            raise InputError("empty question: ask something about the video")
        from vidchat.text.facts import facts_for

        facts = facts_for(question, self.ctx) if self.use_facts else None
        plan = self.build_messages(question, facts.lines if facts else None)
        self.last_messages = plan.messages
        self.last_plan = plan
        self.last_answer = None
        self._cancel = cancel or threading.Event()
        if facts is not None and facts.direct:
            return self._direct(question, plan, facts.direct, facts.lines)
        return self._generate(question, plan, self._cancel, facts.lines if facts else [])

    def _direct(self, question: str, plan: _Plan, text: str, lines: list[str]) -> Iterator[str]:
        """A pure lookup, answered by code from the record: no model, nothing invented."""
        t0 = time.perf_counter()
        yield text
        evidence = []
        for ln in lines:
            ids, _ = parse_object_ids(ln, self._known_ids)
            evidence.append(Evidence(quote=ln, verified=True, source="computed", line=ln,
                                     objects=ids))  # fmt: skip
        self._finish(question, plan, text, t0, time.perf_counter() - t0, cancelled=False,
                     evidence=evidence, answered_by="facts", facts=lines, raw=text)  # fmt: skip

    def _generate(
        self, question: str, plan: _Plan, cancel: threading.Event, facts: list[str]
    ) -> Iterator[str]:
        from vidchat.llm.client import stream_chat

        model = self.chat_model()
        parts: list[str] = []
        first: float | None = None
        t0 = time.perf_counter()
        finished = False
        failed = False
        guard = _LoopGuard()
        gate = _AnswerGate()
        chunks = stream_chat(model, plan.messages, cancel=cancel)
        try:
            for chunk in chunks:
                if first is None:
                    first = time.perf_counter() - t0
                parts.append(chunk)
                shown = gate.feed(chunk)
                if shown:
                    yield shown
                if cancel.is_set():
                    break
                if guard.feed(chunk):
                    break  # the model is looping: stop it (closing the stream below)
            finished = not cancel.is_set()
            if finished:
                tail = gate.rest()
                if tail:
                    yield tail
        except GeneratorExit:
            cancel.set()
            raise
        except BaseException as e:
            # KeyboardInterrupt is a cancellation; anything else is a failure of the LLM.
            if isinstance(e, KeyboardInterrupt):
                cancel.set()
            else:
                failed = True
            raise
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
            if not failed:
                raw = guard.kept() if guard.looping else "".join(parts)
                quotes, text = split_reply(raw) if not gate.plain else ([], raw)
                record_text = _record_block(str(plan.messages[0].content))
                evidence = verify_evidence(quotes, record_text + "\n" + "\n".join(facts),
                                           self._known_ids)  # fmt: skip
                if not any(e.verified for e in evidence):
                    from vidchat.conversation.grounding import answer_evidence

                    evidence += answer_evidence(text, record_text, facts, self._known_ids)
                self._finish(
                    question, plan, text, t0, first,
                    cancelled=not finished, loop_stopped=guard.looping,
                    evidence=evidence, facts=facts, raw=raw,
                )  # fmt: skip

    def _finish(
        self,
        question: str,
        plan: _Plan,
        text: str,
        t0: float,
        first: float | None,
        cancelled: bool,
        loop_stopped: bool = False,
        *,
        evidence: list[Evidence] | None = None,
        answered_by: Literal["llm", "facts"] = "llm",
        facts: list[str] | None = None,
        raw: str = "",
    ) -> None:
        seconds = time.perf_counter() - t0
        text = text.strip()
        cited, unknown = parse_object_ids(text, self._known_ids)
        answer = Answer(
            question=question,
            text=text,
            evidence=evidence or [],
            answered_by=answered_by,
            facts=facts or [],
            raw_text=raw.strip(),
            citations=parse_citations(text, self.ctx.video.duration),
            objects=cited,
            unknown_objects=unknown,
            model=self.model_name if answered_by == "llm" else "facts computed from the record",
            prompt_tokens=plan.prompt_tokens if answered_by == "llm" else 0,
            completion_tokens=self.count_tokens(text) if text and answered_by == "llm" else 0,
            seconds=round(seconds, 3),
            first_token_seconds=round(first, 3) if first is not None else None,
            cancelled=cancelled,
            loop_stopped=loop_stopped,
            record_mode=plan.record_mode,
            windows=plan.windows,
        )
        self.last_answer = answer
        if not cancelled:
            self.turns.append(Turn(question, answer))

    def prefill(self) -> bool:
        """Process the record now (the system prompt and record, the prefix every question
        shares), so that the first question starts from the prompt cache. Local server only;
        returns whether anything was done. Safe to call from a background thread."""
        from vidchat.llm.client import prefill

        plan = self.build_messages("(prefill)")
        return prefill(self.chat_model(), plan.messages[:1])

    def ask(self, question: str) -> Answer:
        """Ask and wait for the whole answer."""
        for _ in self.stream(question):
            pass
        assert self.last_answer is not None  # set by the stream's completion
        return self.last_answer

    def reset(self) -> None:
        """Forget the conversation (the record, model and retrieval index stay)."""
        self.turns.clear()
        self.last_answer = None
        self.last_messages = None
        self.last_plan = None

    def update_record(self, ctx: VideoContext) -> None:
        """Answer from `ctx` from now on (e.g. the record after a zoom); the conversation and
        the model stay, every rendering and index made from the old record is dropped."""
        if not isinstance(ctx, VideoContext):
            raise InputError(f"update_record needs a VideoContext, got {type(ctx).__name__}")
        self.ctx = ctx
        self._full = None
        self._compacted = {}
        self._floor = None
        self._index = None
        self._known_ids = {o.id for o in ctx.objects}

    # -- transcript --------------------------------------------------------------------------

    def to_markdown(self) -> str:
        """The conversation as markdown: video, model, then each question and answer."""
        from vidchat.text.render import fmt_time

        v = self.ctx.video
        lines = [
            f"# vidchat — {v.name}",
            "",
            f"- video: `{v.path}` ({fmt_time(v.duration)}, {v.width}x{v.height})",
            f"- record: {len(self.ctx.objects)} objects, {len(self.ctx.speech)} speech segments,"
            f" {len(self.ctx.events)} events",
            f"- model: {self.model_name}",
        ]
        for i, t in enumerate(self.turns, 1):
            a = t.answer
            lines += ["", f"## {i}. {t.question}", "", a.text or "_(empty answer)_", ""]
            verified = [e for e in a.evidence if e.verified]
            for e in verified:
                at = f"[{fmt_time(e.start)}] " if e.start is not None else ""
                lines.append(f"> {at}{e.line or e.quote}")
            if a.answered_by == "llm" and not verified:
                lines.append("> (no evidence for this answer was found in the record)")
            if verified or a.answered_by == "llm":
                lines.append("")
            facts = []
            if a.citations:
                facts.append("times " + ", ".join(c.text for c in a.citations))
            if a.objects:
                facts.append("objects " + ", ".join(a.objects))
            if a.unknown_objects:
                facts.append("NOT in the record: " + ", ".join(a.unknown_objects))
            facts.append(f"{a.completion_tokens} tokens in {a.seconds:.1f} s")
            lines.append("*" + "; ".join(facts) + "*")
        return "\n".join(lines) + "\n"
