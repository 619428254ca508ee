"""Facts computed from the record by code, for the questions a small model gets wrong by reading.

A 1.5B model miscounts a list of forty objects and names the wrong people when asked which of them
fell. These questions have exact answers in the record, so code computes them:

- counts per label (``how many persons?``), and of shot cuts;
- first and last appearance of a label or an object (``when does the dog first appear?``);
- objects with a given attribute (``who fell?`` -> every object whose ``fell`` is true);
- what is visible at a time (``what is visible at 00:40?``);
- what was said (and shown as text) in a window (``what is said between 00:10 and 00:30?``);
- who said something (``who said "the train leaves early"?``): the speech segment, its speaker
  label and the person that speaker is linked to, with how the link was made;
- what the record does NOT have: a thing the question names that no tracked object, tag or
  caption shows (``what colour is the car?`` over a record without cars), or a topic no speech
  mentions (``what does the narrator say about the price?``). A small model asked about a thing
  the record lacks invents it; told so in a computed line, it says so;
- what is said about a topic (``what does the speaker say about soccer?``): the sentences that
  mention it by its words, their inflections, synonyms or kinds (`vidchat.text.topics`), and
  when none does, an answer saying so with what is said instead;
- actions (``does anyone fall down?``): from the perception that sees them (action labels,
  captions, a posture model) or, where none ran, "the record cannot tell" with the perception
  that would be needed (`vidchat.text.actions`);
- a time named in speech (``when does the train leave?`` -> "early in the morning", cited where
  it is said), not a time of the video;
- what is seen of a kind (``which vehicles can be seen?``) and ``is there a cup?``.

`facts_for(question, ctx)` returns the facts that bear on a question, as record-style lines the
model is asked to rely on, and, when the question is a pure lookup that the facts answer in full,
a `direct` answer that needs no model at all.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from vidchat.kernel.record import Event, ObjectTrack, SpeechSegment, VideoContext
from vidchat.kernel.timecode import parse_timecode
from vidchat.perceivers.detect import ANIMAL_LABELS, VEHICLE_LABELS

__all__ = [
    "Facts",
    "SpeakerLine",
    "event_line",
    "exists_subject",
    "facts_for",
    "label_counts",
    "max_at_once",
    "missing_things",
    "objects_with",
    "said_between",
    "speaker_of",
    "speech_mentioning",
    "visible_at",
]

_TIME = r"(?:(\d{1,2}):)?(\d{1,3}):(\d{2})(?:\.\d+)?"
_TIME_RE = re.compile(_TIME)
_WORD_RE = re.compile(r"[a-z][a-z\-]+")
_OBJECT_ID_RE = re.compile(r"[a-z][a-z0-9_\-]*#\d+")
# Share of a quote's content words a speech segment must have to be the one "who said" asks about.
WHO_SAID_MATCH = 0.6
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
    from vidchat.kernel.timecode import fmt_time

    return fmt_time(t)


def quote(text: str) -> str:
    """Video text quoted as the renderer quotes it (one JSON string: data, never prose)."""
    from vidchat.text.render import quote as render_quote

    return render_quote(text)


def speech_line(s: SpeechSegment) -> str:
    """A speech segment as a record-style line (``00:20–00:24 speech: "…"``), the form every
    computed fact quotes speech in, so evidence that copies it verifies against the record."""
    return f"{_fmt(s.start)}–{_fmt(s.end)} speech: {quote(s.text)}"


def event_line(e: Event, span: bool = False) -> str:
    """An event (on-screen text, a caption, a tag) as a record-style line (``00:10 ocr: "…"``),
    the form every computed fact quotes it in, like `speech_line`. `span`: a reading that lasts a
    second or more is shown with its end (``00:10–00:13 ocr: "…"``)."""
    when = _fmt(e.start)
    if span and e.end - e.start >= 1:
        when = f"{_fmt(e.start)}–{_fmt(e.end)}"
    return f"{when} {e.kind}: {quote(e.text)}"


def _seconds(m: re.Match[str]) -> float:
    """The whole second a time found in a question names (``01:15.5`` asks about 01:15), read by
    the one timecode parser; lenient as typed (``1:75`` is 135 s) since `_TIME` shaped it."""
    return float(int(parse_timecode(m.group(0), strict=False)))


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
            lines.append(speech_line(s))
    for e in ctx.events:
        if e.kind == "ocr" and e.end >= start and e.start <= end:
            lines.append(event_line(e))
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


def _spoken(label: str) -> str:
    """A record label as a word of the question (``dining_table`` -> ``dining table``)."""
    return label.replace("_", " ")


def max_at_once(objs: list[ObjectTrack]) -> tuple[int, float]:
    """The most of `objs` whose first..last spans overlap at one time, and the first such time.

    Spans include the gaps where a tracker lost an object, so this is an upper bound of how many
    were on screen together (0, 0.0 for no objects)."""
    marks = sorted([(o.first_seen, 1) for o in objs] + [(o.last_seen, -1) for o in objs],
                   key=lambda m: (m[0], -m[1]))  # fmt: skip
    best, at, now = 0, 0.0, 0
    for t, step in marks:
        now += step
        if now > best:
            best, at = now, t
    return best, at


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
        spoken = _spoken(label)
        if noun == spoken or noun == _singular(spoken) or noun in spoken.split():
            objs = [o for o in ctx.objects if o.label == label]
            n = counts[label]
            line = f"{label} objects in the record: {n} ({_ids(objs)})"
            direct = f"The record tracks {n} {spoken}{'' if n == 1 else 's'}: {_ids(objs)}."
            peak, at = max_at_once(objs)
            lost = "someone" if label == "person" else "an object"
            if peak == 1 and n > 1:
                line += "; never two on screen at once"
                direct = (
                    f"The record tracks {n} {spoken}s ({_ids(objs)}), never two of them on "
                    f"screen at once. A tracker gives a new id to {lost} it loses and finds "
                    f"again, so {n} ids may be fewer different {spoken}s."
                )
            elif peak < n:
                # Tracks are not people: a tracker that loses someone and finds them again gives
                # a new id, so the number of ids is the record's count, not a head count. The
                # most seen together is the other bound the record can state.
                line += f"; at most {peak} on screen at once ({_fmt(at)})"
                direct = (
                    f"The record tracks {n} {spoken}s ({_ids(objs)}); at most {peak} of them are "
                    f"on screen at once (at [{_fmt(at)}]). A tracker gives a new id to {lost} "
                    f"it loses and finds again, so {n} ids may be fewer different {spoken}s."
                )
            joined = [o.id for o in objs if "reidentified" in o.attributes]
            if joined:
                # The detector already joined these across cuts by appearance: say so, so a
                # reader does not take their gaps for two different persons.
                who = ", ".join(joined)
                line += f"; {who} re-identified after a cut (one id for each stretch)"
                direct += (
                    f" {who} {'was' if len(joined) == 1 else 'were'} seen again after a shot cut"
                    " and kept the same id (same appearance)."
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
    from vidchat.text.actions import used_as_verb

    words = set(_WORD_RE.findall(q))
    for key, spellings in _ATTRIBUTE_WORDS.items():
        # "who fell?", not "is there a fall in the price?" (a noun) or "waterfall".
        if any(
            used_as_verb(q, m.start())
            for s in spellings
            for m in re.finditer(rf"(?<![a-z]){re.escape(s)}(?![a-z])", q)
        ):
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
    # A value that is also a label ("class=person", "also_seen_as=person") names a kind of object,
    # not a property: "when does the first person appear?" is not about that attribute.
    labels = {_spoken(o.label) for o in ctx.objects} | {o.label for o in ctx.objects}
    for o_key in sorted({k for o in ctx.objects for k in o.attributes}):
        values = {str(v).lower() for o in ctx.objects for v in [o.attributes.get(o_key)] if v}
        for v in sorted(values - labels):
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


# A lookup with more hits than this is a list for the model to phrase, not a direct answer.
MAX_DIRECT_HITS = 3

_TEXT_RE = re.compile(r"\b(text|written|writes|sign|caption|title|screen|read|says on)\b")
_QUOTED_RE = re.compile(r"[\"“']([^\"”']{3,})[\"”']")


def _speech_near(ctx: VideoContext, start: float, end: float, pad: float) -> list[str]:
    return [speech_line(s) for s in ctx.speech if s.end >= start - pad and s.start <= end + pad]


def _text_near(ctx: VideoContext, start: float, end: float, pad: float) -> list[str]:
    out = []
    for e in ctx.events:
        if e.kind == "ocr" and e.end >= start - pad and e.start <= end + pad:
            out.append(event_line(e, span=True))
    return out


# A time asked as mm:ss is that whole second: "at 01:15" is covered by a line from 75.0 to 75.99
# (as the line's own shown time, 01:15, says).
SECOND_S = 0.999

_NOT_PLAIN_RE = re.compile(
    r"\b(why|summar\w*|explain|describe|mean|means|and|or|if|think|guess|story|happen\w*)\b"
)


# A conjunction that opens a follow-up ("And is he the same as…?", "So how many…?") joins the
# question to the conversation, not two questions together.
_OPENING_CONJUNCTION_RE = re.compile(r"^\s*(?:and|so|but|then|also|now|ok(?:ay)?)\b[\s,]*")


# "…, and when?" after a question whose facts give every sighting's times (the tracked objects
# of a kind: "seen first […], last […]") asks for nothing the facts do not already say.
_AND_WHEN_RE = re.compile(r",?\s+and\s+when\b[^?.!]*[?.!]?\s*$", re.IGNORECASE)
# Lookups whose facts carry the first and last time of what they list.
_TIMED_KINDS = ("seen",)


def _plain_lookup(q: str) -> bool:
    """A short question with nothing to reason about, so the computed facts are the answer
    ("who fell?", "how many cars?", "what is said at 00:12?" - not "... and why?")."""
    q = _QUOTED_RE.sub('"…"', q)  # the quoted words are data: their "and" asks for nothing
    q = _OPENING_CONJUNCTION_RE.sub("", q)
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
        # On-screen text at a time: a pure lookup when the record has exactly that. Text read at
        # that very time is the answer; the neighbours within `pad` only when none was.
        covering = _text_near(ctx, start, end + SECOND_S, 0.0) if pad else []
        shown = covering or _text_near(ctx, start, end, pad)
        if pad and shown and not covering:
            lines.append(f"no on-screen text was read at {_fmt(start)} itself; nearest readings:")
        lines += shown or [f"no on-screen text recorded near {_fmt(start)}"]
        kind = "said"
        if len(shown) == 1 and _plain_lookup(q):
            span, _, words = shown[0].partition(" ocr: ")
            direct = f"The on-screen text at [{span}] reads {words}"
        elif pad and not covering and 1 < len(shown) <= MAX_DIRECT_HITS and _plain_lookup(q):
            # Between two readings: which one was on screen then is not in the record (OCR
            # reads a frame every few seconds), so both are the answer, said as such.
            readings = "; ".join(
                f"{words} at [{span}]"
                for span, _, words in (ln.partition(" ocr: ") for ln in shown)
            )
            direct = (
                f"No on-screen text was read at [{_fmt(start)}] itself. The nearest readings: "
                f"{readings}. Text is read from a frame every few seconds, so either may have "
                "been on screen then."
            )
    elif asks_speech or len(times) >= 2:
        covering = _speech_near(ctx, start, end + SECOND_S, 0.0) if pad else []
        said = covering or _speech_near(ctx, start, end, pad)
        if pad and said and not covering:
            lines.append(f"nothing is being said at {_fmt(start)} itself; nearest speech:")
        if len(times) >= 2:
            said += _text_near(ctx, start, end, pad)
        lines += said or [f"nothing said between {_fmt(start - pad)} and {_fmt(end + pad)}"]
        kind = "said"
        if asks_speech and len(said) == 1 and _plain_lookup(q):
            span, _, words = said[0].partition(" speech: ")
            direct = f"At [{span}] the speech is: {words}"
            if not covering and pad:
                direct = f"Nothing is said at [{_fmt(start)}] itself; nearest: [{span}] {words}"
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
            hits.append((sp.start, speech_line(sp)))
    for e in ctx.events:
        if e.kind == "ocr":
            have = set(_WORD_RE.findall(e.text.lower()))
            if sum(w in have for w in want) >= max(1, 0.8 * len(want)):
                hits.append((e.start, event_line(e)))
    hits.sort()
    lines = [h[1] for h in hits] or [f"the words {quote(m.group(1))} are not in the record"]
    direct = None
    if len(hits) == 1 and _plain_lookup(q):
        t, line = hits[0]
        what = "said" if " speech: " in line else "shown on screen"
        direct = f"It is {what} at [{_fmt(t)}]: {line.split(': ', 1)[1]}"
    elif 1 < len(hits) <= MAX_DIRECT_HITS and _plain_lookup(q):
        # Said (or shown) more than once: every time is the answer, not the first one.
        parts = []
        for t, line in hits:
            what = "said" if " speech: " in line else "shown"
            parts.append(f"{what} at [{_fmt(t)}]: {line.split(': ', 1)[1]}")
        direct = f"It appears {len(hits)} times in the record: " + "; ".join(parts) + "."
    elif not hits and _plain_lookup(q):
        direct = f"The record has no speech or on-screen text with the words {quote(m.group(1))}."
    return Facts(lines, direct, "said")


# ---------------------------------------------------------------------------------------------
# Who said it: the speech segment, its speaker label, and the person that voice is linked to


@dataclass(frozen=True)
class SpeakerLine:
    """One speech segment with who said it, as far as the record knows."""

    segment: SpeechSegment
    speaker: str | None  # "speaker 2", or None when the record has no speaker labels
    person: str | None = None  # the object id the speaker is linked to, if any
    link: str | None = None  # how the link was made ("only person on screen for 90% ...")
    speakers: int | None = None  # how many voices the speakers perceiver told apart

    def describe(self) -> str:
        """Who said it, in words (for a facts line)."""
        if self.speaker is None:
            return "no speaker label"
        voices = ""
        if self.speakers == 1:
            voices = " (the only voice told apart)"
        elif self.speakers:
            voices = f" (one of {self.speakers} voices told apart)"
        if self.person:
            return f"{self.speaker}{voices}, linked to {self.person}: {self.link or 'no reason'}"
        return f"{self.speaker}{voices}, not linked to any person"


def speaker_of(ctx: VideoContext, segment: SpeechSegment) -> SpeakerLine:
    """Who said `segment`: the ``speakers`` perceiver's event for it (same start and end), else
    the segment's own speaker field."""
    for e in ctx.events:
        if (
            e.kind == "speaker"
            and round(e.start, 3) == round(segment.start, 3)
            and round(e.end, 3) == round(segment.end, 3)
        ):
            person = e.data.get("person")
            link = e.data.get("link")
            n = e.data.get("speakers")
            return SpeakerLine(
                segment,
                str(e.data.get("speaker") or e.text.split(",")[0]),
                str(person) if person else None,
                str(link) if link else None,
                int(n) if isinstance(n, int | float) and not isinstance(n, bool) else None,
            )
    return SpeakerLine(segment, segment.speaker)


