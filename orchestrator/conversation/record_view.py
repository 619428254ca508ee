"""The record as one question's prompt holds it: the full rendering when it fits, else the
renderer's lossless compaction, else (long videos) the header, every object and the timeline
windows retrieved for the question, else the renderer's compaction by salience.

`RecordView` keeps what is costly to make once per record (the full rendering, the lossless
floor, the last compaction, the retrieval index) and is replaced when the record changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from vidchat.conversation.answer import RecordMode
from vidchat.conversation.citations import is_window_header
from vidchat.kernel.errors import ConfigError
from vidchat.kernel.record import VideoContext

if TYPE_CHECKING:
    from vidchat.text.render import Rendered
    from vidchat.text.retrieval import Embedder, RetrievalIndex

__all__ = ["RETRIEVED_AFTER", "RecordText", "RecordView", "partial_note"]

log = logging.getLogger(__name__)

# (record text, mode, retrieved windows as (start, end), note on what the record holds)
RecordText = tuple[str, RecordMode, list[tuple[float, float]], str]


# Ends the part of a retrieval-mode record that is the same for every question (header, objects,
# this line); the retrieved windows follow it.
RETRIEVED_AFTER = "only those relevant to the question):"


def partial_note(shown: int, total: int) -> str:
    """The record block's note when it holds only some timeline windows."""
    return f"{shown} of {total} timeline windows"


class RecordView:
    """One record, rendered for prompts of a given token cap.

    Args:
        ctx: the record.
        window_s: the timeline window of the rendering (the profile's ``render.window_s``).
        count_tokens: the session's token counter (called lazily: it may load a tokenizer).
        embedder: the retrieval embedder; None uses the shipped all-MiniLM-L6-v2.
        cache: keep retrieval embeddings on disk between sessions.
    """

    def __init__(
        self,
        ctx: VideoContext,
        *,
        window_s: float,
        count_tokens: Callable[[str], int],
        embedder: Embedder | None = None,
        cache: bool = True,
    ) -> None:
        self.ctx = ctx
        self.window_s = window_s
        self.count_tokens = count_tokens
        self.cache = cache
        self.retrieval_error: str | None = None
        self._embedder = embedder
        self._full: Rendered | None = None
        self._compacted: dict[int, Rendered] = {}
        self._floor: int | None = None
        self._index: RetrievalIndex | None = None

    @property
    def rendered(self) -> Rendered:
        """The full rendering of the record (no budget), computed once."""
        if self._full is None:
            from vidchat.text.render import render

            self._full = render(self.ctx, window_s=self.window_s, count_tokens=self.count_tokens)
        return self._full

    def retrieval_index(self) -> RetrievalIndex:
        """The retrieval index over the full rendering's windows, built on first need."""
        if self._index is None:
            from vidchat.text.retrieval import RetrievalIndex, record_hash

            self._index = RetrievalIndex(
                self.rendered.windows,
                self._embedder,
                record_hash=record_hash(self.ctx),
                cache=self.cache,
                duration=self.ctx.video.duration,
            )
        return self._index

    def compact(self, cap: int) -> Rendered:
        """The renderer's own fit of the whole record into `cap` tokens (cached per cap)."""
        if cap not in self._compacted:
            from vidchat.text.render import render

            # One entry: the cap moves a little with each question's length.
            self._compacted = {
                cap: render(
                    self.ctx,
                    budget_tokens=cap,
                    window_s=self.window_s,
                    count_tokens=self.count_tokens,
                )
            }
        return self._compacted[cap]

    @property
    def lossless_floor(self) -> int:
        """Tokens of the record with every observation but no window or "visible" lines: no
        compaction that keeps every observation can go below it (counted once)."""
        if self._floor is None:
            kept = [
                ln
                for ln in self.rendered.text.splitlines()
                if not ln.strip().startswith("visible:") and not is_window_header(ln)
            ]
            self._floor = self.count_tokens("\n".join(kept))
        return self._floor

    def text_for(self, question: str, cap: int, k: int) -> RecordText:
        """The record for `question` in at most `cap` tokens, as (text, mode, retrieved
        windows, note on what the record holds); `k` windows at most are retrieved."""
        full = self.rendered
        if full.tokens <= cap:
            return full.text, "full", [], ""
        # A little over: the renderer's compaction widens windows and drops only the "visible"
        # lines, so every observation survives, for the whole video. Better than retrieval.
        # (Tried only when it can work: on long records it is slow with a real tokenizer.)
        if self.lossless_floor <= cap:
            compact = self.compact(cap)
            if (
                not compact.over_budget
                and not set(compact.dropped) - {"visible"}
                and compact.objects == full.objects
            ):
                return compact.text, "compact", [], ""

        # Far over (long videos): header, every object, and the windows relevant to the question.
        label = f"{full.window_s:g} s" if full.window_s < 120 else f"{full.window_s / 60:g} min"
        head = "\n".join([full.header, full.objects])
        timeline_head = f"TIMELINE ({label} windows; {RETRIEVED_AFTER}"
        base = self.count_tokens(head + "\n" + timeline_head) + 1
        if full.windows and base < cap and self.retrieval_error is None:
            try:
                index = self.retrieval_index()
                hits = index.select(question, cap - base, self.count_tokens, k=k)
            except ConfigError as e:
                # No embedding model here: say so once, then answer from the compacted record.
                self.retrieval_error = str(e)
                log.warning("retrieval unavailable, using the compacted record: %s", e)
                hits = []
            if hits:
                chosen = [index.windows[h.index] for h in hits]
                text = "\n".join([head, timeline_head, *(w.text for w in chosen)])
                spans = [(w.start, w.end) for w in chosen]
                return text, "retrieval", spans, partial_note(len(chosen), len(full.windows))
        # The object list alone is too big (or nothing was retrievable): the renderer's
        # compaction by salience, which keeps the header and says what it left out.
        return self.compact(cap).text, "compact", [], ""
