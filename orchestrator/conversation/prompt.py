"""Prompt assembly: the messages one question sends, within the token budget.

The LLM sees, in order:

1. one system message: the system prompt (``prompts/chat.yaml:system``, the same for every
   video), then the record inside a ``<record>…</record>`` data block (escaped so nothing from
   the video can close it), then a one-line-per-turn summary of older turns when the history has
   outgrown its budget;
2. the most recent turns, verbatim (user question, assistant answer);
3. the new question, with any facts computed from the record for it.

The record is a fixed prefix (the same for every question about the same video), so a local
llama.cpp server answers follow-ups from its prompt cache.

Token budget (all counts with the LLM's own tokenizer when it has one)::

    total     = budget_tokens, else config.context_tokens - config.max_tokens
    available = total - system prompt - question - per-message overhead
    record    = what the full rendering needs, at most record_share * available
                (and at most the profile's render.budget_tokens)
    history   = available - record

History shrinks from the oldest end: whole turns first become one-line summaries, then are
dropped; the record's header and object list are never dropped (`vidchat.conversation.record_view`
chooses what the record block holds).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vidchat.conversation.answer import RecordMode, Turn
from vidchat.conversation.record_view import RETRIEVED_AFTER, RecordView, partial_note
from vidchat.kernel.errors import ConfigError

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

__all__ = [
    "CHAT_PROMPT",
    "DEFAULT_RECORD_SHARE",
    "DEFAULT_RETRIEVAL_K",
    "MESSAGE_OVERHEAD",
    "SUMMARY_ANSWER_CHARS",
    "SUMMARY_QUESTION_CHARS",
    "VERBATIM_SHARE",
    "PromptPlan",
    "build_prompt",
    "format_messages",
    "instructions_prefix",
]

CHAT_PROMPT = "chat"
# The most of the available budget the record may take (the rest is for the conversation).
DEFAULT_RECORD_SHARE = 0.7
# Timeline windows retrieved by similarity per question on records too long to send whole.
DEFAULT_RETRIEVAL_K = 4
# Role markers and separators a chat template adds around each message (ChatML: about 5).
MESSAGE_OVERHEAD = 6
# Shortened turns in the "earlier" summary keep this many characters of question and answer.
SUMMARY_QUESTION_CHARS = 120
SUMMARY_ANSWER_CHARS = 160
# Share of the history budget for verbatim turns when older turns must be summarized.
VERBATIM_SHARE = 0.7


@dataclass
class PromptPlan:
    """Everything sent for one question, and how it was budgeted."""

    messages: list[BaseMessage]
    prompt_tokens: int
    budget: int
    record_tokens: int
    history_tokens: int
    record_mode: RecordMode
    windows: list[tuple[float, float]] = field(default_factory=list)
    # Characters at the start of the system message that every question about this record
    # shares (instructions and record; in retrieval mode up to the retrieved windows): the
    # prefix a local server's saved reading is keyed by (`vidchat.llm.prefix_cache`).
    prefix_chars: int = 0
    turns_verbatim: int = 0
    turns_summarized: int = 0
    turns_dropped: int = 0


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def format_messages(
    messages: list[BaseMessage], count_tokens: Callable[[str], int] | None = None
) -> str:
    """Messages as readable text, one ``=== role ===`` header each (for /context and logs)."""
    parts = []
    for m in messages:
        role = {"system": "system", "human": "user", "ai": "assistant"}.get(m.type, m.type)
        content = m.content if isinstance(m.content, str) else str(m.content)
        n = f" ({count_tokens(content)} tokens)" if count_tokens else ""
        parts.append(f"=== {role}{n} ===\n{content}")
    return "\n\n".join(parts)


def instructions_prefix() -> list[BaseMessage]:
    """The start of every question's prompt, the same for every video (the system prompt
    alone): a local server can read it before any record exists (`vidchat.llm.factory.
    start_local_server`), and the record's prefill then continues from it."""
    from langchain_core.messages import SystemMessage

    from vidchat.prompts import load_prompt

    return [SystemMessage(load_prompt(CHAT_PROMPT).render("system"))]


