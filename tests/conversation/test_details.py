"""An answer's specific details (clock times, long numbers, amounts, names) must be in the record:
a real, relevant quote with an invented time beside it is caught (`vidchat.conversation.details`),
and every way an answer is shown says what is not in the record."""

from __future__ import annotations

import pytest

from tests.conversation.chat_helpers import HashingEmbedder, ScriptedChatModel, small_record
from vidchat.cli.chat import format_answer_facts, format_evidence
from vidchat.conversation.details import answer_details, record_support, unsupported_details
from vidchat.conversation.session import ChatSession
from vidchat.conversation.transcript import to_markdown
from vidchat.kernel.record import SpeechSegment, VideoContext

MEETING = "We will meet at the library after lunch on Friday."


def _ctx() -> VideoContext:
    ctx = small_record()
    ctx.speech += [
        SpeechSegment(start=40, end=43, text=MEETING),
        SpeechSegment(start=10, end=13, text="The code for the back door is four seven two nine."),
        SpeechSegment(start=20, end=23, text="The bus leaves at half past nine in the morning."),
    ]
    return ctx


@pytest.mark.parametrize(
    ("answer", "invented"),
    [
        # the measured failure (clip60, round 5): a relevant quote, the time made up
        ("The meeting is scheduled for a later time, from 3 PM to 4 PM.", ["3 PM", "4 PM"]),
        ("We will meet at the library after lunch on Friday, in the large room.", []),
        ("The code is 4729.", []),  # spoken digit by digit
        ("The code is 4728.", ["4728"]),
        ("The bus leaves at 9:30 a.m.", []),  # "half past nine in the morning"
        ("The bus leaves at 9:30 PM.", ["9:30 PM"]),  # the wrong half of the day
        ("The park opens at 6 AM and closes at 10 PM.", []),  # the sign: OPEN 6AM-10PM
        ("It costs $20.", ["$20"]),
        ("It is said by Bob's friend at [00:40].", ["Bob's"]),  # a name nobody says
        # not checked: counts and durations the model computes, cited times, ids, quotations
        ("The video is 60 seconds long; 2 people (person#1, person#2) appear at 00:12.", []),
        ('The speaker says "see you at 7 PM, Alice".', []),
    ],
)
def test_details_missing_from_the_record(answer: str, invented: list[str]) -> None:
    support = record_support(_ctx(), question="What do we learn about the meeting?")
    assert unsupported_details(answer, support) == invented


def test_the_question_and_facts_support_details() -> None:
    ctx = _ctx()
    answer = "No, the meeting is not at 3 PM."
    assert unsupported_details(answer, record_support(ctx)) == ["3 PM"]
    assert unsupported_details(answer, record_support(ctx, question="Is it at 3 PM?")) == []
    fact = "[00:40] the meeting was moved to 5 PM"  # computed by code, cited time left out
    assert unsupported_details("It is at 5 PM.", record_support(ctx, facts=[fact])) == []
    assert unsupported_details("It is at 40 PM.", record_support(ctx, facts=[fact])) == ["40 PM"]


def test_names_the_record_vocabulary_holds_are_not_flagged() -> None:
    ctx = _ctx()
    kinds = [d.kind for d in answer_details("At the start the Speech line says the Dog runs.")]
    assert kinds == ["name", "name"]
    support = record_support(ctx, record_text="SPEECH (speaker 1):\n00:40 speech: ...")
    assert unsupported_details("At the start the Speech line says the Dog runs.", support) == []


def test_the_session_and_every_view_report_an_invented_time() -> None:
    reply = (
        f'EVIDENCE:\n- 00:40–00:43 speech: "{MEETING}"\n'
        "ANSWER: The meeting is from 3 PM to 4 PM."
    )
    ctx = _ctx()
    s = ChatSession(ctx, llm=ScriptedChatModel(replies=[reply]), embedder=HashingEmbedder())
    a = s.ask("What do we learn about the meeting, and why was it moved?")
    assert [e.verified for e in a.evidence] == [True] and not a.off_topic  # both checks pass
    assert a.unsupported == ["3 PM", "4 PM"]
    assert a.not_in_record == ["3 PM", "4 PM"]
    assert "NOT in the record: 3 PM, 4 PM" in format_answer_facts(a)
    shown = format_evidence(a)
    assert any(MEETING in ln for ln in shown)  # the real line is still cited
    assert any("the answer says 3 PM, 4 PM" in ln and "invented" in ln for ln in shown)
    assert "NOT in the record: 3 PM, 4 PM" in to_markdown(ctx, "scripted", s.turns)
    assert a.model_dump()["unsupported"] == ["3 PM", "4 PM"]  # the web app and MCP read this
