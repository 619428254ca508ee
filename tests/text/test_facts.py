"""Facts computed from the record, and evidence quoted by a model checked against the record."""

from __future__ import annotations

import pytest
from vidchat.conversation.evidence import verify_evidence
from vidchat.conversation.reply import split_reply
from vidchat.conversation.session import ChatSession
from vidchat.text.facts import facts_for, label_counts, objects_with, said_between, visible_at
from vidchat.text.render import render

from tests.conversation.chat_helpers import ScriptedChatModel, small_record


@pytest.fixture
def ctx():
    c = small_record()
    # Postures as the fall detector records them: only person#2 fell.
    c.objects[0].attributes.update(posture="standing", fell=False)
    c.objects[1].attributes.update(posture="fallen", fell=True)
    return c


def test_lookups(ctx):
    assert label_counts(ctx) == {"person": 2, "dog": 1}
    assert [o.id for o in objects_with(ctx, "fell")] == ["person#2"]
    assert [o.id for o in objects_with(ctx, "posture", "STANDING")] == ["person#1"]
    assert [o.id for o in visible_at(ctx, 35)] == ["person#1", "person#2", "dog#1"]
    assert [o.id for o in visible_at(ctx, 50)] == ["person#2"]
    assert said_between(ctx, 15, 30) == [
        '00:20–00:24 speech: "Look, the fountain is running again."'
    ]


@pytest.mark.parametrize(
    ("question", "kind", "direct", "line"),
    [
        ("Who fell?", "attribute", "According to the record, 1 object fell: person#2.",
         "objects with fell=true: 1 (person#2)"),
        ("Did anyone fall down?", "attribute", "According to the record, 1 object fell: person#2.",
         None),
        ("How many persons are there?", "count", "The record tracks 2 persons: person#1, person#2.",
         "person objects in the record: 2 (person#1, person#2)"),
        ("How many people walk by?", "count", "The record tracks 2 persons: person#1, person#2.",
         None),
        ("How many shot cuts are there?", "count", "The record has 1 shot cut(s) at 00:45.", None),
        ("When does the dog first appear?", "first_last",
         "The first dog appears at [00:30] (dog#1).", None),
        ("When does person#2 leave?", "first_last",
         "person#2 is first seen at [00:15] and last seen at [00:58].", None),
        ('When does someone say "the fountain is running"?', "said",
         'It is said at [00:20]: "Look, the fountain is running again."', None),
        ("What is said at 00:21?", "said",
         'At [00:20–00:24] the speech is: "Look, the fountain is running again."', None),
        ("What text is shown on screen at 00:11?", "said",
         'The on-screen text at [00:10] reads "CITY PARK — OPEN 6AM-10PM"', None),
        ("What is said between 00:15 and 00:30?", "said", None,
         '00:20–00:24 speech: "Look, the fountain is running again."'),
        ("What is visible at 00:35?", "visible", None,
         "visible at 00:35: person#1, person#2, dog#1"),
        ("How many cars are there?", "count", None,
         "car objects in the record: 0 (labels present: dog, person)"),
        ("What does the sign say?", None, None, None),
        ("How many persons are there, and why?", "count", None,
         "person objects in the record: 2 (person#1, person#2)"),
    ],
)  # fmt: skip
def test_facts_for_questions(ctx, question, kind, direct, line):
    f = facts_for(question, ctx)
    assert (f.kind, f.direct) == (kind, direct)
    if line:
        assert line in f.lines
    if kind is None:
        assert f.lines == []


def test_lookups_on_a_record_without_the_attribute_say_so(ctx):
    for o in ctx.objects:
        o.attributes.clear()
    assert facts_for("Who fell?", ctx).kind is None  # nothing to compute: the model answers


def test_split_reply():
    quotes, answer = split_reply(
        'EVIDENCE:\n- 00:10 ocr: "CITY PARK"\n- "00:02 person#1 appears"\n'
        "ANSWER: It says CITY PARK."
    )
    assert quotes == ['00:10 ocr: "CITY PARK', "00:02 person#1 appears"]
    assert answer == "It says CITY PARK."
    assert split_reply("EVIDENCE:\n- none\nANSWER: Not in the record.") == (
        [], "Not in the record.",
    )  # fmt: skip
    assert split_reply("Just an answer.") == ([], "Just an answer.")


def test_quotes_are_verified_against_record_lines_only(ctx):
    record = render(ctx).text
    ids = {o.id for o in ctx.objects}
    ev = verify_evidence(
        [
            '00:10 ocr: "CITY PARK — OPEN 6AM-10PM"',  # exact
            "00:31–00:35 caption: a brown dog runs across the grass [dog#1]",  # quotes dropped
            '00:20 speech: "Look, the fountain is running."',  # near-exact (a word dropped)
            '00:12 speech: "The budget meeting is in New York"',  # invented
            "person",  # too short to verify anything
        ],
        record,
        ids,
    )
    assert [e.verified for e in ev] == [True, True, True, False, False]
    assert (ev[0].start, ev[0].end) == (10.0, 10.0)
    assert (ev[1].start, ev[1].end, ev[1].objects) == (31.0, 35.0, ["dog#1"])
    assert ev[2].line == '00:20–00:24 speech: "Look, the fountain is running again."'
    assert ev[3].line is None and ev[3].start is None


def test_session_answers_lookups_from_facts_and_checks_the_models_quotes(ctx):
    model = ScriptedChatModel(
        replies=[
            'EVIDENCE:\n- 00:50–00:53 speech: "Let\'s head back before it rains."\n'
            '- 00:59 speech: "it is snowing"\nANSWER: They head back before the rain [00:50].'
        ]
    )
    s = ChatSession(ctx, llm=model)
    direct = s.ask("Who fell?")
    assert direct.answered_by == "facts" and model.calls == []
    assert direct.text == "According to the record, 1 object fell: person#2."
    assert direct.evidence[0].source == "computed" and direct.evidence[0].objects == ["person#2"]

    chunks = list(s.stream("Why do they leave?"))
    a = s.last_answer
    assert "".join(chunks) == a.text == "They head back before the rain [00:50]."
    assert [e.verified for e in a.evidence] == [True, False]
    assert a.evidence[0].start == 50.0
    assert a.raw_text.startswith("EVIDENCE:")
    # The follow-up's history carries the reply as written (the model keeps the format).
    s.ask("Who fell?")
    assert model.calls[0].messages[-1].content == "Why do they leave?"


def test_facts_go_in_the_user_turn_and_the_record_prefix_stays_fixed(ctx):
    model = ScriptedChatModel(replies=["a", "b"])
    s = ChatSession(ctx, llm=model)
    s.ask("What is visible at 00:35?")
    s.reset()
    s.ask("What does the sign say?")
    first, second = (c.messages for c in model.calls)
    assert first[0].content == second[0].content  # same system prefix: the prompt cache holds
    assert "<facts>" in first[-1].content and "visible at 00:35" in first[-1].content
    assert "<facts>" not in second[-1].content


def test_multiple_choice_questions_are_never_answered_directly(ctx):
    mc = "How many persons are there?\n(A) 1\n(B) 2\nAnswer with the letter."
    f = facts_for(mc, ctx)
    assert f.kind == "count" and f.direct is None and f.lines
    assert facts_for("Who fell? (A) person#1 (B) person#2", ctx).direct is None