def _no_speakers_reason(ctx: VideoContext) -> str:
    for p in ctx.provenance:
        if p.name == "speakers":
            return f"the speakers perceiver {p.status}" + (f": {p.reason}" if p.reason else "")
    return "the speakers perceiver did not run"


_WHO_SAID_RE = re.compile(
    r"\bwho(?:'s|\s+is|\s+was)?\b(?:\s+[a-z]+){0,2}?\s+"
    r"(said|says|say|saying|speaks|spoke|speaking|talks|talking|talked|mentions|mentioned|"
    r"asks|asked|tells|told|shouts|shouted|announces|announced)\b(.*)"
)
_TARGET_LEAD_RE = re.compile(r"^\s*(?:that|the words?|the phrase|the sentence|about|:|,)\s*")


def _content_words(text: str) -> list[str]:
    return [w for w in _WORD_RE.findall(text.lower()) if w not in _STOP and w not in _FILLER]


def _stem(word: str) -> str:
    """A crude stem for matching a question's words to speech (price, prices, priced)."""
    word = word.lower().removesuffix("'s")
    return word[:5] if len(word) >= 5 else word.removesuffix("s")


def _speaker_facts(q: str, ctx: VideoContext) -> Facts | None:
    m = _WHO_SAID_RE.search(q)
    if not m:
        return None
    quoted = _QUOTED_RE.search(q)
    target = quoted.group(1) if quoted else _TARGET_LEAD_RE.sub("", m.group(2)).strip(" ?.!")
    times = [_seconds(t) for t in _TIME_RE.finditer(q)]
    want = {_stem(w) for w in _content_words(target) if not _TIME_RE.search(w)}
    hits: list[SpeechSegment] = []
    order = target.split()[0] if target.split() and not quoted else ""
    if order in ("first", "last") and ctx.speech:
        # "who speaks first?": the first (last) speech segment's speaker.
        hits = [min(ctx.speech, key=lambda s: s.start)] if order == "first" else [
            max(ctx.speech, key=lambda s: s.end)]  # fmt: skip
    elif times and not quoted:
        t = times[0]
        hits = [s for s in ctx.speech if s.start <= t + SECOND_S and s.end >= t]
    elif want:
        scored = []
        for s in ctx.speech:
            have = {_stem(w) for w in _WORD_RE.findall(s.text.lower())}
            share = len(want & have) / len(want)
            if share >= WHO_SAID_MATCH:
                scored.append((-share, s.start, s))
        best = min((x[0] for x in scored), default=0.0)
        hits = [x[2] for x in sorted(scored, key=lambda x: x[:2]) if x[0] == best]
    else:
        return None
    what = quote(target) if target else f"at {_fmt(times[0])}" if times else "that"
    if not ctx.speech:
        line = "the record has no speech"
        return Facts([line], "The record has no speech, so nobody is heard saying that.", "who")
    if not hits:
        if not (quoted or times):
            return None  # "who speaks loudly?": not a quote to look up, the model answers
        line = f"no speech in the record matches {what}"
        direct = f"No speech in the record matches {what}." if quoted or times else None
        return Facts([line], direct, "who")
    who = [speaker_of(ctx, s) for s in hits]
    lines = [f"{speech_line(w.segment)} — said by {w.describe()}" for w in who]
    direct = None
    if len(who) <= MAX_DIRECT_HITS:
        parts = []
        for w in who:
            span = f"[{_fmt(w.segment.start)}–{_fmt(w.segment.end)}]"
            words = quote(w.segment.text)
            if w.speaker is None:
                why = _no_speakers_reason(ctx)
                parts.append(
                    f"It is said at {span} ({words}); the record has no speaker labels ({why}), "
                    "so it cannot say who said it."
                )
            elif w.person:
                parts.append(
                    f"{w.speaker.capitalize()} says it at {span} ({words}); the record links "
                    f"{w.speaker} to {w.person} ({w.link or 'no reason given'})."
                )
            else:
                parts.append(
                    f"{w.speaker.capitalize()} says it at {span} ({words}); the record does not "
                    f"link {w.speaker} to any person on screen, so who that is is not known."
                )
        direct = " ".join(parts)
    return Facts(lines, direct, "who")


