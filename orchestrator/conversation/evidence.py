"""Evidence verification: every record line the model quotes is checked against the record it
was given, and only verified quotes become citations.

A quote is verified by the first test it passes: the same line (or one containing the other),
a near-exact line (difflib ratio >= `NEAR_MATCH`, comparing the text after the time when the
quote's time falls within the line's), the one line holding the passage the quote puts in
quotation marks, or, for a quote that joins one object's facts from several lines, those lines
(every clause in a line naming that object, at a time near the quote's). A verified quote is
mapped to its line's time and object ids.
"""

from __future__ import annotations

import re

from vidchat.conversation.answer import Evidence
from vidchat.conversation.citations import (
    is_window_header,
    line_times,
    object_mentions,
    parse_object_ids,
    without_lead_time,
)
from vidchat.conversation.reply import QUOTE_CHARS

__all__ = [
    "COMPOSITE_SLACK_S",
    "MIN_PASSAGE_CHARS",
    "MIN_QUOTE_CHARS",
    "NEAR_MATCH",
    "record_block",
    "verify_evidence",
]

# Shortest quote checked against the record: "- yes" verifies nothing.
MIN_QUOTE_CHARS = 8
# difflib ratio over which a quote counts as the same line (a dropped comma, a changed case).
NEAR_MATCH = 0.9
# Shortest quoted passage (the words inside quotation marks) that identifies a line on its own,
# whatever the model wrote around it ('[00:08] speaker 1 says, "..."' for a speech line).
MIN_PASSAGE_CHARS = 16
_PASSAGE_RE = re.compile(r"[\"“”]([^\"“”]+)[\"“”]?")
# A quote joining one object's facts from several lines: its time and the timeline line's may
# differ by a window (the model writes the window's start, "00:00–00:10", for "00:07").
COMPOSITE_SLACK_S = 10.0


def _norm(text: str) -> str:
    text = text.lower().replace("–", "-").replace("—", "-")
    text = "".join(ch for ch in text if ch not in QUOTE_CHARS)
    return " ".join(text.split()).strip(" .-")


def _near_line(q: str, quote: str, normed: list[tuple[str, str]]) -> str | None:
    """The record line a quote nearly equals (difflib ratio >= NEAR_MATCH), comparing the text
    after the leading time when the quote's time falls within the line's (models often write
    ``00:20`` for ``00:20–00:24``)."""
    import difflib

    q_start, _ = line_times(quote)
    q_body = _norm(without_lead_time(quote))
    best, best_ratio = None, 0.0
    for n, ln in normed:
        ratio = difflib.SequenceMatcher(None, q, n).ratio()
        start, end = line_times(ln)
        if None not in (q_start, start, end) and start - 1 <= q_start <= end + 1:  # type: ignore[operator]
            body = _norm(without_lead_time(ln))
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


def _composite_line(quote: str, normed: list[tuple[str, str]], known_ids: set[str]) -> str | None:
    """The record line behind a quote that joins facts of one object from several lines
    ("00:00–00:10 person#1 appears, moves right→left": the timeline's "00:00 person#1 appears"
    and the object list's "person#1: person, 00:00–00:03, moves right→left"): the quote names
    exactly one object, every clause of it (split at commas and semicolons) is in a line naming
    that object, and its time, when it has one, is within `COMPOSITE_SLACK_S` of a matched
    timeline line's. Returns the first matched timeline line (else the first matched line)."""
    ids, _ = parse_object_ids(quote, known_ids)
    if len(ids) != 1:
        return None
    oid = ids[0]
    body = _norm(without_lead_time(quote.strip().strip("[]").replace("] ", " ", 1)))
    clauses = [c.strip() for c in re.split(r"[,;]", body) if c.strip()]
    if len(clauses) < 2 or any(len(c) < 6 for c in clauses):
        return None
    own = [(n, ln) for n, ln in normed if oid in object_mentions(ln)]  # person#1, not #13
    matched: list[str] = []
    for clause in clauses:
        hit = next((ln for n, ln in own if clause in n), None)
        if hit is None:
            return None
        matched.append(hit)
    timed = [ln for ln in matched if line_times(ln)[0] is not None]
    q_start, _ = line_times(quote.strip().lstrip("["))
    if q_start is not None:
        near = [
            ln for ln in timed if abs((line_times(ln)[0] or 0.0) - q_start) <= COMPOSITE_SLACK_S
        ]
        if timed and not near:
            return None
        timed = near or timed
    return (timed or matched)[0]


def verify_evidence(quotes: list[str], record_text: str, known_ids: set[str]) -> list[Evidence]:
    """Check each quote against the record's lines: an exact line (or a line contained in it,
    or it in a line), or a near-exact one (difflib ratio >= NEAR_MATCH). Verified quotes are
    mapped to the line's time and object ids."""
    # Window headers ("[00:30–00:40]") and "visible:" lists say nothing a quote could rest on.
    lines = [
        ln.strip()
        for ln in record_text.splitlines()
        if ln.strip() and not is_window_header(ln.strip()) and not ln.strip().startswith("visible:")
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
                match = _composite_line(quote, normed, known_ids)
        if match is None:
            out.append(Evidence(quote=quote, verified=False))
            continue
        start, end = line_times(match)
        ids, _ = parse_object_ids(match, known_ids)
        out.append(
            Evidence(quote=quote, verified=True, line=match, start=start, end=end, objects=ids)
        )
    return out


def record_block(system_text: str) -> str:
    """The record as the model saw it: the text between <record> and </record>, unescaped
    (quotes are checked against the record only, never against the instructions)."""
    from vidchat.prompts import unescape_data

    # The block's opening tag stands on its own line; the instructions may name the tag inline
    # ("given between <record> and </record>"), and that mention must not open the block.
    opening = re.search(r"(?m)^<record>$", system_text)
    start, end = (opening.start() if opening else -1), system_text.rfind("</record>")
    if start < 0 or end < start:
        return ""
    return unescape_data(system_text[start + len("<record>") : end])
