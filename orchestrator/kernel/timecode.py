"""Timecodes: the one parser of ``mm:ss`` / ``h:mm:ss`` / seconds and the one formatter.

Every place that reads a time a person or the record wrote (``/at 01:30`` in the chat REPL,
``vidchat zoom VIDEO 1:02:03 1:02:10``, citations like ``[00:12–00:15]`` in an answer, the
timeline lines of a rendered record, times in a question) parses it here, and every place that
writes one (the rendered record, transcripts, pictures, instruction data) formats it here, so
what vidchat writes it can always read back.

Accepted (`parse_timecode`):

- plain seconds: ``90``, ``90.5``;
- ``m:ss`` / ``mm:ss`` / ``mmm:ss`` (the first field is free: ``125:00`` is 7500 s);
- ``h:mm:ss``; a fraction on the last field only: ``01:30.5``, ``1:02:03.25``.

Every field after the first must be under 60 (``01:75`` is a typo, not 135 s) unless the caller
passes ``strict=False``: the chat REPL (``/at``, ``/timeline``) and ``vidchat zoom`` have always
read a typed ``1:90`` as 150 s and ``9:99:99`` as a time past the video's end, which they then
report as such. Always: at most three fields; no sign, no ``nan``/``inf``, no blanks inside;
surrounding white space is ignored. Errors are `InputError`s that name what arrived.

Written (`fmt_time`): whole seconds, ``mm:ss`` under an hour, ``h:mm:ss`` from one hour on
(negative times clamp to ``00:00``); `fmt_span` writes ``a–b`` (an en dash), or one time when
both ends read the same.
"""

from __future__ import annotations

import re

from vidchat.kernel.errors import InputError

__all__ = ["TIMECODE_EXAMPLE", "fmt_span", "fmt_time", "parse_timecode", "timecode_or_none"]

# What every "expected a time" message offers as an example of the accepted forms.
TIMECODE_EXAMPLE = "01:30 or 90"

_WHOLE_RE = re.compile(r"\d+", re.ASCII)  # hours, minutes: whole numbers
_SECONDS_RE = re.compile(r"\d+(?:\.\d+)?", re.ASCII)  # the seconds after a colon
_PLAIN_RE = re.compile(r"\d+(?:\.\d+)?|\.\d+", re.ASCII)  # seconds alone may also be ".5"


def parse_timecode(text: str, *, strict: bool = True) -> float:
    """Seconds from ``mm:ss``, ``h:mm:ss`` or plain seconds (see the module docstring).

    `strict`: fields after the first must be under 60; False accepts ``1:90`` (150 s), as
    typed at the command line, where the caller checks the time against the video afterwards.
    Raises InputError ``expected a time like 01:30 or 90, got '…'``, with the reason in
    parentheses when the text has the right shape but an impossible value.
    """
    if not isinstance(text, str):
        raise InputError(
            f"expected a time like {TIMECODE_EXAMPLE} (text), got {type(text).__name__}"
        )
    fields = text.strip().split(":")

    def bad(reason: str = "") -> InputError:
        why = f" ({reason})" if reason else ""
        return InputError(f"expected a time like {TIMECODE_EXAMPLE}, got {text!r}{why}")

    if len(fields) > 3:
        raise bad("at most h:mm:ss")
    *whole, last = fields
    last_re = _SECONDS_RE if whole else _PLAIN_RE
    if not all(_WHOLE_RE.fullmatch(f) for f in whole) or not last_re.fullmatch(last):
        raise bad()
    values = [int(f) for f in whole] + [float(last)]
    if strict and any(v >= 60 for v in values[1:]):
        raise bad("minutes and seconds after the first field must be under 60")
    seconds = 0.0
    for v in values:
        seconds = seconds * 60 + v
    return seconds


def timecode_or_none(text: str) -> float | None:
    """`parse_timecode`, or None where it would raise: for text scanned out of free prose (an
    answer's citations, a question), where a malformed time is simply not a time."""
    try:
        return parse_timecode(text)
    except InputError:
        return None


def fmt_time(t: float) -> str:
    """Seconds as ``mm:ss`` (``h:mm:ss`` from one hour on), whole seconds, never negative."""
    t = max(0.0, t)
    s = int(t)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


def fmt_span(a: float, b: float) -> str:
    """``mm:ss–mm:ss`` (an en dash) from `a` to `b`; one time when both read the same."""
    return fmt_time(a) if fmt_time(a) == fmt_time(b) else f"{fmt_time(a)}–{fmt_time(b)}"
