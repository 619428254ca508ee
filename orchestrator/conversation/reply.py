"""The model's reply, read: the evidence quotes and the answer (`split_reply`), the streaming
gate that shows the answer first and holds the evidence back (`AnswerGate`), and the guard that
stops a model repeating itself (`LoopGuard`).

The reply format is the chat prompt's (``prompts/chat.yaml``): an ``EVIDENCE:`` list of record
lines quoted one per line, then ``ANSWER:``. Small models often skip or bend it; every reader
here accepts the usual bends (no marks, ``**Evidence**``, quotes without a heading).
"""

from __future__ import annotations

import re

__all__ = ["QUOTE_CHARS", "AnswerGate", "LoopGuard", "split_reply"]

_ANSWER_MARK_RE = re.compile(r"(?im)^\W*answer\W*:[*\s]*")
_QUOTE_LEAD_RE = re.compile(r"(?i)^(?:\W*evidence\W*:\s*)?(?:[-*•]+|\d{1,2}[.)])?\s*")
_EVIDENCE_HEAD_RE = re.compile(r"(?im)^\W*evidence\W*:?\s*$")
# Quotation marks a model puts around a quoted line (stripped before comparing with the record).
QUOTE_CHARS = "\"'“”‘’`"
# A finished sentence: text up to . ! or ? followed by white space ("3.5", "a.avi" go on).
_SENTENCE_RE = re.compile(r"\s*((?:[^.!?]|[.!?](?!\s))*[^.!?\s][.!?]+)(?=\s)")


def split_reply(text: str) -> tuple[list[str], str]:
    """The model's reply as (evidence quotes, answer). Without an ANSWER: mark, lines that look
    like quotes ("- ...") are evidence and the rest is the answer."""
    m = _ANSWER_MARK_RE.search(text)
    head, answer = (text[: m.start()], text[m.end() :]) if m else ("", text)
    if not m and _EVIDENCE_HEAD_RE.search(text):
        keep = []
        for ln in text.splitlines():
            if ln.strip().startswith("- "):
                head += ln + "\n"
            elif not _EVIDENCE_HEAD_RE.match(ln):
                keep.append(ln)
        answer = "\n".join(keep)
    quotes = []
    for ln in head.splitlines():
        q = ln.strip()
        if not q or _EVIDENCE_HEAD_RE.match(q):
            continue
        # Format slips: "EVIDENCE: line" on one line, "1. line", "**line**", "[00:12] line".
        q = _QUOTE_LEAD_RE.sub("", q).strip("*").strip().strip(QUOTE_CHARS).strip()
        q = re.sub(r"^\[([\d:]+(?:\s*[–-]\s*[\d:]+)?)\]", r"\1", q)
        if q and q.lower().strip(".()[] ") not in ("none", "n/a", "nothing"):
            quotes.append(q)
    return quotes, answer.strip()


class AnswerGate:
    """Holds back the evidence part of a streamed reply and lets the answer through: the user
    sees the answer first; the evidence is checked and shown as citations after it."""

    def __init__(self) -> None:
        self.text = ""
        self.open = False
        self.plain = False  # no evidence section: everything was the answer
        self._sent = 0
        self._shown = False  # nothing but white space let through yet

    def feed(self, chunk: str) -> str:
        """Take the next chunk; return the part to show now ("" while it may be evidence)."""
        self.text += chunk
        if not self.open:
            head = self.text.lstrip().lower()
            marks = ("evidence", "**evidence", "- ")
            if not head or any(m.startswith(head) for m in marks):
                return ""  # too early to tell: this could be the start of an evidence section
            m = _ANSWER_MARK_RE.search(self.text)
            if m:
                self.open, self._sent = True, m.end()
            elif not head.startswith(marks):
                # The model skipped the format: its reply is the answer, streamed as it comes.
                self.open, self._sent = True, 0
                self.plain = True
            else:
                return ""
        out = self.text[self._sent :]
        self._sent = len(self.text)
        if not self._shown:
            out = out.lstrip()  # the space after "ANSWER:" may come in the next chunk
            self._shown = bool(out)
        return out

    def rest(self) -> str:
        """What was never let through when the reply ended (no ANSWER: mark at all)."""
        if self.open:
            return ""
        return split_reply(self.text)[1]


class LoopGuard:
    """Notices a model stuck repeating itself (small local models do: the same sentence over and
    over until max_tokens). A sentence of some length seen for the third time means a loop; the
    answer is then cut where the repeated sentence first came back, keeping one full cycle."""

    MIN_CHARS = 16
    REPEATS = 3

    def __init__(self) -> None:
        self.text = ""
        self.looping = False
        self._cut: int | None = None
        self._scanned = 0  # sentences before this offset have been counted
        self._seen: dict[str, list[int]] = {}

    def feed(self, chunk: str) -> bool:
        """Take the next chunk; True once the model is looping (stop generating then)."""
        self.text += chunk
        for m in _SENTENCE_RE.finditer(self.text, self._scanned):
            sentence = " ".join(m.group(1).lower().split())
            self._scanned = m.end()
            if len(sentence) < self.MIN_CHARS:
                continue
            starts = self._seen.setdefault(sentence, [])
            starts.append(m.start(1))
            if len(starts) >= self.REPEATS:
                self.looping = True
                self._cut = starts[1]
                return True
        return False

    def kept(self) -> str:
        """The reply up to where the loop came back (all of it when there was no loop)."""
        return self.text if self._cut is None else self.text[: self._cut].rstrip()