# ---------------------------------------------------------------------------------------------
# What the record does not have: a named thing nobody saw, a topic nobody spoke about

# Question words for COCO labels besides the label itself (the detector's vocabulary), and the
# words that show the same thing in tags and captions. A van is found as a truck or a car.
_THING_WORDS: dict[str, tuple[str, ...]] = {
    "person": ("man", "men", "woman", "women", "boy", "girl", "child", "children", "kid",
               "people", "pedestrian", "human"),
    "bicycle": ("bike", "cyclist"),
    "car": ("automobile", "taxi", "cab", "sedan", "convertible", "jeep", "limousine", "minivan",
            "sports car", "station wagon", "beach wagon", "van"),
    "motorcycle": ("motorbike", "scooter", "moped"),
    "airplane": ("plane", "aeroplane", "aircraft", "airliner", "jet"),
    "bus": ("coach", "minibus"),
    "truck": ("lorry", "van", "pickup", "trailer truck", "moving van"),
    "boat": ("ship", "ferry", "yacht", "sailboat", "canoe", "kayak", "speedboat"),
    "traffic light": ("stoplight", "traffic signal"),
    "dog": ("puppy", "hound"),
    "cat": ("kitten", "tabby", "tiger cat", "egyptian cat"),
    "horse": ("pony",),
    "tv": ("television",),
    "couch": ("sofa",),
    "cell phone": ("phone", "smartphone", "mobile phone"),
    "dining table": ("table",),
    "potted plant": ("houseplant", "pot plant"),
    "cup": ("mug", "coffee mug"),
    "handbag": ("purse",),
    "sports ball": ("ball", "football", "soccer ball"),
}  # fmt: skip
# Labels that are also adjectives ("the orange car"): a thing only when no noun follows.
_ADJECTIVE_LABELS = frozenset({"orange"})
# Event kinds whose text shows what is seen (not what is said or written in the video).
_SEEN_KINDS_CLOSED = frozenset({"tag"})  # a fixed label set, like the detector's
_SEEN_KINDS_FREE = frozenset({"caption", "action", "object_description"})  # free text
_YES_NO_RE = re.compile(r"^(is|are|was|were|do|does|did|can|could|has|have|will)\b")
_FILLER = {
    "narrator", "speaker", "someone", "somebody", "anyone", "anybody", "say", "says", "said",
    "talk", "talks", "about", "mention", "mentions", "mentioned", "anything", "something", "what",
    "does", "do", "did", "this", "that", "they", "he", "she", "it", "at", "to", "on", "and", "for",
    "with", "tell", "tells", "told", "us", "me", "any", "all", "ever", "again",
}  # fmt: skip


