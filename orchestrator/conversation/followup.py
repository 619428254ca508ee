"""Follow-up questions read against the previous answer, by code.

"And what is said right after that?" asked of a small model right after it quoted a speech line
gets the same sentence again: it cannot tell what "that" is. The previous answer's verified
evidence can: its times, the speech segment or on-screen text it rests on, the objects it names.
`Focus` is that part of the conversation's state (typed, kept by `ChatSession`), and `resolve`
turns a relative reference into an explicit one:

- "right after that" / "next" / "before that", asked about speech (or on-screen text): the next
  (previous) speech segment (reading) after (before) the one the answer cited, answered directly;
  asked about anything else: the question about the ten seconds after (before) it;
- "at that moment" / "at the same time" / "meanwhile": the question at the cited time
  (``at 00:12``, or ``from 00:12 to 00:14`` for a span), answered like any question about a time;
- "the same person" / "that person" / "he" / "she": the question about the one object id
  the answer named (``When is person#1 seen again?``).

A question without such a reference, or one the focus cannot resolve (no previous answer, two
objects for "he"), is left as asked (`resolve` returns None).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vidchat.conversation.answer import Answer
from vidchat.conversation.citations import object_mentions
from vidchat.kernel.record import Event, SpeechSegment, VideoContext
from vidchat.kernel.timecode import fmt_span, fmt_time

__all__ = ["FOLLOW_WINDOW_S", "Focus", "Resolved", "focus_of", "resolve"]

# "What happens right after that?" (not about speech or text): this many seconds after it.
FOLLOW_WINDOW_S = 10.0
# A cited line's time is shown in whole seconds: a segment starting within this of it is the one.
MATCH_S = 1.5

_AFTER_RE = re.compile(
    r"\b(?:(?:right|just|straight|immediately|shortly|directly) )?after (?:that|this|it)\b"
    r"|\bafterwards\b|\bnext\b|\bthen\s*\?*$|\bfollows\b|\bcomes after\b"
)
_BEFORE_RE = re.compile(
    r"\b(?:(?:right|just|immediately|shortly|directly) )?before (?:that|this|it)\b"
    r"|\bprior to (?:that|this)\b|\bpreviously\b|\bcomes before\b"
)
_MOMENT_RE = re.compile(
    r"\b(?:at|in) (?:that|this|the same) (?:moment|time|point|instant|second)\b"
    r"|\bat the same time\b|\bmeanwhile\b|\bduring (?:that|this)\b"
    r"|\b(?:while|when) (?:that|this|it) (?:is|was) (?:being )?(?:said|shown|spoken|happening|on "
    r"screen)\b"
)
_SAME_RE = re.compile(
    r"\b(?:the same|that|this) (?:person|man|woman|one|guy|lady|boy|girl|pedestrian|object|"
    r"car|truck|van|dog|cat|animal|vehicle)\b|\b(?:he|she|him|her)\b"
)
_SPEECH_RE = re.compile(
    r"\b(?:said|say|says|spoken|speak|speaks|talk|talks|talked|mention|mentions|mentioned|"
    r"hear|heard|sentence|speech|words?)\b"
)
_TEXT_RE = re.compile(r"\b(?:text|written|writes|sign|caption|title|screen|read|reads)\b")


@dataclass(frozen=True)
class Focus:
    """What the previous answer was about: the record its verified evidence rests on."""

    start: float | None = None  # seconds: the earliest cited time
    end: float | None = None  # the latest
    speech: tuple[SpeechSegment, ...] = ()  # the speech segments it cites, in time order
    texts: tuple[Event, ...] = ()  # the on-screen text readings it cites, in time order
    objects: tuple[str, ...] = ()  # the object ids it names (the answer's own first)


@dataclass(frozen=True)
class Resolved:
    """A follow-up read against the focus: the question with its reference made explicit, how
    it was read, and - when code answers it - the answer and the record lines it rests on."""

    question: str
    reading: str  # e.g. 'after the speech at [00:12–00:14]'
    direct: str | None = None
    lines: tuple[str, ...] = ()


def _segment(ctx: VideoContext, start: float, line: str) -> SpeechSegment | None:
    low = line.lower()
    near = [s for s in ctx.speech if abs(s.start - start) <= MATCH_S]
    said = [s for s in near if " ".join(s.text.lower().split())[:24] in " ".join(low.split())]
    pool = said or near
    return min(pool, key=lambda s: abs(s.start - start)) if pool else None


def _reading(ctx: VideoContext, start: float, line: str) -> Event | None:
    low = line.lower()
    near = [e for e in ctx.events if e.kind == "ocr" and abs(e.start - start) <= MATCH_S]
    shown = [e for e in near if e.text.lower() in low]
    pool = shown or near
    return min(pool, key=lambda e: abs(e.start - start)) if pool else None


def focus_of(answer: Answer, ctx: VideoContext) -> Focus | None:
    """The focus of a finished answer: the times, speech, on-screen text and objects its verified
    (and relevant) evidence cites; the times the answer itself cites when no evidence has one.
    None when the answer points at nothing in the record."""
    if answer.cancelled:
        return None
    spans: list[tuple[float, float]] = []
    speech: dict[float, SpeechSegment] = {}
    texts: dict[float, Event] = {}
    # The ids the answer itself names; those of its evidence only when it names none (a facts
    # line lists the last person too when the answer is about the first).
    ids: list[str] = list(answer.objects)
    named = bool(ids)
    for e in answer.evidence:
        if not e.verified or e.relevant is False:
            continue
        if not named:
            ids += [i for i in e.objects if i not in ids]
        if e.start is None:
            continue
        line = e.line or e.quote
        spans.append((e.start, e.end if e.end is not None else e.start))
        if re.search(r"\bspeech\b", line):
            seg = _segment(ctx, e.start, line)
            if seg is not None:
                speech[seg.start] = seg
        elif re.search(r"\bocr\b", line):
            ev = _reading(ctx, e.start, line)
            if ev is not None:
                texts[ev.start] = ev
    if not spans:
        # No evidence with a time: the answer's own first cited time is what it is about.
        spans = [(c.start, c.end) for c in answer.citations if c.in_video][:1]
    known = {o.id for o in ctx.objects}
    ids = [i for i in ids if i in known]
    if not spans and not ids:
        return None
    return Focus(
        start=min((a for a, _ in spans), default=None),
        end=max((b for _, b in spans), default=None),
        speech=tuple(speech[k] for k in sorted(speech)),
        texts=tuple(texts[k] for k in sorted(texts)),
        objects=tuple(ids),
    )


def _speech_line(s: SpeechSegment) -> str:
    from vidchat.text.facts import speech_line

    return speech_line(s)


def _quote(text: str) -> str:
    from vidchat.text.facts import quote

    return quote(text)


def _next_speech(q: str, focus: Focus, ctx: VideoContext, after: bool) -> Resolved | None:
    """The speech segment right after (before) the one the focus cites (or its time)."""
    segs = sorted(ctx.speech, key=lambda s: s.start)
    if focus.speech:
        anchor = focus.speech[-1] if after else focus.speech[0]
        pivot, span = anchor.start, f"the speech at [{fmt_span(anchor.start, anchor.end)}]"
        pool = [s for s in segs if s.start > pivot + 0.05] if after else [
            s for s in segs if s.start < pivot - 0.05]  # fmt: skip
    elif focus.start is not None and focus.end is not None:
        pivot = focus.end if after else focus.start
        span = f"[{fmt_span(focus.start, focus.end)}]"
        pool = [s for s in segs if s.start >= pivot] if after else [
            s for s in segs if s.end <= pivot]  # fmt: skip
    else:
        return None
    reading = f"{'after' if after else 'before'} {span}"
    if not pool:
        where = "after" if after else "before"
        return Resolved(q, reading, f"Nothing is said {where} that in the record ({span} is the "
                                    f"{'last' if after else 'first'} speech).",
                        (f"no speech {where} {span}",))  # fmt: skip
    s = pool[0] if after else pool[-1]
    lead = "Right after that" if after else "Just before that"
    direct = f"{lead} ({reading}), at [{fmt_span(s.start, s.end)}] the speech is: {_quote(s.text)}"
    return Resolved(q, reading, direct, (_speech_line(s),))


def _next_text(q: str, focus: Focus, ctx: VideoContext, after: bool) -> Resolved | None:
    """The on-screen text reading right after (before) the focus."""
    from vidchat.text.facts import event_line

    reads = sorted((e for e in ctx.events if e.kind == "ocr"), key=lambda e: e.start)
    if focus.texts:
        anchor = focus.texts[-1] if after else focus.texts[0]
        pivot = anchor.start
        span = f"the text at [{fmt_time(anchor.start)}]"
        pool = [e for e in reads if (e.start > pivot + 0.05 if after else e.start < pivot - 0.05)]
    elif focus.start is not None and focus.end is not None:
        span = f"[{fmt_span(focus.start, focus.end)}]"
        pool = [e for e in reads if (e.start >= focus.end if after else e.end <= focus.start)]
    else:
        return None
    reading = f"{'after' if after else 'before'} {span}"
    if not pool:
        where = "after" if after else "before"
        return Resolved(q, reading, f"No on-screen text is read {where} that in the record.",
                        (f"no on-screen text {where} {span}",))  # fmt: skip
    e = pool[0] if after else pool[-1]
    lead = "Right after that" if after else "Just before that"
    direct = (f"{lead} ({reading}), at [{fmt_time(e.start)}] the on-screen text reads "
              f"{_quote(e.text)}")  # fmt: skip
    return Resolved(q, reading, direct, (event_line(e, span=True),))


def _at(focus: Focus) -> str | None:
    """The focus's time as a question names it: ``at 00:12`` or ``from 00:12 to 00:14``."""
    if focus.start is None or focus.end is None:
        return None
    if fmt_time(focus.start) == fmt_time(focus.end):
        return f"at {fmt_time(focus.start)}"
    return f"from {fmt_time(focus.start)} to {fmt_time(focus.end)}"


