"""A verified quote is not a verified answer: evidence that exists in the record but bears on
something else is marked ``relevant=False`` (`vidchat.conversation.relevance`), never shown as a
citation, and the answer is flagged ``off_topic``."""

from __future__ import annotations

from tests.conversation.chat_helpers import HashingEmbedder, ScriptedChatModel, small_record
from vidchat.cli.chat import format_evidence
from vidchat.conversation.relevance import anchors_of, bears_on
from vidchat.conversation.session import ChatSession
from vidchat.testing.records import long_record

BAKERY = '06:52–06:55 ocr: "BAKERY - FRESH CROISSANTS DAILY"'
FERRY = '02:13–02:17 speech: "The blue ferry to Harbor Island leaves at half past four."'


def ask(ctx, reply, question):
    s = ChatSession(ctx, llm=ScriptedChatModel(replies=[reply]), embedder=HashingEmbedder())
    return s.ask(question)


def test_the_bakery_sign_does_not_answer_a_question_about_the_ferry():
    ctx = long_record(600.0)
    reply = f"EVIDENCE:\n- {BAKERY}\nANSWER: The blue ferry is a bakery that sells croissants."
    a = ask(ctx, reply, "What do we learn about the blue ferry, and why?")
    ev = [e for e in a.evidence if e.source == "record"]
    assert [(e.verified, e.relevant) for e in ev] == [(True, False)]
    assert a.off_topic
    shown = format_evidence(a)
    assert not any("BAKERY" in ln for ln in shown)  # never a citation
    assert any("does not bear on the question" in ln for ln in shown)
    # The right line is relevant, and shown.
    good = ask(ctx, f"EVIDENCE:\n- {FERRY}\nANSWER: It leaves at half past four.",
               "What do we learn about the blue ferry, and why?")  # fmt: skip
    assert [e.relevant for e in good.evidence if e.source == "record"] == [True]
    assert not good.off_topic and any("Harbor Island" in ln for ln in format_evidence(good))


def test_questions_without_topic_words_flag_nothing():
    ctx = small_record()
    sign = 'EVIDENCE:\n- 00:10 ocr: "CITY PARK — OPEN 6AM-10PM"\nANSWER: A park sign.'
    for q in ("Summarise the video.", "What happens in the video?", "Describe the scene."):
        a = ask(ctx, sign, q)
        assert [e.relevant for e in a.evidence] == [None] and not a.off_topic, q
    # a time the question names: the line at that time bears on it, one far away does not
    assert ask(ctx, sign, "What happens at 00:11?").evidence[0].relevant is True
    assert ask(ctx, sign, "What happens at 00:52?").evidence[0].relevant is False


def test_anchors_and_lines():
    ctx = small_record()
    a = anchors_of("What do we learn about the price of the fountain at 00:21?", ctx)
    assert a.words == ("price", "fountain") and a.times == (21.0,)
    assert anchors_of("Summarise the video", ctx).empty
    dog = anchors_of("Where does dog#1 go?", ctx)
    assert dog.ids == ("dog#1",) and bears_on("00:31–00:35 caption: a dog runs (dog#1)", dog)
    # related words count: the weather is talked about in "it rains"
    w = anchors_of("What is said about the weather?", ctx)
    assert bears_on('00:50–00:53 speech: "Let\'s head back before it rains."', w)
    assert not bears_on('00:03–00:06 speech: "Good morning, welcome to the park."', w)


def test_nothing_in_the_record_bears_on_it_flags_nothing():
    """A topic the record never mentions: every line is "off-topic", so the check says nothing
    (the answer's own wording decides; the facts say the topic is absent)."""
    ctx = small_record()
    sign = 'EVIDENCE:\n- 00:10 ocr: "CITY PARK — OPEN 6AM-10PM"\nANSWER: Nothing about it.'
    a = ask(ctx, sign, "What do we learn about the zeppelin?")
    assert [e.relevant for e in a.evidence if e.source == "record"] == [None]
