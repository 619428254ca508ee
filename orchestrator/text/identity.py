"""Same person or not, seen again, how many times: answered from the record's ids and the
detector's ``reidentified`` attribute, by code.

A tracker gives one id to one object while it follows it; across a hard cut the detector joins
two stretches under one id only when the appearance matches (colour histograms of the box, a
similarity it writes down), and says so in the object's ``reidentified`` attribute::

    seen 00:00–00:04, 00:16–00:23; same appearance after the cut at 00:16 (similarity 0.95)

A small model reading "person#1 00:00–00:23" answers "is the person at 00:16 the same as at the
start?" with "not the same" (it cannot read the attribute's meaning); and "how many times does X
appear?" with a count of something else. Here:

- `stretches` / `link_of` read an object's stretches on screen and how they were joined;
- `on_screen_at` finds the objects on screen at a time (inside a stretch, not in a gap between
  two: a re-identified person is not on screen in between);
- `identity_facts` answers "is the person at T1 the same as at T2 / at the start / the first
  person?", "when is X seen again?", "how many times does X appear?", saying how the link was
  made, its similarity, and that it is appearance, not identity.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vidchat.kernel.record import ObjectTrack, VideoContext
from vidchat.kernel.timecode import fmt_span, fmt_time, timecode_or_none

__all__ = [
    "APPEARANCE_NOTE",
    "Reference",
    "identity_facts",
    "link_of",
    "on_screen_at",
    "references",
    "stretches",
]

# What a link by appearance is, said once wherever one is reported.
APPEARANCE_NOTE = (
    "appearance-based (colours of clothing and shape in the box), not a recognised identity"
)
# A time named in a question is a whole second: an object on screen within this of it counts.
SLACK_S = 0.999

_TIME_RE = re.compile(r"(?<![\d:.])(?:\d{1,2}:)?\d{1,3}:\d{2}(?![\d:])")
_SPAN_RE = re.compile(r"((?:\d{1,2}:)?\d{1,3}:\d{2})(?:\s*[–-]\s*((?:\d{1,2}:)?\d{1,3}:\d{2}))?")
_ID_RE = re.compile(r"(?<![\w#])([a-z][a-z0-9_\-]*#[1-9][0-9]*)(?![\w#])")
_SAME_RE = re.compile(r"\b(?:the same|same (?:person|one|man|woman|object)|different)\b")
_AGAIN_RE = re.compile(
    r"\b(?:seen again|appears? again|shown again|visible again|shows? up again|reappears?|"
    r"reappearing|comes? back|returns?|again later|seen later|come again)\b"
)
_TIMES_RE = re.compile(
    r"\bhow (?:many times|often)\b.*\b(?:appear|appears|seen|shown|show up|shows up|visible|on "
    r"screen)\b"
)
_FIRST_RE = re.compile(r"\b(?:the )?(first|last)\s+([a-z][a-z_ ]*?)(?:\s+(?:to|that|who)\b|\s|$)")
_START_RE = re.compile(r"\b(?:at|in|from) the (?:very )?(?:start|beginning|outset)\b")
_END_RE = re.compile(r"\b(?:at|in) the (?:very )?end\b")
# Words that name a person in a question ("the man at 00:16", "that one").
_PERSON_WORDS = ("person", "people", "man", "woman", "men", "women", "one", "someone", "guy",
                 "lady", "boy", "girl", "child", "pedestrian", "walker", "he", "she")  # fmt: skip


def stretches(o: ObjectTrack) -> list[tuple[float, float]]:
    """When `o` was on screen: the stretches its ``reidentified`` attribute lists (one id joined
    across cuts, gaps in between), else its first..last span."""
    attr = o.attributes.get("reidentified")
    if isinstance(attr, str) and attr.startswith("seen "):
        spans = []
        for m in _SPAN_RE.finditer(attr.split(";", 1)[0]):
            a = timecode_or_none(m.group(1))
            b = timecode_or_none(m.group(2)) if m.group(2) else a
            if a is not None and b is not None:
                spans.append((a, b))
        if spans:
            # The attribute's times are whole seconds: the track's own ends are finer.
            spans[0] = (o.first_seen, spans[0][1])
            spans[-1] = (spans[-1][0], max(o.last_seen, spans[-1][1]))
            return spans
    return [(o.first_seen, o.last_seen)]


def link_of(o: ObjectTrack) -> str | None:
    """How `o`'s stretches were joined ("same appearance after the cut at 00:16 (similarity
    0.95)"), or None when it is one continuous track."""
    attr = o.attributes.get("reidentified")
    if isinstance(attr, str) and ";" in attr:
        return attr.split(";", 1)[1].strip()
    return None


