"""Does verified evidence bear on the question? A verified quote is not a verified answer.

The evidence check (`vidchat.conversation.evidence`) says a quoted line exists in the record, not
that it supports the answer: "What do we learn about the blue ferry?" was once answered "The blue
ferry is a bakery that sells fresh croissants daily", quoting the record's bakery sign, a real
line, so the evidence "verified". Beside the existence check, this one asks whether a line is
about the question at all:

- the question's anchors (`anchors_of`): its topic words (content words, without the words of
  asking itself: "what do we learn", "happens", "shown"...), the times it names, and the object
  ids and record labels it names;
- a line bears on the question (`bears_on`) when it mentions one of the topic words (the word, an
  inflection or a related word: `vidchat.text.topics`), has a time within `TIME_SLACK_S` of a
  named time, or names a named object (or one of a named label);
- a verified quote that bears on none of them, while the record holds lines that do, is marked
  ``relevant=False`` (`mark_relevance`) and is never shown as a citation.

A question without anchors ("What happens at 00:16?" has a time; "Summarise the video" has
nothing) flags nothing, and neither does a question whose anchors no record line bears on (the
check could only guess then).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from vidchat.conversation.answer import Evidence
from vidchat.conversation.citations import object_mentions
from vidchat.kernel.record import VideoContext
from vidchat.kernel.timecode import timecode_or_none

__all__ = ["TIME_SLACK_S", "Anchors", "anchors_of", "bears_on", "mark_relevance"]

# A line within this many seconds of a time the question names is about that time (record lines
# are grouped and shown in whole seconds; a speech line can start a little before the time).
TIME_SLACK_S = 3.0

# Words of asking and of the video itself: they say what kind of answer is wanted, not what it
# is about ("what do we learn about the ferry": only "ferry" is the topic).
_FRAME_WORDS = frozenset(
    """
learn learned know knows find found happen happens happened happening going go goes get gets
show shows shown showing see seen visible appear appears appeared appearing screen screens text
written write writes read reads title caption sign visible frame frames shot shots cut cuts
first last start starts end ends beginning begin begins middle time times moment point long
many much number often summarise summarize summary describe description explain tell give list
name names like look looks looking mean means meaning same different again later earlier right
left after before next previous then while during between until since now whole entire overall
colour color kind type main doing do does did done there here yes please exactly
""".split()  # noqa: SIM905 - a word list reads better as text
)
_TIME_RE = re.compile(r"(?<![\d:.])(?:\d{1,2}:)?\d{1,3}:\d{2}(?![\d:])")
_SPAN_RE = re.compile(
    r"(?<![\d:.])((?:\d{1,2}:)?\d{1,3}:\d{2})(?:\s*[–—-]\s*((?:\d{1,2}:)?\d{1,3}:\d{2}))?(?![\d:])"
)


@dataclass(frozen=True)
class Anchors:
    """What a question is about, as code can check it on a line."""

    words: tuple[str, ...] = ()  # topic words
    times: tuple[float, ...] = ()  # seconds named
    ids: tuple[str, ...] = ()  # object ids named (lower case)
    labels: tuple[str, ...] = ()  # record labels named

    @property
    def empty(self) -> bool:
        """Nothing to check a line against."""
        return not (self.words or self.times or self.ids or self.labels)


def anchors_of(question: str, ctx: VideoContext) -> Anchors:
    """The topic words, times, object ids and record labels `question` names."""
    from vidchat.text.topics import topic_words

    q = " ".join(question.lower().split())
    found = (timecode_or_none(m.group(0)) for m in _TIME_RE.finditer(q))
    times = [t for t in found if t is not None]
    ids = sorted(object_mentions(q))
    bare = _TIME_RE.sub(" ", re.sub(r"[a-z][a-z0-9_\-]*#\d+", " ", q))
    labels = sorted(
        {o.label for o in ctx.objects
         if re.search(rf"\b{re.escape(o.label.replace('_', ' '))}(?:e?s)?\b", bare)}
    )  # fmt: skip
    label_words = {w for lab in labels for w in lab.replace("_", " ").split()}
    words = [w for w in topic_words(bare) if w not in _FRAME_WORDS and w not in label_words]
    return Anchors(tuple(words), tuple(float(t) for t in times), tuple(ids), tuple(labels))


def _spans(line: str) -> list[tuple[float, float]]:
    out = []
    for m in _SPAN_RE.finditer(line):
        a = timecode_or_none(m.group(1))
        b = timecode_or_none(m.group(2)) if m.group(2) else a
        if a is not None and b is not None:
            out.append((a, b))
    return out


def bears_on(line: str, anchors: Anchors) -> bool:
    """Whether `line` is about something the question names (see the module docstring)."""
    from vidchat.text.topics import mentions

    if anchors.words and mentions(line, list(anchors.words)):
        return True
    if anchors.times:
        lo, hi = min(anchors.times), max(anchors.times)
        if any(a - TIME_SLACK_S <= hi and lo <= b + TIME_SLACK_S for a, b in _spans(line)):
            return True
    named = object_mentions(line)
    if anchors.ids and named & set(anchors.ids):
        return True
    if anchors.labels:
        labels = set(anchors.labels)
        if any(i.split("#")[0] in labels for i in named):
            return True
        low = line.lower()
        if any(re.search(rf"\b{re.escape(lab.replace('_', ' '))}", low) for lab in labels):
            return True
    return False


def mark_relevance(
    evidence: Sequence[Evidence], question: str, ctx: VideoContext, record_lines: Sequence[str]
) -> list[Evidence]:
    """`evidence` with ``relevant`` set on each verified quote of the model (True: it bears on
    the question; False: it does not, while some of `record_lines` do). Computed facts, and
    every quote of a question without anchors, are left unchecked (``relevant=None``)."""
    anchors = anchors_of(question, ctx)
    if anchors.empty or not any(bears_on(ln, anchors) for ln in record_lines):
        return list(evidence)
    out = []
    for e in evidence:
        if e.verified and e.source != "computed":
            e = e.model_copy(update={"relevant": bears_on(e.line or e.quote, anchors)})
        out.append(e)
    return out