def resolve(question: str, focus: Focus | None, ctx: VideoContext) -> Resolved | None:
    """`question` read against the previous answer's `focus` (see the module docstring), or None
    when it has no relative reference the focus resolves."""
    if focus is None:
        return None
    said = " ".join(question.split())
    q = said.lower()
    if len(q) != len(said):
        said = q  # a lower-casing that changes the length: splice into the lower-cased text
    after, before = _AFTER_RE.search(q), _BEFORE_RE.search(q)
    if after or before:
        forward = bool(after) and not (before and before.start() < after.start())  # type: ignore[union-attr]
        about_text = bool(_TEXT_RE.search(q)) and not _SPEECH_RE.search(q)
        if about_text:
            return _next_text(said, focus, ctx, forward)
        if _SPEECH_RE.search(q) or (focus.speech and not re.search(r"\bhappen", q)):
            return _next_speech(said, focus, ctx, forward)
        if focus.start is None or focus.end is None:
            return None
        a, b = ((focus.end, focus.end + FOLLOW_WINDOW_S) if forward
                else (max(0.0, focus.start - FOLLOW_WINDOW_S), focus.start))  # fmt: skip
        m = after if forward else before
        assert m is not None
        window = f"from {fmt_time(a)} to {fmt_time(b)}"
        side = "after" if forward else "before"
        reading = f"{window} (the {FOLLOW_WINDOW_S:.0f} s {side} it)"
        return Resolved(said[: m.start()] + window + said[m.end() :], reading)
    m = _MOMENT_RE.search(q)
    if m:
        at = _at(focus)
        if at is None:
            return None
        return Resolved(said[: m.start()] + at + said[m.end() :], at)
    m = _SAME_RE.search(q)
    if m and len(focus.objects) == 1 and not object_mentions(q):
        oid = focus.objects[0]
        return Resolved(said[: m.start()] + oid + said[m.end() :], f"{m.group(0)!r} = {oid}")
    return None