def on_screen_at(
    ctx: VideoContext, t: float, labels: set[str] | None = None, slack: float = SLACK_S
) -> list[ObjectTrack]:
    """Objects (of `labels`, if given) on screen at `t`: inside one of their `stretches`."""
    return [
        o
        for o in ctx.objects
        if (labels is None or o.label in labels)
        and any(a - slack <= t <= b + slack for a, b in stretches(o))
    ]


@dataclass(frozen=True)
class Reference:
    """One thing a question points at: the words, and the objects they resolve to."""

    words: str  # as the question says it ("the person at 02:10", "person#3", "the first person")
    objects: tuple[ObjectTrack, ...]
    at: float | None = None  # the time it was named at, if any


def _labels_asked(q: str, ctx: VideoContext) -> set[str]:
    labels = {o.label for o in ctx.objects}
    named = {lab for lab in labels if re.search(rf"\b{re.escape(lab.replace('_', ' '))}s?\b", q)}
    if not named and any(re.search(rf"\b{w}\b", q) for w in _PERSON_WORDS):
        named = {"person"} & labels
    return named


def references(q: str, ctx: VideoContext) -> list[Reference]:
    """What the question points at, in order: object ids, "the X at/seen at TIME", "the first
    X" / "the last X", "at the start" / "at the end"."""
    labels = _labels_asked(q, ctx) or {"person"}
    found: list[tuple[int, Reference]] = []
    by_id = {o.id.lower(): o for o in ctx.objects}
    for m in _ID_RE.finditer(q):
        if m.group(1) in by_id:
            found.append((m.start(), Reference(m.group(1), (by_id[m.group(1)],))))
    for m in _TIME_RE.finditer(q):
        t = timecode_or_none(m.group(0))
        if t is None:
            continue
        objs = on_screen_at(ctx, float(int(t)), labels)
        found.append((m.start(), Reference(f"at {fmt_time(t)}", tuple(objs), float(int(t)))))
    for m in _FIRST_RE.finditer(q):
        which, noun = m.group(1), m.group(2).strip()
        pool = [o for o in ctx.objects if o.label in labels]
        if not pool or not any(w in noun.split() for w in (*_PERSON_WORDS, *labels)):
            continue
        o = (min(pool, key=lambda o: o.first_seen) if which == "first"
             else max(pool, key=lambda o: o.last_seen))  # fmt: skip
        found.append((m.start(), Reference(f"the {which} {noun}", (o,))))
    for rx, t in ((_START_RE, 0.0), (_END_RE, ctx.video.duration)):
        edge_m = rx.search(q)
        if edge_m:
            pool = [o for o in ctx.objects if o.label in labels]
            if not pool:
                continue
            edge = (min(o.first_seen for o in pool) if t == 0.0
                    else max(o.last_seen for o in pool))  # fmt: skip
            objs = on_screen_at(ctx, edge, labels, slack=0.5)
            words = "at the start" if t == 0.0 else "at the end"
            found.append((edge_m.start(), Reference(words, tuple(objs), edge)))
    return [r for _, r in sorted(found, key=lambda x: x[0])]


def _unique(objs: list[ObjectTrack]) -> list[ObjectTrack]:
    """Objects once each, in order (tracks are compared by id)."""
    seen: dict[str, ObjectTrack] = {}
    for o in objs:
        seen.setdefault(o.id, o)
    return list(seen.values())


def _ids(objs: tuple[ObjectTrack, ...] | list[ObjectTrack]) -> str:
    return ", ".join(o.id for o in objs)


def _seen(o: ObjectTrack) -> str:
    return ", ".join(f"[{fmt_span(a, b)}]" for a, b in stretches(o))


def _how(o: ObjectTrack) -> str:
    """How the record knows `o` is one object across its stretches, in words."""
    link = link_of(o)
    if link:
        return (f"the detector joined its stretches ({_seen(o)}) under one id: {link}; that is "
                f"{APPEARANCE_NOTE}")  # fmt: skip
    return (f"it is one continuous track ({_seen(o)}): the tracker followed it on screen, "
            "which is position and appearance from frame to frame, not a recognised "
            "identity")  # fmt: skip