@dataclass(frozen=True)
class _Thing:
    """A thing the question names: its words and the detector labels that would show it."""

    name: str
    labels: frozenset[str]

    @property
    def words(self) -> set[str]:
        out = {self.name}
        for label in self.labels:
            out |= {label, *_THING_WORDS.get(label, ())}
        return out


def _coco_labels() -> tuple[str, ...]:
    from vidchat.perceivers.detect import COCO_CLASSES

    return COCO_CLASSES


def _named_things(q: str) -> list[_Thing]:
    """The COCO things a question names, longest phrases first, each once."""
    names: dict[str, set[str]] = {}
    for label in _coco_labels():
        names.setdefault(label, set()).add(label)
    for label, words in _THING_WORDS.items():
        for w in words:
            names.setdefault(w, set()).add(label)
    found: list[_Thing] = []
    taken: list[tuple[int, int]] = []
    for name in sorted(names, key=len, reverse=True):
        suffix = "(?:es|s)?" if not name.endswith(("men", "ren", "ple")) else ""
        for m in re.finditer(rf"(?<![\w#]){re.escape(name)}{suffix}(?![\w#])", q):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue  # part of a longer name ("car" in "sports car")
            if name in _ADJECTIVE_LABELS and re.match(r"\s+[a-z]", q[m.end() :]):
                continue
            taken.append((m.start(), m.end()))
            if all(t.name != name for t in found):
                found.append(_Thing(name, frozenset(names[name])))
    return found


def _mentions(text: str, words: set[str]) -> bool:
    low = text.lower()
    return any(re.search(rf"(?<![a-z]){re.escape(w)}(?:es|s)?(?![a-z])", low) for w in words)


def _detector_vocabulary(ctx: VideoContext) -> frozenset[str] | None:
    """The labels the record's object detector looks for, when the record says which detector
    ran (None: unknown, so an absent label proves nothing)."""
    for p in ctx.provenance:
        if p.name == "detect" and p.status == "ok":
            model = (p.model or str(p.options.get("model", ""))).lower()
            if "coco" in model:
                return frozenset(_coco_labels())
            if "persons" in model or "fall" in model:
                return frozenset({"person"})
    return None


def missing_things(question: str, ctx: VideoContext) -> list[tuple[str, list[str]]]:
    """Things (COCO objects) the question names that nothing seen in the record shows: no
    tracked object has the label, and no tag or caption names it. Each comes with the record
    lines that only *mention* it (speech, on-screen text), which are not sightings."""
    q = " ".join(question.lower().split())
    out = []
    labels = {_spoken(o.label) for o in ctx.objects}
    for thing in _named_things(q):
        if thing.labels & labels:
            continue
        seen = [e for e in ctx.events
                if (e.kind in _SEEN_KINDS_CLOSED or e.kind in _SEEN_KINDS_FREE)
                and _mentions(e.text, thing.words)]  # fmt: skip
        if seen:
            continue
        said = [speech_line(s) for s in ctx.speech if _mentions(s.text, {thing.name})]
        said += [
            event_line(e) for e in ctx.events if e.kind == "ocr" and _mentions(e.text, {thing.name})
        ]
        out.append((thing.name, said))
    return out


def _missing_facts(q: str, ctx: VideoContext) -> Facts | None:
    if _SAID_RE.search(q) or _TEXT_RE.search(q) or _OBJECT_ID_RE.search(q):
        return None  # about what is said or written, or about a known object: not a sighting
    if any(e.kind in _SEEN_KINDS_FREE for e in ctx.events):
        # Captions describe things in their own words ("a police officer on horseback",
        # "pigeons scatter"): a word check cannot say a horse or a bird is missing, and a line
        # saying so would talk the model out of what the captions show.
        return None
    things = _named_things(q)
    missing = missing_things(q, ctx)
    if not missing:
        return None
    vocabulary = _detector_vocabulary(ctx)
    have = ", ".join(sorted({_spoken(o.label) for o in ctx.objects})) or "none"
    lines = []
    for name, said in missing:
        labels = next(t.labels for t in things if t.name == name)
        looked = vocabulary is not None and labels <= vocabulary
        how = (
            "the object detector looks for it and tracked none"
            if looked
            else "no tracked object has that label"
        )
        lines.append(f"no {name} is seen in the record: {how}, and no tag or caption names one "
                     f"(tracked labels: {have})")  # fmt: skip
        lines += [f"{ln} (a mention of {name}, not a sighting)" for ln in said]
    direct = None
    # Answered by code only when that is certain: every named thing is missing, the detector
    # looks for each of them, and nobody mentions it (then the question may be about the words).
    if (
        len(missing) == len(things)
        and vocabulary is not None
        and all(next(t.labels for t in things if t.name == n) <= vocabulary for n, _ in missing)
        and not any(said for _, said in missing)
    ):
        names = " or ".join(f"{'an' if n[0] in 'aeiou' else 'a'} {n}" for n, _ in missing)
        lead = "No. " if _YES_NO_RE.match(q) else ""
        direct = (f"{lead}The record does not show {names}: the object detector looks for "
                  f"{'them' if len(missing) > 1 else 'it'} and tracked none (tracked: {have}), "
                  "and no tag names one.")  # fmt: skip
    return Facts(lines, direct, "absent")