def build_prompt(
    question: str,
    *,
    turns: Sequence[Turn],
    record_view: RecordView,
    budget_tokens: int,
    count_tokens: Callable[[str], int],
    facts: list[str] | None = None,
    record_share: float = DEFAULT_RECORD_SHARE,
    render_budget: int | None = None,
    retrieval_k: int = DEFAULT_RETRIEVAL_K,
) -> PromptPlan:
    """The messages the LLM receives for `question` after `turns`, within `budget_tokens`.

    `facts`: lines computed from the record for this question (`vidchat.text.facts`); they go
    into the user's turn, after the record, so the record stays a fixed prefix. `record_share`
    caps the record's part of the available budget, `render_budget` (the profile's
    ``render.budget_tokens``) caps it further; `retrieval_k` windows at most are retrieved on
    long records. Raises ConfigError when the budget leaves no room for the record.
    """
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    from vidchat.prompts import load_prompt

    prompt = load_prompt(CHAT_PROMPT)
    system = prompt.render("system")
    count = count_tokens
    user_turn = prompt.render("question", question=question, facts=facts or []).strip()
    fixed = count(system) + count(user_turn) + 3 * MESSAGE_OVERHEAD
    available = budget_tokens - fixed
    if available < 64:
        raise ConfigError(
            f"the prompt budget ({budget_tokens} tokens) leaves no room for the record: "
            f"the system prompt and question alone take {fixed}"
        )
    cap = int(available * record_share)
    if render_budget is not None:
        cap = min(cap, render_budget)
    # The block's own lines (delimiters, the note on a partial record) come out of the cap.
    wrapper = prompt.render("record", record="", partial=partial_note(99, 999))
    record, mode, windows, note = record_view.text_for(
        question, cap - count(wrapper), k=retrieval_k
    )
    block = prompt.render("record", record=record, partial=note)
    record_tokens = count(block) + 2  # the blank line joining it to the system prompt
    history_budget = available - record_tokens

    # Newest turns verbatim while they fit; then older ones as one-line summaries; the rest
    # is dropped (and counted, so the model knows the conversation is longer). When not every
    # turn fits verbatim, verbatim turns get only part of the history budget, so that the
    # summary of what came before has room too.
    costs = [
        count(t.question) + count(t.answer.raw_text or t.answer.text) + 2 * MESSAGE_OVERHEAD
        for t in turns
    ]
    verbatim_budget = history_budget
    if sum(costs) > history_budget:
        verbatim_budget = int(history_budget * VERBATIM_SHARE)
    verbatim: list[Turn] = []
    used = 0
    remaining = list(turns)
    while remaining:
        cost = costs[len(remaining) - 1]
        # The newest turn may use the whole history budget: a follow-up needs it most.
        limit = history_budget if not verbatim else verbatim_budget
        if used + cost > limit:
            break
        verbatim.insert(0, remaining.pop())
        used += cost
    summary = ""
    summarized = 0
    dropped = len(remaining)
    if remaining:
        lines: list[dict[str, str]] = []
        for t in reversed(remaining):
            line = {
                "question": _shorten(t.question, SUMMARY_QUESTION_CHARS),
                "answer": _shorten(t.answer.text, SUMMARY_ANSWER_CHARS),
            }
            trial = prompt.render(
                "earlier", turns=[line, *lines], dropped=len(remaining) - len(lines) - 1
            )
            if used + count(trial) + 2 > history_budget:
                break
            lines.insert(0, line)
            summary = trial
        summarized = len(lines)
        dropped = len(remaining) - summarized
        if summary:
            used += count(summary) + 2
        elif dropped:
            note_only = prompt.render("earlier", turns=[], dropped=dropped)
            if used + count(note_only) + 2 <= history_budget:
                summary = note_only
                used += count(note_only) + 2

    system_text = "\n\n".join(x for x in (system, block, summary) if x)
    prefix_chars = len("\n\n".join(x for x in (system, block) if x))
    if mode == "retrieval" and RETRIEVED_AFTER in system_text:
        prefix_chars = system_text.index(RETRIEVED_AFTER) + len(RETRIEVED_AFTER)
    messages: list[BaseMessage] = [SystemMessage(system_text)]
    for t in verbatim:
        # The reply as written (evidence, then answer): the model keeps to the format.
        messages += [HumanMessage(t.question), AIMessage(t.answer.raw_text or t.answer.text)]
    messages.append(HumanMessage(user_turn))
    prompt_tokens = sum(count(str(m.content)) + MESSAGE_OVERHEAD for m in messages)
    return PromptPlan(
        messages=messages,
        prompt_tokens=prompt_tokens,
        budget=budget_tokens,
        record_tokens=record_tokens,
        history_tokens=used,
        record_mode=mode,
        windows=windows,
        prefix_chars=prefix_chars,
        turns_verbatim=len(verbatim),
        turns_summarized=summarized,
        turns_dropped=dropped,
    )
