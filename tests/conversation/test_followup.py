"""Follow-ups read against the previous answer's evidence (`vidchat.conversation.followup`):
"what is said right after that?" is the next speech segment, answered by code, not the same
sentence again."""

from __future__ import annotations

from tests.conversation.chat_helpers import HashingEmbedder, ScriptedChatModel, small_record
from vidchat.conversation.followup import Focus, focus_of, resolve
from vidchat.conversation.session import ChatSession


def session(replies=None):
    model = ScriptedChatModel(replies=list(replies or ["ANSWER: An answer."] * 10))
    return ChatSession(small_record(), llm=model, embedder=HashingEmbedder()), model


def test_right_after_and_before_that_are_the_next_and_previous_speech():
    s, model = session()
    first = s.ask("What is said at 00:21?")
    assert first.answered_by == "facts" and "fountain" in first.text
    assert s.focus is not None and [x.start for x in s.focus.speech] == [20.0]
    nxt = s.ask("And what is said right after that?")
    assert nxt.answered_by == "facts" and not model.calls  # code answered, no model
    assert nxt.text == (
        "Right after that (after the speech at [00:20–00:24]), at [00:50–00:53] the speech "
        'is: "Let\'s head back before it rains."'
    )
    assert nxt.resolved_question == (
        "And what is said right after that? (after the speech at [00:20–00:24])"
    )
    assert [e.start for e in nxt.evidence] == [50.0]  # cited where it is said
    back = s.ask("What was said just before that?")
    assert back.text.startswith("Just before that (before the speech at [00:50–00:53]), at "
                                "[00:20–00:24]")  # fmt: skip
    first_line = s.ask("And before that?")
    assert "Good morning" in first_line.text
    none = s.ask("And before that?")
    assert none.text.startswith("Nothing is said before that in the record")


def test_at_that_moment_is_the_cited_time():
    s, _ = session()
    s.ask('When does someone say "the fountain is running"?')
    seen = s.ask("What is visible at that moment?")
    assert seen.resolved_question == "What is visible from 00:20 to 00:24?"


def test_the_same_person_is_the_id_the_answer_named():
    c = small_record()
    s = ChatSession(c, llm=ScriptedChatModel(replies=["ANSWER: x"] * 5), embedder=HashingEmbedder())
    first = s.ask("When does the first person appear?")
    assert first.objects == ["person#1"]
    again = s.ask("When is the same person last seen?")
    assert again.resolved_question == "When is person#1 last seen?"
    assert again.answered_by == "facts" and "[00:40]" in again.text


def test_no_focus_or_no_reference_leaves_the_question_as_asked():
    c = small_record()
    assert resolve("What is said right after that?", None, c) is None
    f = Focus(start=20.0, end=24.0, speech=(c.speech[1],))
    assert resolve("How many persons are there?", f, c) is None
    # two objects named: "he" is not resolved
    assert resolve("When does he leave?", Focus(objects=("person#1", "person#2")), c) is None
    # a cancelled answer, or one that points at nothing, sets no focus
    s, _ = session()
    a = s.ask("Who greets the visitors?")
    assert focus_of(a.model_copy(update={"cancelled": True}), c) is None
