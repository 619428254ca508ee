"""Specific details an answer states that nothing in the record holds.

The evidence check (`vidchat.conversation.evidence`) says a quoted line exists, the relevance check
(`vidchat.conversation.relevance`) that it is about the question; neither sees a detail the model
adds on top of a real, relevant quote. Measured: "What do we learn about the meeting?" answered
"The meeting is scheduled for a later time, from 3 PM to 4 PM." over the verified, relevant line
``speech: "We will meet at the library after lunch on Friday."`` — the time invented.

So the answer's specific details are listed (`answer_details`) and each is looked up in what the
record says (`record_support`: what was said, what was shown, the object labels, the computed
facts, the question itself):

- clock times ("3 PM", "9:30 a.m.", "10 o'clock"): one said or shown line must hold the hour
  (and minutes), as digits or words ("half past nine" holds 9 and 30), and the "PM"/"AM" the
  answer adds, or a part of the day that implies it ("in the morning");
- numbers of three or more digits (codes, years, amounts) and money/percentages: the same digits,
  written together or spoken one by one ("four seven two nine" holds 4729);
- names: a capitalised word inside a sentence (not its first word, not inside a quotation, which
  the quote check covers) that no record line, label or fact contains, in any case.

Small numbers without a unit are not checked: they are usually counts or durations the model
computes from the record ("3 persons", "60 seconds"), which the record does not spell out.

A detail found nowhere is reported (`unsupported_details`): `Answer.unsupported` carries it, and
the chat, ``vidchat ask`` and the web app say "NOT in the record: 3 PM, 4 PM" beside the answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from vidchat.kernel.record import VideoContext

__all__ = ["Detail", "answer_details", "record_support", "unsupported_details"]

DetailKind = Literal["clock", "number", "name"]

_UNITS = {
    "zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
}  # fmt: skip
# Parts of the day that say which half of the clock a spoken time is in.
_PM_WORDS = {"pm", "afternoon", "evening", "night", "tonight"}
_AM_WORDS = {"am", "morning"}
# Capitalised words that name nothing (the answer's own phrasing, the record's vocabulary).
_NOT_NAMES = {"i", "am", "pm", "ok", "yes", "no", "the", "a", "an", "it", "this", "that", "id"}

_CLOCK_RE = re.compile(
    r"\b(\d{1,2})(?::(\d{2}))?\s*(?:([ap])\.?\s?m\b\.?|(o'clock|o’clock))", re.IGNORECASE
)
_LONG_NUMBER_RE = re.compile(r"(?<![\w:#.])(\$|€|£)?(\d[\d,]{2,}|\d+)(\s?%|\s?percent)?(?![\w:#])")
_BRACKET_RE = re.compile(r"\[[^\]]*\]")
_QUOTE_RE = re.compile(r"[\"“][^\"“”]*[\"”]")
_ID_RE = re.compile(r"\b[a-z][\w ]*#\d+", re.IGNORECASE)
_SENTENCE_RE = re.compile(r"(?<=[.!?:;])\s+|\n+")
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'’-]*")
_TOKEN_RE = re.compile(r"[a-z]+|\d+")


@dataclass(frozen=True)
class Detail:
    """One specific detail of an answer, as written (`shown`) and as looked up (`kind`, `parts`:
    the digits of a clock time or number, "am"/"pm", or the lower-cased name)."""

    kind: DetailKind
    shown: str
    parts: tuple[str, ...]


def _plain(text: str) -> str:
    """The answer without what other checks own: cited times, object ids and quotations."""
    for pattern in (_BRACKET_RE, _QUOTE_RE, _ID_RE):
        text = pattern.sub(" ", text)
    return text


def answer_details(text: str) -> list[Detail]:
    """The clock times, long numbers, amounts and names `text` states (see the module doc)."""
    plain = _plain(text)
    out: list[Detail] = []
    taken: list[tuple[int, int]] = []
    for m in _CLOCK_RE.finditer(plain):
        hour, minute, half, _ = m.groups()
        parts = [str(int(hour))]
        if minute and minute != "00":
            parts.append(str(int(minute)))
        if half:
            parts.append(half.lower() + "m")
        out.append(Detail("clock", m.group(0).strip().rstrip("."), tuple(parts)))
        taken.append(m.span())
    for m in _LONG_NUMBER_RE.finditer(plain):
        if any(a <= m.start() < b for a, b in taken):
            continue
        money, digits, percent = m.groups()
        digits = digits.replace(",", "")
        if not (money or percent) and len(digits) < 3:
            continue  # a count or a duration: computed by the model, not quoted
        out.append(Detail("number", m.group(0).strip(), (digits,)))
    for sentence in _SENTENCE_RE.split(plain):
        words = _WORD_RE.findall(sentence)
        for w in words[1:]:
            if w[0].isupper() and not w.isupper() and w.lower() not in _NOT_NAMES:
                name = re.sub(r"['’]s?$", "", w.lower())
                out.append(Detail("name", w, (name,)))
    seen: set[tuple[str, tuple[str, ...]]] = set()
    unique = []
    for d in out:
        if (d.kind, d.parts) not in seen:
            seen.add((d.kind, d.parts))
            unique.append(d)
    return unique


def _tokens(text: str) -> list[str]:
    """Lower-case word and digit tokens; number words become digits, "p.m." becomes "pm", "half
    past" and "quarter past/to" become the minutes they name."""
    low = text.lower().replace("’", "'")
    low = re.sub(r"\b([ap])\.\s?m\b\.?", r"\1m", low)
    low = re.sub(r"\bhalf past\b", " 30 past ", low)
    low = re.sub(r"\bquarter past\b", " 15 past ", low)
    low = re.sub(r"\bquarter to\b", " 45 to ", low)
    out = []
    for tok in _TOKEN_RE.findall(low):
        out.append(str(_UNITS[tok]) if tok in _UNITS else tok)
    return out


