"""Action words count only as verbs about an agent (`vidchat.text.actions.asked_actions`): "is
there a wave on the sea?" is not an action question, "is anyone waving?" is."""

from __future__ import annotations

import pytest

from tests.conversation.chat_helpers import small_record
from vidchat.text.actions import asked_actions
from vidchat.text.facts import facts_for


@pytest.mark.parametrize(
    ("question", "action"),
    [
        ("Does anyone fall down?", "fall"),
        ("Who fell?", "fall"),
        ("Who has fallen?", "fall"),
        ("Is anyone waving at the camera?", "wave"),
        ("Is anyone running?", "run"),
        ("Does anybody dance?", "dance"),
        ("When does the dog jump?", "jump"),
        ("Did person#2 fall?", "fall"),
        ("How many people walk by?", "walk"),
        ("Does the video show anyone falling?", "fall"),
    ],
)
def test_a_verb_about_an_agent_is_an_action(question, action):
    assert [a.name for a in asked_actions(question)] == [action]


@pytest.mark.parametrize(
    "question",
    [
        "Is there a wave on the sea?",
        "Is there a fall in the price?",
        "Is there a big fall in prices?",
        "What is the run time of the video?",
        "Is there a drink on the table?",
        "Is there a play at the theatre?",
        "What does the speaker say about the children's play?",
        'When does someone say "we fall back"?',
    ],
)
def test_a_noun_or_a_quote_is_not_an_action(question):
    assert asked_actions(question) == []


def test_a_noun_does_not_trigger_the_fell_attribute_or_cannot_tell():
    c = small_record()
    c.objects[1].attributes.update(posture="fallen", fell=True)
    assert facts_for("Who fell?", c).kind == "attribute"
    noun = facts_for("Is there a fall in the price?", c)
    assert noun.kind != "attribute" and noun.kind != "action"
    wave = facts_for("Is there a wave on the sea?", small_record())
    assert wave.kind != "action"
    assert facts_for("Is anyone waving?", small_record()).kind == "action"
