"""The reply reader (`vidchat.conversation.reply`): evidence held back, the answer streamed first,
a looping model stopped. Fed chunk by chunk, as a model streams."""

from __future__ import annotations

import pytest

from vidchat.conversation.reply import AnswerGate, LoopGuard, split_reply

EVIDENCE_FIRST = 'EVIDENCE:\n- 00:12 ocr: "COFFEE BREAK"\nANSWER: It says COFFEE BREAK.'


def _stream(gate: AnswerGate, text: str, size: int) -> str:
    shown = "".join(gate.feed(text[i : i + size]) for i in range(0, len(text), size))
    return shown + gate.rest()


@pytest.mark.parametrize("size", [1, 3, 7, 1000])
def test_the_gate_shows_only_the_answer_whatever_the_chunking(size):
    gate = AnswerGate()
    assert _stream(gate, EVIDENCE_FIRST, size) == "It says COFFEE BREAK."
    assert not gate.plain
    # Quotation marks around a quote are stripped (the evidence check ignores them anyway).
    assert split_reply(gate.text) == (['00:12 ocr: "COFFEE BREAK'], "It says COFFEE BREAK.")


def test_a_reply_without_the_format_is_streamed_as_it_comes():
    gate = AnswerGate()
    assert gate.feed("The cat") == "The cat"  # no waiting: it cannot be an evidence list
    assert gate.feed(" sleeps.") == " sleeps."
    assert gate.plain and gate.rest() == ""


def test_quotes_under_an_evidence_heading_without_an_answer_mark():
    # The listed lines are evidence, the rest is the answer, shown when the reply ends.
    gate = AnswerGate()
    reply = "Evidence:\n- 00:05 shot cut\n- 00:10 shot cut\nTwo cuts."
    assert _stream(gate, reply, 4) == "Two cuts."
    assert split_reply(reply) == (["00:05 shot cut", "00:10 shot cut"], "Two cuts.")


def test_the_loop_guard_cuts_at_the_first_repeat():
    guard = LoopGuard()
    sentence = "The person walks to the left. "
    stopped = [guard.feed(sentence) for _ in range(4)]
    assert stopped == [False, False, True, True]
    assert guard.looping and guard.kept() == sentence.strip()


def test_short_repeats_are_not_a_loop():
    guard = LoopGuard()
    assert not any(guard.feed("Yes. ") for _ in range(5))
    assert not guard.looping and guard.kept() == "Yes. " * 5