@dataclass(frozen=True)
class Support:
    """What the record says, as tokens: `words` (names are looked up here), `numbers` (digit
    tokens of what was said and shown, with runs of single spoken digits joined: "4 7 2 9" →
    "4729"), and `items`: each said or shown line's tokens, with "am"/"pm" added where a part of
    the day implies it (a clock time must be found whole within one line)."""

    words: frozenset[str]
    numbers: frozenset[str]
    items: tuple[frozenset[str], ...]


def record_support(
    ctx: VideoContext, facts: Iterable[str] = (), question: str = "", record_text: str = ""
) -> Support:
    """What `ctx` says (speech, on-screen and other event text, object labels and attributes),
    the computed `facts` (their cited times left out: a time in the video is not a clock time
    of the story) and the `question`, as tokens to look details up in. `record_text`, the record
    as the model read it, adds words only (its section names and speaker labels are words a
    model may capitalise; its numbers are times and ids, not data)."""
    data: list[str] = [s.text for s in ctx.speech]
    data += [e.text for e in ctx.events]
    data += [_BRACKET_RE.sub(" ", f) for f in facts]
    data.append(question)
    labels: list[str] = []
    for o in ctx.objects:
        labels.append(o.label)
        labels += [f"{k} {v}" for k, v in o.attributes.items()]
    words: set[str] = set()
    numbers: set[str] = set()
    items: list[frozenset[str]] = []
    for text in data:
        toks = _tokens(text)
        words.update(t for t in toks if not t.isdigit())
        item = set(toks)
        item.update(str(int(t)) for t in toks if t.isdigit())
        if _PM_WORDS & item:
            item.add("pm")
        if _AM_WORDS & item:
            item.add("am")
        items.append(frozenset(item))
        run: list[str] = []
        for t in [*toks, ""]:
            if t.isdigit():
                numbers.update((t, str(int(t))))
                if len(t) == 1:
                    run.append(t)
                    continue
            if len(run) >= 2:
                numbers.add("".join(run))
            run = []
    for text in [*labels, record_text]:
        words.update(t for t in _tokens(text) if not t.isdigit())
    return Support(frozenset(words), frozenset(numbers), tuple(items))


def _supported(d: Detail, support: Support) -> bool:
    if d.kind == "name":
        name = d.parts[0]
        return name in support.words or name.rstrip("s") in support.words
    if d.kind == "number":
        return d.parts[0] in support.numbers
    return any(all(p in item for p in d.parts) for item in support.items)


def unsupported_details(answer: str, support: Support) -> list[str]:
    """The details of `answer` (as written) that `support` does not hold, in order."""
    return [d.shown for d in answer_details(answer) if not _supported(d, support)]
