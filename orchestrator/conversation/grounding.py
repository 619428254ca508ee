"""Evidence for an answer whose model did not quote any: the record lines the answer rests on,
found by code from what the answer itself says.

A small model asked to quote record lines before it answers sometimes skips the EVIDENCE part,
writes "- none" and then answers from the record anyway, or paraphrases the line it used. Asking
again would double the wait, so instead the answer's own words are mapped back to the record,
strictly (a line is only taken when the answer reproduces it, not when it merely sounds alike):

1. a passage the answer puts in quotation marks that a record line holds (speech, on-screen
   text), word for word;
2. a record line's quoted data (what was said or shown) that the answer repeats without quotes;
3. a line at a time the answer cites, with which the answer shares at least
   `MIN_SHARED_WORDS` content words, or an object id the answer names;
4. a computed fact (``<facts>``) with which the answer shares at least `MIN_SHARED_WORDS`
   content words, or a fact that something is missing that a negative answer names (an answer
   saying the record has no car rests on the fact saying so).

The lines found are then checked like quoted evidence (`verify_evidence`), so everything shown
as a citation is a real record line either way; `Evidence.source` says how it was found.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from vidchat.conversation.citations import (
    is_window_header,
    line_times,
    object_mentions,
    parse_citations,
)

if TYPE_CHECKING:
    from vidchat.conversation.answer import Evidence

__all__ = [
    "MIN_PASSAGE_CHARS",
    "MIN_PASSAGE_WORDS",
    "MIN_SHARED_WORDS",
    "answer_evidence",
    "record_lines",
    "supporting_lines",
]

# Shortest passage (after normalizing) that counts as reproducing a line's data.
MIN_PASSAGE_CHARS = 8
MIN_PASSAGE_WORDS = 2
# Content words an answer must share with a line at a cited time (or a computed fact).
MIN_SHARED_WORDS = 2
# At most this many lines are taken as one answer's evidence.
MAX_LINES = 3

_DATA_RE = re.compile(r"\"((?:[^\"\\]|\\.)*)\"")
_ANSWER_QUOTE_RE = re.compile(r"[\"“]([^\"“”]{3,})[\"”]")
_WORD_RE = re.compile(r"[a-z0-9]+")
_NEGATION_RE = re.compile(r"\b(?:no|not|none|nothing|never|neither|nor)\b", re.IGNORECASE)
# Words that say nothing about which line is meant (the answer's own phrasing, record jargon).
_PLAIN = {
    "the", "a", "an", "and", "or", "of", "to", "in", "on", "at", "for", "with", "from", "by",
    "is", "are", "was", "were", "be", "it", "its", "this", "that", "there", "what", "who",
    "record", "video", "shows", "show", "shown", "seen", "says", "said", "say", "speech",
    "text", "screen", "ocr", "appears", "time", "times", "no", "not", "does", "one", "some",
}  # fmt: skip


def _norm(text: str) -> str:
    return " ".join(_WORD_RE.findall(text.lower()))


def _passage(norm: str) -> bool:
    """Long enough to identify a line: a one-word tag ("espresso") repeated by an answer that
    invents around it ("the cat drinks an espresso") supports nothing."""
    return len(norm) >= MIN_PASSAGE_CHARS and len(norm.split()) >= MIN_PASSAGE_WORDS


def _content(text: str) -> set[str]:
    return {w for w in _WORD_RE.findall(text.lower()) if w not in _PLAIN and not w.isdigit()}


def _span(line: str) -> tuple[float, float] | None:
    start, end = line_times(line)
    return (start, end) if start is not None and end is not None else None


def record_lines(record_text: str) -> list[str]:
    """The record's lines a claim can rest on: not the window headers (``[00:30–00:40]``) and
    not the ``visible:`` lists, which say nothing on their own."""
    out = []
    for ln in record_text.splitlines():
        s = ln.strip()
        if s and not is_window_header(s) and not s.startswith("visible:"):
            out.append(s)
    return out


def _cited_times(answer: str) -> list[float]:
    """Every time the answer cites in brackets (both ends of a range)."""
    return [t for c in parse_citations(answer) for t in (c.start, c.end)]


def supporting_lines(
    answer: str, record_text: str, facts: Sequence[str] = (), limit: int = MAX_LINES
) -> list[str]:
    """Record lines (and computed facts) the answer reproduces or cites, in record order, at
    most `limit` (see the module docstring for the rules). Empty when nothing is certain."""
    lines = record_lines(record_text)
    norm_answer = _norm(answer)
    answer_words = _content(answer)
    times = _cited_times(answer)
    ids = object_mentions(answer)
    passages = [_norm(m.group(1)) for m in _ANSWER_QUOTE_RE.finditer(answer)]
    passages = [p for p in passages if _passage(p)]
    picked: list[str] = []

    def take(line: str) -> None:
        if line not in picked:
            picked.append(line)

    for ln in lines:
        norm_line = _norm(ln)
        data = [_norm(d) for d in _DATA_RE.findall(ln)]
        # 1. A quoted passage of the answer that this line holds.
        if any(p in norm_line for p in passages):
            take(ln)
            continue
        # 2. The line's own quoted data, repeated by the answer.
        if any(_passage(d) and f" {d} " in f" {norm_answer} " for d in data):
            take(ln)
            continue
        # 3. A line at a time the answer cites that says what the answer says.
        # Times are shown in whole seconds, so a second either way is the same time; an id
        # alone (no shared words) must be at the very time cited.
        span = _span(ln)
        if span is not None and any(span[0] - 1 <= t <= span[1] + 1 for t in times):
            line_ids = object_mentions(ln)
            exact = any(span[0] <= t <= span[1] for t in times)
            if len(answer_words & _content(ln)) >= MIN_SHARED_WORDS or (ids & line_ids and exact):
                take(ln)
    # A passage found in many lines identifies none of them (a repeated sentence): keep the
    # lines only when a cited time narrows them down, else drop them all.
    if len(picked) > limit and times:
        near = [ln for ln in picked if (sp := _span(ln)) and any(
            sp[0] - 1 <= t <= sp[1] + 1 for t in times)]  # fmt: skip
        picked = near
    if len(picked) > limit:
        picked = []
    # 4. Computed facts the answer restates. A fact that something is missing ("no car is seen
    # in the record ...") is restated by a negative answer naming the thing ("no car").
    negative = bool(_NEGATION_RE.search(answer))
    for fact in facts:
        if len(picked) >= limit:
            break
        shared = len(answer_words & _content(fact))
        if shared >= MIN_SHARED_WORDS or (shared and negative and _NEGATION_RE.match(fact)):
            take(fact)
    return picked[:limit]


def answer_evidence(
    answer: str, record_text: str, facts: Sequence[str], known_ids: set[str]
) -> list[Evidence]:
    """`supporting_lines` checked like quoted evidence (`verify_evidence`): the verified ones,
    with ``source="answer"``, for a reply whose model quoted nothing that verified."""
    from vidchat.conversation.evidence import verify_evidence

    lines = supporting_lines(answer, record_text, facts)
    checked = verify_evidence(lines, record_text + "\n" + "\n".join(facts), known_ids)
    return [e.model_copy(update={"source": "answer"}) for e in checked if e.verified]
