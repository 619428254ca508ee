"""Evidence found from the answer when the model quoted none: strict, record lines only."""

from __future__ import annotations

import pytest

from tests.conversation.chat_helpers import ScriptedChatModel, small_record
from vidchat.conversation.grounding import record_lines, supporting_lines
from vidchat.conversation.session import ChatSession
from vidchat.text.render import render

FOUNTAIN = '00:20–00:24 speech: "Look, the fountain is running again."'
CAPTION = '00:31–00:35 caption: "a brown dog runs across the grass" [dog#1]'


@pytest.fixture
def record():
    return render(small_record()).text


@pytest.mark.parametrize(
    ("answer", "lines"),
    [
        ('Someone says "the fountain is running again" [00:20].', [FOUNTAIN]),
        ("They say: Look, the fountain is running again.", [FOUNTAIN]),  # the data, unquoted
        ("A brown dog runs across the grass [00:31-00:35].", [CAPTION]),  # cited time + words
        ("dog#1 appears at [00:30].", ["00:30 dog#1 appears"]),  # cited time + id
        ("Nothing happens then [00:31].", []),  # a time alone is not support
        ("The budget meeting is in New York [00:12].", []),  # invented
        ("A brown dog runs across the grass.", [CAPTION]),  # the caption, word for word
        ("A brown dog runs past.", []),  # some words, no time: not certain
    ],
)
def test_supporting_lines(record, answer, lines):
    assert supporting_lines(answer, record) == lines


def test_window_headers_and_visible_lists_are_never_support(record):
    lines = record_lines(record)
    assert "[00:20–00:30]" not in lines and not any(ln.startswith("visible:") for ln in lines)
    assert supporting_lines("visible: person#1 [00:05]", record) == []


def test_a_negative_answer_rests_on_the_fact_that_says_so(record):
    fact = "no car is seen in the record: the object detector looks for it and tracked none"
    assert supporting_lines("The record does not show a car.", record, [fact]) == [fact]
    assert supporting_lines("The car is red.", record, [fact]) == []


def test_a_passage_in_many_lines_needs_a_cited_time():
    c = small_record()
    for t in (5.0, 15.0, 25.0, 35.0):
        c.speech.append(c.speech[1].model_copy(update={"start": t + 30, "end": t + 31}))
    record = render(c).text
    assert supporting_lines('They say "the fountain is running again".', record) == []
    assert supporting_lines('They say "the fountain is running again" [00:20].', record) == [
        FOUNTAIN
    ]


def test_a_reply_without_evidence_gets_the_lines_its_answer_reproduces():
    model = ScriptedChatModel(replies=[
        'At [00:20] someone says "Look, the fountain is running again."',  # no EVIDENCE part
        "EVIDENCE:\n- none\nANSWER: The budget meeting is in New York [00:12].",
        'EVIDENCE:\n- 00:20 speech: "it is snowing"\nANSWER: It snows [00:20].',
    ])  # fmt: skip
    s = ChatSession(small_record(), llm=model)
    a = s.ask("Why do they look at the fountain?")
    assert [(e.source, e.verified, e.line, e.start) for e in a.evidence] == [
        ("answer", True, FOUNTAIN, 20.0)
    ]
    assert s.ask("Where is the meeting, and why?").evidence == []  # nothing to rest on
    # A quote that does not verify stays, unverified; nothing is added to dress it up.
    a = s.ask("What is the weather, and why?")
    assert [(e.source, e.verified) for e in a.evidence] == [("record", False)]


@pytest.mark.parametrize(
    "reply",
    [
        '**EVIDENCE:**\n- 00:20 speech: "Look, the fountain is running again."\n**ANSWER:** Yes.',
        'EVIDENCE: 00:20 speech: "Look, the fountain is running again."\nANSWER: Yes.',
        'Evidence:\n1. [00:20–00:24] speech: "Look, the fountain is running again."\nAnswer: Yes.',
    ],
)
def test_evidence_survives_format_slips(reply):
    from vidchat.conversation.evidence import verify_evidence
    from vidchat.conversation.reply import split_reply

    quotes, answer = split_reply(reply)
    assert answer == "Yes."
    ev = verify_evidence(quotes, render(small_record()).text, {"person#1"})
    assert [(e.verified, e.line) for e in ev] == [(True, FOUNTAIN)]


def test_a_one_word_tag_repeated_by_an_invented_answer_supports_nothing():
    from vidchat.kernel.record import Event

    c = small_record()
    c.events.append(Event(start=12.0, end=13.0, kind="tag", text="espresso", source="tags"))
    record = render(c).text
    assert supporting_lines("The dog is drinking an espresso.", record) == []