_TOPIC_RE = re.compile(
    r"\b(?:say|says|said|saying|talk|talks|talked|talking|speak|speaks|spoke|speaking|tell|"
    r"tells|told|mention|mentions|mentioned|mentioning)\b(?:\s+(?:anything|something|nothing))?"
    r"\s+(?:about|of|regarding|on)\s+(.+)"
    r"|\b(?:mention|mentions|mentioned|mentioning|discuss|discusses|discussed)\s+(.+)"
)
# At most this many speech segments are quoted in a "nothing about that" answer.
MAX_QUOTED_SEGMENTS = 3


def speech_mentioning(ctx: VideoContext, words: list[str]) -> list[SpeechSegment]:
    """Speech segments that mention any of `words`: the word, an inflection of it (price,
    prices, priced) or a related word (soccer: football; see `vidchat.text.topics`)."""
    from vidchat.text.topics import mentions

    return [s for s in ctx.speech if mentions(s.text, words)]


def _matched(text: str, words: list[str]) -> str:
    """How `text` mentions `words`: "price" (its own word) or "football" for soccer."""
    from vidchat.text.topics import mentions, stem

    have = {stem(w): w for w in _WORD_RE.findall(text.lower())}
    parts = []
    for w in mentions(text, words):
        own = have.get(stem(w))
        if own:
            parts.append(quote(own))
        else:
            from vidchat.text.topics import related

            other = next((v for k, v in have.items() if k in related(w)), "")
            # The asked word is not quoted: it is the question's, not a quote of the record.
            parts.append(f"{quote(other)} (for {w})")
    return ", ".join(parts)


def _topic_facts(q: str, ctx: VideoContext) -> Facts | None:
    """``what does the narrator say about the price of the house?``: the speech (and on-screen
    text) that mentions it, or - when nothing does - an answer saying so, with what is said."""
    from vidchat.text.topics import mentions, topic_words

    m = _TOPIC_RE.search(_QUOTED_RE.sub(" ", q))
    if not m:
        return None
    asked = _TIME_RE.sub("", m.group(1) or m.group(2) or "").strip(" ?.!")
    words = topic_words(asked)
    if not words:
        return None
    # "the price of the house": the phrase as asked, for the answer's own words.
    phrase = re.sub(r"\b(?:in|of) (?:the|this) (?:video|clip|record(?:ing)?)\b", "", asked)
    phrase = " ".join(phrase.split()) or " ".join(words)
    named = " or ".join(quote(w) for w in words)
    shown = [e for e in ctx.events if e.kind == "ocr" and mentions(e.text, words)]
    if not ctx.speech:
        return Facts(
            ["the record has no speech"] + [event_line(e) for e in shown],
            None if shown else f"The record has no speech, so nothing is said about {phrase}.",
            "topic",
        )
    hits = speech_mentioning(ctx, words)
    if not hits:
        lines = [f"no speech in the record mentions {named} "
                 f"({len(ctx.speech)} speech segments checked)"]  # fmt: skip
        lines += [f"{event_line(e)} (on-screen text, not speech)" for e in shown]
        said = "; ".join(f"[{_fmt(s.start)}–{_fmt(s.end)}] {quote(s.text)}"
                         for s in ctx.speech[:MAX_QUOTED_SEGMENTS])  # fmt: skip
        more = len(ctx.speech) - MAX_QUOTED_SEGMENTS
        said += f"; and {more} more segment{'s' if more > 1 else ''}" if more > 0 else ""
        if shown:
            # The text may mention only part of the topic ("tickets" of "the price of the
            # tickets"): say which words it has, not that it is about the whole topic.
            texts = "; ".join(f"[{_fmt(e.start)}] {quote(e.text)}" for e in shown[:3])
            has = " or ".join(quote(w) for w in words if any(mentions(e.text, [w]) for e in shown))
            nothing = (f"Nothing said in the record mentions {phrase}. On-screen text mentions "
                       f"{has}: {texts} - written, not said. What is said: {said}.")  # fmt: skip
        else:
            nothing = (f"Nothing said in the record mentions {phrase}, and no on-screen text "
                       f"does. What is said: {said}.")  # fmt: skip
        return Facts(lines, nothing, "topic")
    lines = [f"speech mentioning {named}: {len(hits)} of {len(ctx.speech)} segments"]
    lines += [f"{speech_line(s)} (mentions {_matched(s.text, words)})" for s in hits[:6]]
    lines += [event_line(e) for e in shown[:3]]
    direct: str | None = None
    if len(hits) <= MAX_DIRECT_HITS:
        # Words of the topic no segment mentions at all ("price" of "the price of the house"
        # when only "house" is said) are said to be missing, not glossed over.
        unmet = [w for w in words if not any(mentions(s.text, [w]) for s in hits)]
        parts = [f"at [{_fmt(s.start)}–{_fmt(s.end)}]: {quote(s.text)} (it mentions "
                 f"{_matched(s.text, words)})" for s in hits]  # fmt: skip
        direct = f"What is said about {phrase}, " + "; ".join(parts) + "."
        if unmet:
            met = " or ".join(quote(w) for w in words if w not in unmet)
            direct = (f"Nothing said mentions {' or '.join(quote(w) for w in unmet)}; speech "
                      f"that mentions {met} is " + "; ".join(parts) + ".")  # fmt: skip
    return Facts(lines, direct, "topic")


# ---------------------------------------------------------------------------------------------
# What is seen: "which vehicles can be seen?", "is there a cup?"

# Kinds of things a question may ask for, as the detector's (COCO) labels that are of that kind:
# the detector's own label families (one tracker each), so the two cannot disagree.
CATEGORIES: dict[str, frozenset[str]] = {"vehicle": VEHICLE_LABELS, "animal": ANIMAL_LABELS}
_CATEGORY_RE = re.compile(
    r"\b(?:which|what|any|are there|list|name)\b(?:\s+\w+){0,2}?\s+(vehicles?|animals?)\b"
)
_EXISTS_RE = re.compile(
    r"^(?:is|are|was|were) there\b|^(?:can|could|do|did) (?:you|we|i|one) see\b"
    r"|^(?:does|did) (?:the video|the clip|it|this video) (?:show|have|contain)\b"
)


# Where a thing asked about is ("on the table", "in the video"): the words after it are not it.
_WHERE_RE = re.compile(
    r"\s+(?:on|in|at|near|by|under|over|with|from|behind|inside|during|anywhere|around|beside|"
    r"next to|into|onto|across|along|outside|above|below)\b.*$"
)
_EXISTS_LEAD_RE = re.compile(
    r"^(?:(?:is|are|was|were) there|(?:can|could|do|did) (?:you|we|i|one) see|(?:does|did) "
    r"(?:the video|the clip|it|this video) (?:show|have|contain))\s+(?:(?:a|an|any|some|the)\s+)?"
)


