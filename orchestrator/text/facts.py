"""Facts computed from the record by code, for the questions a small model gets wrong by reading.

A 1.5B model miscounts a list of forty objects and names the wrong people when asked which of them
fell. These questions have exact answers in the record, so code computes them:

- counts per label (``how many persons?``), and of shot cuts;
- first and last appearance of a label or an object (``when does the dog first appear?``);
- objects with a given attribute (``who fell?`` -> every object whose ``fell`` is true);
- what is visible at a time (``what is visible at 00:40?``);
- what was said (and shown as text) in a window (``what is said between 00:10 and 00:30?``).

`facts_for(question, ctx)` returns the facts that bear on a question, as record-style lines the
model is asked to rely on, and, when the question is a pure lookup that the facts answer in full,
a `direct` answer that needs no model at all.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from vidchat.kernel.record import ObjectTrack, VideoContext

__all__ = ["Facts", "facts_for", "label_counts", "objects_with", "said_between", "visible_at"]

_TIME = r"(?:(\d{1,2}):)?(\d{1,3}):(\d{2})(?:\.\d+)?"
_TIME_RE = re.compile(_TIME)
_WORD_RE = re.compile(r"[a-z][a-z\-]+")
_COUNT_RE = re.compile(
    r"\bhow many\s+(?:different\s+|distinct\s+)?([a-z][a-z \-]*?)s?\b(?:\s|\?|$)"
)
_FIRST_RE = re.compile(r"\b(first|last|earliest|latest)\b")
_WHEN_RE = re.compile(r"\b(when|what time|at what time|which time)\b")
_APPEAR_RE = re.compile(r"\b(appear|appears|seen|shown|show up|enter|enters|visible|leave|leaves)")
_SAID_RE = re.compile(r"\b(said|say|says|spoken|speak|speaks|talk|talks|mention|mentioned|hear)\b")
_VISIBLE_RE = re.compile(r"\b(visible|see|seen|on screen|in view|in the frame|happening|show)")
_STOP = {
    "the", "a", "an", "of", "in", "is", "are", "was", "were", "who", "which", "what", "does",
    "did", "do", "video", "clip", "there", "people", "person", "persons", "objects", "object",
}  # fmt: skip

# Question words for an attribute that the record spells differently.
_ATTRIBUTE_WORDS = {
    "fell": ("fell", "fall", "falls", "fallen", "falling", "fall down", "fell down"),
}


def _fmt(t: float) -> str:
    from vidchat.text.render import fmt_time

    return fmt_time(t)


def quote(text: str) -> str:
    """Video text quoted as the renderer quotes it (one JSON string: data, never prose)."""
    from vidchat.text.render import quote as render_quote

    return render_quote(text)


def _seconds(m: re.Match[str]) -> float:
    h, mm, ss = m.group(1), m.group(2), m.group(3)
    return int(mm) * 60 + int(ss) + (int(h) * 3600 if h else 0)


def _singular(word: str) -> str:
    word = word.strip().lower()
    if word.endswith("people"):
        return word[: -len("people")] + "person"
    for plural, single in (("ies", "y"), ("ses", "s"), ("s", "")):
        if word.endswith(plural) and len(word) > len(plural) + 1:
            return word[: -len(plural)] + single
    return word


def label_counts(ctx: VideoContext) -> Counter[str]:
    """Objects per label (each tracked id counted once)."""
    return Counter(o.label for o in ctx.objects)


def objects_with(ctx: VideoContext, key: str, value: object = True) -> list[ObjectTrack]:
    """Objects whose attribute `key` equals `value` (strings compared case-insensitively)."""
    out = []
    for o in ctx.objects:
        v = o.attributes.get(key)
        if isinstance(v, str) and isinstance(value, str):
            if v.lower() == value.lower():
                out.append(o)
        elif v == value and v is not None:
            out.append(o)
    return out


def visible_at(ctx: VideoContext, t: float, slack: float = 0.5) -> list[ObjectTrack]:
    """Objects whose first..last span contains `t` (within `slack` seconds)."""
    return [o for o in ctx.objects if o.first_seen - slack <= t <= o.last_seen + slack]


def said_between(ctx: VideoContext, start: float, end: float) -> list[str]:
    """Speech and on-screen text overlapping [start, end], as record-style lines."""
    lines = []
    for s in ctx.speech:
        if s.end >= start and s.start <= end:
            lines.append(f"{_fmt(s.start)}–{_fmt(s.end)} speech: {quote(s.text)}")
    for e in ctx.events:
        if e.kind == "ocr" and e.end >= start and e.start <= end:
            lines.append(f"{_fmt(e.start)} ocr: {quote(e.text)}")
    return lines


@dataclass
class Facts:
    """Facts bearing on one question: lines for the model and, for a pure lookup, the answer."""

    lines: list[str] = field(default_factory=list)
    direct: str | None = None  # a complete answer computed from the record (no model needed)
    kind: str | None = None  # which lookup matched: count, first_last, attribute, visible, said


def _labels(ctx: VideoContext) -> list[str]:
    return sorted({o.label for o in ctx.objects}, key=len, reverse=True)


def _ids(objs: list[ObjectTrack]) -> str:
    return ", ".join(o.id for o in objs)


def _count_facts(q: str, ctx: VideoContext) -> Facts | None:
    m = _COUNT_RE.search(q)
    if not m:
        return None
    noun = _singular(m.group(1).split()[-1] if m.group(1).split() else "")
    if noun in ("shot", "cut", "shot cut", "scene"):
        cuts = [e for e in ctx.events if e.kind == "shot"]
        times = ", ".join(_fmt(e.start) for e in cuts)
        line = f"shot cuts in the record: {len(cuts)}" + (f" (at {times})" if cuts else "")
        return Facts(
            [line],
            f"The record has {len(cuts)} shot cut(s){f' at {times}' if cuts else ''}.",
            "count",
        )
    counts = label_counts(ctx)
    for label in _labels(ctx):
        if noun == label or noun == _singular(label) or noun in label.split():
            objs = [o for o in ctx.objects if o.label == label]
            line = f"{label} objects in the record: {counts[label]} ({_ids(objs)})"
            direct = (
                f"The record tracks {counts[label]} {label}"
                f"{'' if counts[label] == 1 else 's'}: {_ids(objs)}."
            )
            return Facts([line], direct, "count")
    if noun in ("object", "thing", "track"):
        parts = ", ".join(f"{n} {lab}" for lab, n in counts.most_common())
        return Facts([f"objects in the record: {len(ctx.objects)} ({parts})"], None, "count")
    if noun and noun not in _STOP and ctx.objects:
        # A label the record does not have: say so (a count of zero is a fact too).
        line = f"{noun} objects in the record: 0 (labels present: {', '.join(sorted(counts))})"
        return Facts([line], None, "count")
    return None


def _attribute_facts(q: str, ctx: VideoContext) -> Facts | None:
    words = set(_WORD_RE.findall(q))
    for key, spellings in _ATTRIBUTE_WORDS.items():
        if any(s in q for s in spellings):
            hits = objects_with(ctx, key, True)
            if any(key in o.attributes for o in ctx.objects):
                line = f"objects with {key}=true: {len(hits)}" + (
                    f" ({_ids(hits)})" if hits else ""
                )
                n = len(hits)
                direct = (
                    f"According to the record, {n} object{'' if n == 1 else 's'} {key}: "
                    f"{_ids(hits)}."
                    if hits
                    else f"No object in the record {key}."
                )
                return Facts([line], direct, "attribute")
    # Any other attribute value named in the question (``which cars are red?``).
    for o_key in sorted({k for o in ctx.objects for k in o.attributes}):
        values = {str(v).lower() for o in ctx.objects for v in [o.attributes.get(o_key)] if v}
        for v in sorted(values):
            if v in words and v not in ("true", "false"):
                hits = [o for o in ctx.objects if str(o.attributes.get(o_key, "")).lower() == v]
                return Facts([f"objects with {o_key}={v}: {len(hits)} ({_ids(hits)})"], None,
                             "attribute")  # fmt: skip
    return None


def _first_last_facts(q: str, ctx: VideoContext) -> Facts | None:
    if not (_WHEN_RE.search(q) or _FIRST_RE.search(q)) or not _APPEAR_RE.search(q):
        return None
    ids = [o for o in ctx.objects if o.id.lower() in q]
    lines = []
    if ids:
        for o in ids:
            lines.append(f"{o.id}: first seen {_fmt(o.first_seen)}, last seen {_fmt(o.last_seen)}")
        if len(ids) == 1:
            o = ids[0]
            return Facts(lines, f"{o.id} is first seen at [{_fmt(o.first_seen)}] and last seen at "
                                f"[{_fmt(o.last_seen)}].", "first_last")  # fmt: skip
        return Facts(lines, None, "first_last")
    for label in _labels(ctx):
        if re.search(rf"\b{re.escape(label)}s?\b", q):
            objs = sorted((o for o in ctx.objects if o.label == label), key=lambda o: o.first_seen)
            first, last = objs[0], max(objs, key=lambda o: o.last_seen)
            lines.append(
                f"{label} (all {len(objs)}): first seen {_fmt(first.first_seen)} ({first.id}), "
                f"last seen {_fmt(last.last_seen)} ({last.id})"
            )
            want_last = bool(re.search(r"\b(last|latest|leave|leaves)\b", q))
            if want_last:
                direct = f"The last {label} seen is {last.id}, until [{_fmt(last.last_seen)}]."
            else:
                direct = f"The first {label} appears at [{_fmt(first.first_seen)}] ({first.id})."
            return Facts(lines, direct, "first_last")
    return None


_TEXT_RE = re.compile(r"\b(text|written|writes|sign|caption|title|screen|read|says on)\b")
_QUOTED_RE = re.compile(r"[\"“']([^\"”']{3,})[\"”']")


def _speech_near(ctx: VideoContext, start: float, end: float, pad: float) -> list[str]:
    return [
        f"{_fmt(s.start)}–{_fmt(s.end)} speech: {quote(s.text)}"
        for s in ctx.speech
        if s.end >= start - pad and s.start <= end + pad
    ]


def _text_near(ctx: VideoContext, start: float, end: float, pad: float) -> list[str]:
    out = []
    for e in ctx.events:
        if e.kind == "ocr" and e.end >= start - pad and e.start <= end + pad:
            span = _fmt(e.start) if e.end - e.start < 1 else f"{_fmt(e.start)}–{_fmt(e.end)}"
            out.append(f"{span} ocr: {quote(e.text)}")
    return out


_NOT_PLAIN_RE = re.compile(
    r"\b(why|summar\w*|explain|describe|mean|means|and|or|if|think|guess|story|happen\w*)\b"
)


def _plain_lookup(q: str) -> bool:
    """A short question with nothing to reason about, so the computed facts are the answer
    ("who fell?", "how many cars?", "what is said at 00:12?" - not "... and why?")."""
    return not _NOT_PLAIN_RE.search(q) and len(q.split()) <= 14


def _time_facts(q: str, ctx: VideoContext) -> Facts | None:
    times = [_seconds(m) for m in _TIME_RE.finditer(q)]
    if not times:
        return None
    if len(times) >= 2:
        start, end = min(times[:2]), max(times[:2])
    else:
        start = end = times[0]
    pad = 0.0 if len(times) >= 2 else 2.0
    lines: list[str] = []
    kind = None
    direct = None
    asks_text = bool(_TEXT_RE.search(q))
    asks_speech = bool(_SAID_RE.search(q)) and not asks_text
    if asks_text:
        # On-screen text at a time: a pure lookup when the record has exactly that.
        shown = _text_near(ctx, start, end, pad)
        lines += shown or [f"no on-screen text recorded near {_fmt(start)}"]
        kind = "said"
        if len(shown) == 1 and _plain_lookup(q):
            span, _, words = shown[0].partition(" ocr: ")
            direct = f"The on-screen text at [{span}] reads {words}"
    elif asks_speech or len(times) >= 2:
        said = _speech_near(ctx, start, end, pad)
        if len(times) >= 2:
            said += _text_near(ctx, start, end, pad)
        lines += said or [f"nothing said between {_fmt(start - pad)} and {_fmt(end + pad)}"]
        kind = "said"
        if asks_speech and len(said) == 1 and _plain_lookup(q):
            span, _, words = said[0].partition(" speech: ")
            direct = f"At [{span}] the speech is: {words}"
    if (_VISIBLE_RE.search(q) and not asks_text) or not lines:
        vis = visible_at(ctx, start)
        lines.append(f"visible at {_fmt(start)}: {_ids(vis) if vis else 'no tracked object'}")
        kind = kind or "visible"
    return Facts(lines, direct, kind)


def _phrase_facts(q: str, ctx: VideoContext) -> Facts | None:
    """``when does someone say "…"?`` / ``when is "…" shown?``: find the quoted words."""
    m = _QUOTED_RE.search(q)
    if not m or not (_WHEN_RE.search(q) or "where" in q):
        return None
    want = _WORD_RE.findall(m.group(1).lower())
    if not want:
        return None
    hits = []
    for sp in ctx.speech:
        have = set(_WORD_RE.findall(sp.text.lower()))
        if sum(w in have for w in want) >= max(1, 0.8 * len(want)):
            hits.append((sp.start, f"{_fmt(sp.start)}–{_fmt(sp.end)} speech: {quote(sp.text)}"))
    for e in ctx.events:
        if e.kind == "ocr":
            have = set(_WORD_RE.findall(e.text.lower()))
            if sum(w in have for w in want) >= max(1, 0.8 * len(want)):
                hits.append((e.start, f"{_fmt(e.start)} ocr: {quote(e.text)}"))
    hits.sort()
    lines = [h[1] for h in hits] or [f"the words {quote(m.group(1))} are not in the record"]
    direct = None
    if len(hits) == 1 and _plain_lookup(q):
        t, line = hits[0]
        what = "said" if " speech: " in line else "shown on screen"
        direct = f"It is {what} at [{_fmt(t)}]: {line.split(': ', 1)[1]}"
    return Facts(lines, direct, "said")


def facts_for(question: str, ctx: VideoContext) -> Facts:
    """The computed facts that bear on `question` (possibly none), and a direct answer when the
    question is a pure lookup they answer completely (counts, attribute lists, first/last)."""
    q = " ".join(question.lower().split())
    # A question with options to choose from, or several lines, wants its own answer format
    # (a letter, a list...): the facts inform the model, which then answers in that format.
    formatted = "\n" in question.strip() or bool(re.search(r"\(\s*[a-e]\s*\)", q))
    out = Facts()
    for finder in (_phrase_facts, _attribute_facts, _count_facts, _first_last_facts, _time_facts):
        found = finder(q, ctx)
        if found is None:
            continue
        out.lines += [ln for ln in found.lines if ln not in out.lines]
        if out.kind is None:
            plain = _plain_lookup(q) and not formatted
            out.kind, out.direct = found.kind, found.direct if plain else None
        else:
            out.direct = None  # two lookups in one question: let the model phrase both
    return out
