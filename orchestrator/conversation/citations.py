"""What a text cites: times (``[01:02]``, ``[00:12–00:15]``) and object ids (``person#3``), in an
answer or in a record line. Times are read with the one timecode parser
(`vidchat.kernel.timecode`); an impossible time (``01:75``) is not a citation."""

from __future__ import annotations

import re

from vidchat.conversation.answer import Citation
from vidchat.kernel.timecode import timecode_or_none

__all__ = [
    "is_window_header",
    "line_times",
    "object_mentions",
    "parse_citations",
    "parse_object_ids",
    "without_lead_time",
]

_BRACKET_RE = re.compile(r"\[([^\[\]\n]{1,80})\]")
_TIME_RE = re.compile(r"(?<![\d:.])(?:(\d{1,2}):)?(\d{1,3}):(\d{2})(?:\.(\d+))?(?![\d:])")
_RANGE_SEP_RE = re.compile(r"^\s*(?:-|–|—|to|until)\s*$", re.IGNORECASE)
_WINDOW_HEAD_RE = re.compile(r"^\[[\d:]+–[\d:]+\]$")
_OBJECT_RE = re.compile(r"(?<![\w#])([a-z][a-z0-9_\-]*#[1-9][0-9]*)(?![\w#])", re.IGNORECASE)
_LEAD_TIME_RE = re.compile(
    r"^\s*(?:\d{1,2}:)?\d{1,3}:\d{2}(?:\s*[–-]\s*(?:\d{1,2}:)?\d{1,3}:\d{2})?"
)


def _seconds(m: re.Match[str]) -> float | None:
    """A time matched by _TIME_RE in seconds; None for an impossible one (``01:75``)."""
    return timecode_or_none(m.group(0))


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


def object_mentions(text: str) -> set[str]:
    """The object ids (``label#n``) the text names, lower-cased, whatever the record holds."""
    return {m.group(1).lower() for m in _OBJECT_RE.finditer(text)}


def line_times(line: str) -> tuple[float | None, float | None]:
    """(start, end) of the time a record line starts with (``00:20–00:24 speech: …``, or one
    time for both); (None, None) when it starts with none."""
    m = _LEAD_TIME_RE.match(line)
    if not m:
        return None, None
    times = [t for t in (_seconds(x) for x in _TIME_RE.finditer(m.group(0))) if t is not None]
    return (times[0], times[-1]) if times else (None, None)


def without_lead_time(line: str) -> str:
    """The line without the time (or time range) it starts with."""
    return _LEAD_TIME_RE.sub("", line, count=1)


def is_window_header(line: str) -> bool:
    """Whether a (stripped) rendered-record line is a timeline window's header
    (``[00:30–00:40]``): it says nothing a quote could rest on."""
    return _WINDOW_HEAD_RE.match(line) is not None