def exists_subject(question: str) -> str | None:
    """What an "is there X?" question asks about: the words after "is there a" up to where it
    is ("a drink on the table" -> "drink"; "a wave on the sea" -> "wave"); None for another
    kind of question."""
    q = " ".join(question.lower().split()).rstrip("?!. ")
    m = _EXISTS_LEAD_RE.match(q)
    if not m:
        return None
    subject = _WHERE_RE.sub("", q[m.end() :]).strip()
    return subject or None


def _plural(label: str) -> str:
    """A detector label in the plural (``sheep``, ``buses``, ``dining tables``)."""
    word = _spoken(label)
    if word.endswith(("sheep", "skis")):
        return word
    return word + ("es" if word.endswith(("s", "sh", "ch")) else "s")


def _seen_list(objs: list[ObjectTrack]) -> str:
    by_label: dict[str, list[ObjectTrack]] = {}
    for o in sorted(objs, key=lambda o: o.first_seen):
        by_label.setdefault(o.label, []).append(o)
    parts = []
    for label, group in by_label.items():
        ids = ", ".join(o.id for o in group[:MAX_DIRECT_HITS])
        ids += f" and {len(group) - MAX_DIRECT_HITS} more" if len(group) > MAX_DIRECT_HITS else ""
        # First and last sighting, not a span: the tracks may have gaps in between.
        first, last = group[0].first_seen, max(o.last_seen for o in group)
        span = f"first [{_fmt(first)}], last [{_fmt(last)}]"
        name = _spoken(label) if len(group) == 1 else _plural(label)
        parts.append(f"{len(group)} {name} ({ids}; seen {span})")
    return "; ".join(parts)


def _present_facts(q: str, ctx: VideoContext) -> Facts | None:
    """``which vehicles can be seen?`` (the tracked objects of that kind) and ``is there a
    cup?`` (yes, with the ids and times, when every thing named is tracked)."""
    m = _CATEGORY_RE.search(q)
    if m and not _SAID_RE.search(q):
        kind = m.group(1).removesuffix("s")
        labels = set(CATEGORIES[kind])
        objs = [o for o in ctx.objects if o.label in labels]
        vocabulary = _detector_vocabulary(ctx)
        if objs:
            line = f"{kind}s in the record: {_seen_list(objs)}"
            return Facts([line], f"The record tracks these {kind}s: {_seen_list(objs)}.", "seen")
        if vocabulary is not None and labels & vocabulary:
            looked = ", ".join(_plural(x) for x in sorted(labels & vocabulary))
            line = f"no {kind} is tracked in the record (the detector looks for {looked})"
            return Facts([line], f"The record shows no {kind}: the object detector looks for "
                                 f"{looked}, and tracked none.", "seen")  # fmt: skip
        return None
    if not _EXISTS_RE.search(q):
        return None
    subject = exists_subject(q)
    if subject is not None and not _named_things(subject):
        # "is there a drink on the table?" asks about a drink: the table is where, not what.
        return None
    things = _named_things(q)
    labels = {_spoken(o.label) for o in ctx.objects}
    if not things or not all(t.labels & labels for t in things):
        return None  # something named is not tracked: `_missing_facts` says so
    objs = [o for o in ctx.objects if any(_spoken(o.label) in t.labels for t in things)]
    line = f"tracked in the record: {_seen_list(objs)}"
    return Facts([line], f"Yes: the record tracks {_seen_list(objs)}.", "seen")


# ---------------------------------------------------------------------------------------------
# Actions: answered from perception that sees them, or "the record cannot tell"


def _action_facts(q: str, ctx: VideoContext) -> Facts | None:
    """``does anyone fall down?``: what the record's action perception shows of it, or - when
    nothing in the record could have seen an action - that the record cannot tell, and what
    perception would be needed."""
    from vidchat.text.actions import action_observers, asked_actions, names_action

    acts = asked_actions(q)
    if any(a.name == "fall" for a in acts) and any("fell" in o.attributes for o in ctx.objects):
        return None  # the posture model's ``fell`` attribute answers it (`_attribute_facts`)
    if _COUNT_RE.search(q):
        # "how many people walk by?" counts who passes through: the tracks' job, not an action
        # to recognise. A count of an action ("how many fall?") stays an action question.
        acts = [a for a in acts if a.name != "walk"]
    if not acts:
        return None
    lines: list[str] = []
    parts: list[str] = []
    unproven = False
    for act in acts[:2]:
        observers = action_observers(ctx, act)
        kinds = {k for ob in observers for k in ob.kinds}
        seen = [e for e in ctx.events if e.kind in kinds and names_action(e.text, act)]
        posed = [o for o in ctx.objects
                 if str(o.attributes.get("posture", "")).lower() in act.postures]  # fmt: skip
        said = [s for s in ctx.speech if names_action(s.text, act)]
        for e in seen[:6]:
            who = f" ({', '.join(e.objects)})" if e.objects else ""
            lines.append(f"{_fmt(e.start)}–{_fmt(e.end)} {e.kind}: {quote(e.text)}{who}")
        lines += [f"{o.id}: posture={o.attributes.get('posture')} (posture model), seen "
                  f"{_fmt(o.first_seen)}–{_fmt(o.last_seen)}" for o in posed[:6]]  # fmt: skip
        mentioned = [f"{speech_line(s)} (said, not seen)" for s in said[:3]]
        if seen or posed:
            by = ", ".join(ob.name for ob in observers)
            where = "; ".join(
                [f"[{_fmt(e.start)}–{_fmt(e.end)}] {e.kind} {quote(e.text)}"
                 + (f" ({', '.join(e.objects)})" if e.objects else "") for e in seen[:3]]
                + [f"{o.id} (posture {o.attributes.get('posture')}, "
                   f"[{_fmt(o.first_seen)}–{_fmt(o.last_seen)}])" for o in posed[:3]]
            )  # fmt: skip
            parts.append(f"The record's {by} show{'s' if len(observers) == 1 else ''} "
                         f"{act.gerund}: {where}.")  # fmt: skip
        elif observers:
            by = " and ".join(ob.name for ob in observers)
            # Captions and labels say things in their own words ("a man on the ground"): no word
            # of them naming it is not proof it did not happen, so the model reads them.
            lines.append(f"no label or caption in the record uses a word for {act.gerund} (the "
                         f"{by} ran; read what they say)")  # fmt: skip
            unproven = True
        else:
            ran = ", ".join(p.name for p in ctx.provenance if p.status == "ok") or "none"
            need = "an action perceiver (`action`, video classification) or captions (`caption`)"
            if act.name == "fall":
                need += (
                    " - or, for a fall, the detector's posture model (detect option "
                    "posture_model, e.g. yolo:persons)"
                )
            lines.append(
                f"no perception in this record sees actions or postures (perceivers that ran: "
                f"{ran}): whether anyone is {act.gerund} is not in the record"
            )
            parts.append(
                f"The record cannot tell whether anyone is {act.gerund}: none of the "
                f"perceivers that ran ({ran}) observes actions or postures - the record has "
                f"where objects are and when, not what they do. Seeing that would need {need}."
            )
        lines += mentioned
        if mentioned and not (seen or posed):
            said_lines = "; ".join(m.split(" (said")[0] for m in mentioned)
            parts.append(f"(The speech mentions it - {said_lines} - which is something said, "
                         "not something seen.)")  # fmt: skip
    persons = [o for o in ctx.objects if o.label == "person"]
    if not persons and _detector_vocabulary(ctx) and "person" in (_detector_vocabulary(ctx) or ()):
        lines.append("no person is seen in the record: the object detector looks for people "
                     "and tracked none")  # fmt: skip
        parts.insert(0, "No person is seen in the video (the object detector looks for people "
                        "and tracked none).")  # fmt: skip
    return Facts(lines, None if unproven else " ".join(parts), "action")