def _fact_line(o: ObjectTrack) -> str:
    link = link_of(o)
    line = f"{o.id}: on screen {'; '.join(fmt_span(a, b) for a, b in stretches(o))}"
    return line + (f" (reidentified: {link})" if link else " (one continuous track)")


def _who(ref: Reference) -> str:
    if not ref.objects:
        return f"{ref.words}: nothing of that kind on screen in the record"
    return f"{ref.words}: {_ids(ref.objects)}"


def identity_facts(q: str, ctx: VideoContext) -> tuple[list[str], str | None] | None:
    """Facts and a direct answer for a same-person / seen-again / how-many-times question, or
    None when the question is not one (see the module docstring)."""
    same = bool(_SAME_RE.search(q))
    again = bool(_AGAIN_RE.search(q))
    times = bool(_TIMES_RE.search(q))
    if not (same or again or times) or not ctx.objects:
        return None
    refs = references(q, ctx)
    if not refs:
        return None
    lines = [f"on screen {_who(r)}" if r.words.startswith("at ") else _who(r) for r in refs]
    objs = _unique([o for r in refs for o in r.objects])
    lines += [_fact_line(o) for o in objs]
    empty = next((r for r in refs if not r.objects), None)
    if empty is not None:
        return lines, (f"The record has nothing of that kind on screen {_place(empty)}, so it "
                       "cannot say.")  # fmt: skip
    if same and len(refs) >= 2:
        return lines, _same_answer(refs[0], refs[1])
    ref = refs[0]
    if len(ref.objects) > 1:
        parts = [f"{o.id} (on screen {_seen(o)})" for o in ref.objects]
        return lines, (f"The record has {len(ref.objects)} objects of that kind on screen "
                       f"{_place(ref)}: " + "; ".join(parts) + ". Name one (its id) to ask "
                       "about it.")  # fmt: skip
    o = ref.objects[0]
    spans = stretches(o)
    named = o.id if ref.words == o.id else f"{o.id} ({ref.words})"
    if times:
        n = len(spans)
        word = "once" if n == 1 else f"{n} times"
        return lines, f"{o.id} appears {word}: {_seen(o)} — {_how(o)}."
    after = [(a, b) for a, b in spans[1:] if ref.at is None or a > ref.at]
    if after:
        again_at = ", ".join(f"[{fmt_span(a, b)}]" for a, b in after)
        return lines, f"Yes: {named} is seen again at {again_at} — {_how(o)}."
    return lines, (f"No: {named} is not seen again in the record: it is on screen "
                   f"{_seen(o)} only. The detector joins a person across a cut only when the "
                   "appearance matches, and no later track was joined to this one (a person "
                   "seen from another angle or place would get a new id).")  # fmt: skip


def _place(ref: Reference) -> str:
    """Where a reference points, for a sentence: "at [00:16]", "at the start", "person#3"."""
    if ref.at is not None and _TIME_RE.search(ref.words):
        return f"at [{fmt_time(ref.at)}]"
    return ref.words


def _same_answer(a: Reference, b: Reference) -> str:
    shared = [o for o in a.objects if o.id in {x.id for x in b.objects}]
    if shared:
        o = shared[0]
        where, where_b = _place(a), _place(b)
        others = [x for x in (*a.objects, *b.objects) if x.id != o.id]
        extra = (f" (also on screen then: {_ids(_unique(others))})"
                 if others else "")  # fmt: skip
        return (f"Yes, by appearance: {o.id} is the one {where} and {where_b}{extra} — "
                f"{_how(o)}.")  # fmt: skip
    if len(a.objects) == 1 and len(b.objects) == 1:
        x, y = a.objects[0], b.objects[0]
        return (f"No link in the record: {_place(a)} it is {x.id}, {_place(b)} it is {y.id} - "
                "different ids. The detector gives one id across a cut only when the appearance "
                f"matches ({APPEARANCE_NOTE}); it did not join these, so they are likely "
                "different people, though a tracker can also split one person it lost into two "
                "ids.")  # fmt: skip
    return (f"No object is on screen at both: {_who(a)}; {_who(b)} - different ids, not linked "
            f"by the detector ({APPEARANCE_NOTE}).")  # fmt: skip