# ---------------------------------------------------------------------------------------------
# Times named in speech: "when does the train leave?" is answered with what the speech says

_SPOKEN_WHEN_RE = re.compile(
    r"^(?:so |and |but )?(?:when|what time|at what time|what day|which day|on what day|what date|"
    r"on which day|how late|how early)\b|\bwhat time\b"
)
_NOT_TIME_TOPIC = frozenset({"time", "times", "date", "dates", "day", "days", "mentioned",
                             "happen", "happens", "take", "place", "takes", "will"})  # fmt: skip


def _spoken_time_facts(q: str, ctx: VideoContext) -> Facts | None:
    """``when does the train leave?`` / ``what time is mentioned?``: the times the speech names
    ("early in the morning", "half past nine") in the sentences about the asked thing, cited
    where they are said. A time of the video is not the answer to a time asked about in words."""
    from vidchat.text.topics import mentions, spoken_times, topic_words

    if not _SPOKEN_WHEN_RE.search(q) or _QUOTED_RE.search(q) or not ctx.speech:
        return None
    if _TIME_RE.search(q) or _OBJECT_ID_RE.search(q):
        return None  # "what time is 01:20?", "when does person#2 appear?": about the video
    words = [w for w in topic_words(q) if w not in _NOT_TIME_TOPIC]
    timed = [(s, spoken_times(s.text)) for s in ctx.speech]
    timed = [(s, ts) for s, ts in timed if ts]
    if words:
        scored = [(len(mentions(s.text, words)), s, ts) for s, ts in timed]
        best = max((n for n, _, _ in scored), default=0)
        picked = [(s, ts) for n, s, ts in scored if n == best and n > 0]
        if not picked:
            about = speech_mentioning(ctx, words)
            if not about:
                return None  # not about anything said: the video's own times (first/last...)
            lines = [f"{speech_line(s)} (names no time)" for s in about[:3]]
            # The speech about it names no time (or one the transcript garbled): said so, with
            # the words as transcribed - a model asked for the time makes one up ("5:30 PM").
            said = "; ".join(f"[{_fmt(s.start)}–{_fmt(s.end)}] {quote(s.text)}"
                             for s in about[:MAX_DIRECT_HITS])  # fmt: skip
            untimed = (f"The speech that mentions it names no time that can be read: {said} "
                       "(the words as transcribed).")  # fmt: skip
            return Facts(lines, untimed, "spoken_time")
    else:
        picked = timed
    if not picked:
        if words or not _SAID_RE.search(q):
            return None
        said = "; ".join(f"[{_fmt(s.start)}–{_fmt(s.end)}] {quote(s.text)}"
                         for s in ctx.speech[:MAX_QUOTED_SEGMENTS])  # fmt: skip
        line = f"no speech in the record names a time or date ({len(ctx.speech)} segments checked)"
        none = f"No time or date is named in what is said: {said} (the words as transcribed)."
        return Facts([line], none, "spoken_time")
    lines = []
    parts = []
    for s, ts in picked[:6]:
        named = ", ".join(quote(t.words) for t in ts)
        lines.append(f"{speech_line(s)} (names the time {named})")
        parts.append(f"{named}, said at [{_fmt(s.start)}–{_fmt(s.end)}]: {quote(s.text)}")
    direct = None
    if len(picked) <= MAX_DIRECT_HITS:
        direct = "The speech names " + "; and ".join(parts) + "."
    return Facts(lines, direct, "spoken_time")


_DOING_RE = re.compile(r"\b(?:doing|what (?:does|did|do) .+ do|activit\w*|action)\b")


def _doing_facts(q: str, ctx: VideoContext) -> Facts | None:
    """``what is the cat doing?``: what the record has on those objects. A detector's record
    says where an object is and when, not what it does; told that no caption or action names it,
    the model says so instead of making up an activity from unrelated lines."""
    if not _DOING_RE.search(q):
        return None
    named = {t.name for t in _named_things(q)} | {lab for t in _named_things(q) for lab in t.labels}
    objs = [o for o in ctx.objects if o.id.lower() in q or _spoken(o.label) in named]
    if not objs:
        return None
    lines = []
    for o in objs[:MAX_DOING_OBJECTS]:
        about = [e for e in ctx.events if o.id in e.objects and e.kind in _SEEN_KINDS_FREE]
        # Properties (posture, fell, colour), not the detector's bookkeeping (class, area_frac,
        # frames_seen): numbers and the label say nothing about what an object does.
        attrs = ", ".join(
            f"{k}={v}"
            for k, v in sorted(o.attributes.items())
            if isinstance(v, str | bool) and k != "class" and str(v).lower() != o.label
        )
        line = f"{o.id}: seen {_fmt(o.first_seen)}–{_fmt(o.last_seen)}"
        line += f" ({attrs})" if attrs else ""
        if about:
            line += "; " + "; ".join(event_line(e) for e in about)
        else:
            line += "; no caption or action in the record says what it does"
        lines.append(line)
    if len(objs) > MAX_DOING_OBJECTS:
        lines.append(f"({len(objs) - MAX_DOING_OBJECTS} more objects of that kind not listed)")
    return Facts(lines, None, "doing")


# At most this many objects are described for a "what is it doing?" question.
MAX_DOING_OBJECTS = 5


def facts_for(question: str, ctx: VideoContext) -> Facts:
    """The computed facts that bear on `question` (possibly none), and a direct answer when the
    question is a pure lookup they answer completely (counts, attribute lists, first/last)."""
    q = " ".join(question.lower().split())
    # A question with options to choose from, or several lines, wants its own answer format
    # (a letter, a list...): the facts inform the model, which then answers in that format.
    formatted = "\n" in question.strip() or bool(re.search(r"\(\s*[a-e]\s*\)", q))
    from vidchat.text.identity import identity_facts

    same = identity_facts(q, ctx)
    if same is not None:
        # Same person / seen again / how many times: one lookup of ids and re-identification,
        # complete on its own (the time it names is not a "what is visible" question too).
        plain = _plain_lookup(q) and not formatted
        return Facts(same[0], same[1] if plain else None, "identity")
    out = Facts()
    finders = (_speaker_facts, _phrase_facts, _topic_facts, _action_facts, _attribute_facts,
               _count_facts, _present_facts, _spoken_time_facts, _first_last_facts,
               _time_facts)  # fmt: skip
    for finder in finders:
        if finder in (_time_facts, _topic_facts) and out.kind == "who":
            continue  # "who is speaking at 00:12?", "who talks about X?": one lookup, not two
        found = finder(q, ctx)
        if found is None:
            continue
        out.lines += [ln for ln in found.lines if ln not in out.lines]
        if out.kind is None:
            plain = not formatted and (
                _plain_lookup(q)
                or (found.kind in _TIMED_KINDS and _plain_lookup(_AND_WHEN_RE.sub("?", q)))
            )
            out.kind, out.direct = found.kind, found.direct if plain else None
        else:
            out.direct = None  # two lookups in one question: let the model phrase both
    if out.kind is None and _ABOUT_RE.search(_QUOTED_RE.sub(" ", q)) and _LEARN_RE.search(q):
        # "what do we learn about the train?" asks what the record says of it, not whether a
        # train is seen: the lines that mention it lead (a sighting check follows them).
        about = _about_facts(q, ctx)
        if about is not None:
            out.lines, out.kind = about.lines, about.kind
            out.direct = about.direct if _plain_lookup(q) and not formatted else None
    # A thing the question names that nothing in the record shows: said plainly, since a small
    # model asked about it invents it. Alone, this can be the whole answer.
    missing = (
        _missing_facts(q, ctx) if out.kind in (None, "visible", "first_last", "action") else None
    )
    if missing is not None:
        out.lines += missing.lines
        if out.kind == "action" and out.direct and missing.direct:
            # "does anyone ride a horse?": no horse is seen, and actions are not seen at all.
            out.direct = f"{missing.direct} {out.direct}"
        elif out.kind is None:
            out.kind, out.direct = "absent", missing.direct if not formatted else None
            if not _plain_lookup(q):
                out.direct = None
        else:
            out.direct = None
    if out.kind is None:
        doing = _doing_facts(q, ctx)
        if doing is not None:
            out.lines, out.kind = doing.lines, doing.kind
    if out.kind is None:
        about = _about_facts(q, ctx)
        if about is not None:
            out.lines, out.kind = about.lines, about.kind
    if out.kind is None:
        unmentioned = _unmentioned_facts(q, ctx)
        if unmentioned is not None:
            out.lines, out.kind = unmentioned.lines, unmentioned.kind
    return out


_LEARN_RE = re.compile(
    r"\b(?:learn|learned|know|known|find out|told|tell (?:me|us)|said|say|says|mentioned)\b"
)


def _unmentioned_facts(q: str, ctx: VideoContext) -> Facts | None:
    """``is there a wave on the sea?`` where nothing in the record (objects, tags, captions,
    speech, on-screen text) mentions the asked thing: a line saying so, for the model (no direct
    answer: a word list cannot tell that "espresso" is a drink)."""
    from vidchat.text.topics import mentions, topic_words

    subject = exists_subject(q)
    if subject is None or _named_things(subject):
        return None  # a thing the detector names: `_present_facts` / `_missing_facts` answer it
    rest = _WHERE_RE.search(" ".join(q.split()).rstrip("?!. "))
    words = topic_words(subject) + topic_words(rest.group(0) if rest else "")
    words = [w for w in dict.fromkeys(words) if w not in ("video", "clip", "anywhere")]
    if not words:
        return None
    texts = [s.text for s in ctx.speech] + [e.text for e in ctx.events if e.text]
    texts += [_spoken(o.label) for o in ctx.objects]
    said = [w for w in words if any(mentions(t, [w]) for t in texts)]
    absent = [w for w in words if w not in said]
    if not absent:
        return None
    named = " or ".join(quote(w) for w in absent)
    line = (f"nothing in the record mentions {named} (no tracked object, tag, caption, speech or "
            "on-screen text)")  # fmt: skip
    return Facts([line], None, "absent")


_ABOUT_RE = re.compile(r"\babout\s+(.+)")
# At most this many record lines are put in front of the model for an "about X" question.
MAX_ABOUT_LINES = 6


def _about_facts(q: str, ctx: VideoContext) -> Facts | None:
    """``what do we learn about the blue ferry?``: the speech, on-screen text and captions that
    mention the asked thing, most of its words first, for the model to read; a direct answer
    (those lines, quoted) only when there are at most `MAX_DIRECT_HITS` of them and no tracked
    object's label names the thing (what is seen of it is the model's to describe). A small model
    asked this over a long record answered with another planted line (the bakery sign for the
    ferry); the lines that mention it, next to the question, point it at the right part.
    """
    from vidchat.text.topics import mentions, topic_words

    m = _ABOUT_RE.search(_QUOTED_RE.sub(" ", q))
    words = topic_words(_TIME_RE.sub("", m.group(1))) if m else []
    if not words:
        return None
    found: list[tuple[int, float, str]] = []
    for s in ctx.speech:
        if hit := mentions(s.text, words):
            found.append((len(hit), s.start, speech_line(s)))
    for e in ctx.events:
        if e.text and e.kind != "shot" and (hit := mentions(e.text, words)):
            found.append((len(hit), e.start, event_line(e)))
    if not found:
        return None
    best = sorted(found, key=lambda f: (-f[0], f[1]))[:MAX_ABOUT_LINES]
    named = " or ".join(quote(w) for w in words)
    lines = [f"record lines that mention {named}: {len(found)}"]
    lines += [text for _, _, text in sorted(best, key=lambda f: f[1])]
    # What was said or shown about it, and nothing seen that it could name: those few lines are
    # the answer, quoted whole (the 1.5B model summarising them dropped one of two sentences, or
    # denied the one it had: round 6, clip60 meeting, clip300 market).
    seen = {w for o in ctx.objects for w in topic_words(o.label.replace("_", " "))}
    direct = None
    if len(found) <= MAX_DIRECT_HITS and not set(words) & seen:
        phrase = " ".join(_TIME_RE.sub("", m.group(1) if m else "").strip(" ?.!").split())
        # "00:42–00:45 speech: …" as "[00:42–00:45] speech: …": the time becomes a citation.
        parts = [re.sub(r"^(\S+) ", r"[\1] ", text, count=1)
                 for _, _, text in sorted(found, key=lambda f: f[1])]  # fmt: skip
        direct = f"What the record says about {phrase}: " + "; ".join(parts) + "."
    return Facts(lines, direct, "about")
