"""Facts computed from the record, and evidence quoted by a model checked against the record."""

from __future__ import annotations

import pytest

from tests.conversation.chat_helpers import ScriptedChatModel, small_record
from vidchat.conversation.evidence import verify_evidence
from vidchat.conversation.reply import split_reply
from vidchat.conversation.session import ChatSession
from vidchat.kernel.record import Event
from vidchat.text.facts import facts_for, label_counts, objects_with, said_between, visible_at
from vidchat.text.render import render


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
    # Captions ran: they may say it in their own words, so the model reads them (no direct
    # answer), told that no label or caption has a word for it.
    f = facts_for("Who fell?", ctx)
    assert (f.kind, f.direct) == ("action", None)
    assert f.lines == ["no label or caption in the record uses a word for falling (the captions "
                       "ran; read what they say)"]  # fmt: skip


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


# ---------------------------------------------------------------------------------------------
# Who said it


def _with_speakers(c):
    """The speakers perceiver's events on `c`: speaker 1 (linked to person#1) says the first and
    last sentences, speaker 2 (linked to nobody) the second."""
    from vidchat.kernel.record import Event

    link = "only person on screen for 100% of this speaker's speech"
    for seg, who in zip(c.speech, ("speaker 1", "speaker 2", "speaker 1"), strict=True):
        data = {"speaker": who, "segment_start": seg.start, "speakers": 2}
        if who == "speaker 1":
            data.update(person="person#1", link=link)
        linked = who == "speaker 1"
        c.events.append(Event(start=seg.start, end=seg.end, kind="speaker", source="speakers",
                              text=who + (", likely person#1" if linked else ""),
                              objects=["person#1"] if linked else [], data=data))  # fmt: skip
    return c


@pytest.mark.parametrize(
    ("question", "direct"),
    [
        ('Who said "the fountain is running"?',
         'Speaker 2 says it at [00:20–00:24] ("Look, the fountain is running again."); the record '
         "does not link speaker 2 to any person on screen, so who that is is not known."),
        ("Who says good morning, welcome to the park?",
         'Speaker 1 says it at [00:03–00:06] ("Good morning, welcome to the park."); the record '
         "links speaker 1 to person#1 (only person on screen for 100% of this speaker's speech)."),
        ("Who is speaking at 00:51?",
         'Speaker 1 says it at [00:50–00:53] ("Let\'s head back before it rains."); the record '
         "links speaker 1 to person#1 (only person on screen for 100% of this speaker's speech)."),
        ("Who speaks first?",
         'Speaker 1 says it at [00:03–00:06] ("Good morning, welcome to the park."); the record '
         "links speaker 1 to person#1 (only person on screen for 100% of this speaker's speech)."),
        ('Who said "we sail at dawn"?', 'No speech in the record matches "we sail at dawn".'),
    ],
)  # fmt: skip
def test_who_said_it_names_the_speaker_and_how_the_person_was_linked(ctx, question, direct):
    f = facts_for(question, _with_speakers(ctx))
    assert (f.kind, f.direct) == ("who", direct)


def test_who_said_it_lines_and_speaker_of(ctx):
    from vidchat.text.facts import speaker_of

    c = _with_speakers(ctx)
    f = facts_for('Who said "the fountain is running"?', c)
    assert f.lines == [
        '00:20–00:24 speech: "Look, the fountain is running again." — said by speaker 2 (one of 2 '
        "voices told apart), not linked to any person"
    ]
    who = speaker_of(c, c.speech[0])
    assert (who.speaker, who.person, who.speakers) == ("speaker 1", "person#1", 2)
    assert who.link == "only person on screen for 100% of this speaker's speech"


def test_who_said_it_without_speaker_labels_says_who_is_unknown(ctx):
    f = facts_for('Who said "the fountain is running"?', ctx)
    assert f.direct == (
        'It is said at [00:20–00:24] ("Look, the fountain is running again."); the record has no '
        "speaker labels (the speakers perceiver did not run), so it cannot say who said it."
    )
    # Not a quote to look up: nothing computed, the model answers from the record.
    assert facts_for("Who speaks loudly?", ctx).kind is None


def test_who_said_it_in_a_chat_session_is_answered_from_the_record(ctx):
    model = ScriptedChatModel(replies=[])
    s = ChatSession(_with_speakers(ctx), llm=model)
    a = s.ask("Who says good morning, welcome to the park?")
    assert a.answered_by == "facts" and model.calls == []
    assert "person#1" in a.text and a.objects == ["person#1"]
    assert a.evidence[0].source == "computed" and a.evidence[0].objects == ["person#1"]
    assert [c.text for c in a.citations] == ["[00:03–00:06]"]


# ---------------------------------------------------------------------------------------------
# What the record does not have


def _detected(c, model="package:coco:nanodet:2420f4f6b1ca65bc"):
    """`c` as if the COCO detector had made its objects (and no captioner ran)."""
    from vidchat.kernel.record import Provenance

    c.provenance.append(Provenance(name="detect", version="1", status="ok", model=model))
    c.events = [e for e in c.events if e.kind != "caption"]
    return c


def test_a_thing_the_record_does_not_show_is_said_plainly(ctx):
    c = _detected(ctx)
    f = facts_for("What colour is the car that drives past?", c)
    assert f.kind == "absent"
    assert f.lines == [
        "no car is seen in the record: the object detector looks for it and tracked none, and no "
        "tag or caption names one (tracked labels: dog, person)"
    ]
    assert f.direct == (
        "The record does not show a car: the object detector looks for it and tracked none "
        "(tracked: dog, person), and no tag names one."
    )
    assert facts_for("Is there a horse?", c).direct.startswith("No. The record does not show a ")
    # What the record has is not missing; neither is what a synonym names (a van is a truck).
    assert facts_for("What colour is the dog?", c).kind is None
    assert facts_for("Where do the men go?", c).kind is None
    c.objects[2].label = "truck"
    assert facts_for("Is the van parked?", c).kind is None
    # "orange" is a colour here, not the fruit the detector knows.
    assert "no car is seen" in facts_for("What is the orange car doing?", c).lines[0]


def test_missing_things_are_only_answered_by_code_when_certain(ctx):
    # No record of which detector ran: a missing label proves little, the model answers.
    caption = next(e for e in ctx.events if e.kind == "caption")
    ctx.events.remove(caption)
    f = facts_for("What colour is the car?", ctx)
    assert f.kind == "absent" and f.direct is None
    assert f.lines[0].startswith("no car is seen in the record: no tracked object has that label")
    # A captioner's free text can describe a thing in its own words ("on horseback"): no line
    # says it is missing, the model reads the captions.
    c = _detected(small_record())
    c.events.append(caption)
    assert facts_for("What colour is the car?", c).kind is None
    # A detector of persons only says nothing about cars.
    assert facts_for("What colour is the car?", _detected(small_record(), "yolo:persons")).direct \
        is None  # fmt: skip


def test_a_thing_only_mentioned_is_not_seen(ctx):
    from vidchat.kernel.record import SpeechSegment

    c = _detected(ctx)
    c.speech.append(SpeechSegment(start=55.0, end=57.0, text="The train leaves at noon."))
    f = facts_for("What colour is the train?", c)
    assert f.kind == "absent" and f.direct is None  # the question may be about the words
    assert f.lines[1] == (
        '00:55–00:57 speech: "The train leaves at noon." (a mention of train, not a sighting)'
    )
    # When it leaves is what the speech says, cited where it is said; not a time of the video.
    f = facts_for("When does the train leave?", c)
    assert (f.kind, f.direct) == ("spoken_time", 'The speech names "at noon", said at '
                                  '[00:55–00:57]: "The train leaves at noon.".')  # fmt: skip


def test_speech_about_a_topic(ctx):
    f = facts_for("What does the narrator say about the price of the house?", ctx)
    assert f.kind == "topic"
    assert f.lines == ['no speech in the record mentions "price" or "house" (3 speech segments '
                       "checked)"]  # fmt: skip
    # Nothing mentions it: answered by code, with what is said instead (never a sentence passed
    # off as being about it).
    assert f.direct == (
        "Nothing said in the record mentions the price of the house, and no on-screen text does. "
        'What is said: [00:03–00:06] "Good morning, welcome to the park."; [00:20–00:24] "Look, '
        'the fountain is running again."; [00:50–00:53] "Let\'s head back before it rains.".'
    )
    f = facts_for("What does she say about the fountains?", ctx)
    assert f.lines == [
        'speech mentioning "fountains": 1 of 3 segments',
        '00:20–00:24 speech: "Look, the fountain is running again." (mentions "fountain")',
    ]
    assert f.direct == ('What is said about the fountains, at [00:20–00:24]: "Look, the fountain '
                        'is running again." (it mentions "fountain").')  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Counts, times, phrases


def test_counts_say_how_many_tracks_and_how_many_at_once(ctx):
    from vidchat.kernel.record import ObjectTrack
    from vidchat.text.facts import max_at_once

    assert max_at_once(ctx.objects) == (3, 30.0)
    c = small_record()
    c.objects.append(
        ObjectTrack(id="person#3", label="person", first_seen=41.0, last_seen=50.0, source="detect")
    )
    f = facts_for("How many persons are there?", c)
    assert f.lines == ["person objects in the record: 3 (person#1, person#2, person#3); at most "
                       "2 on screen at once (00:15)"]  # fmt: skip
    assert f.direct.startswith("The record tracks 3 persons (person#1, person#2, person#3); at "
                               "most 2 of them are on screen at once (at [00:15]).")  # fmt: skip
    c.objects = [c.objects[0], c.objects[3]]
    f = facts_for("How many persons are there?", c)
    assert "never two of them on screen at once" in f.direct


def test_a_time_lookup_prefers_what_covers_the_time(ctx):
    from vidchat.kernel.record import Event, SpeechSegment

    ctx.speech.append(SpeechSegment(start=25.0, end=27.0, text="Over there, by the trees."))
    f = facts_for("What is said at 00:24?", ctx)
    assert f.direct == 'At [00:20–00:24] the speech is: "Look, the fountain is running again."'
    # Between two readings of on-screen text: both, said as such.
    ctx.events.append(Event(start=14.0, end=16.0, kind="ocr", text="EXIT", source="ocr"))
    f = facts_for("What text is shown on screen at 00:12?", ctx)
    assert f.lines[0] == "no on-screen text was read at 00:12 itself; nearest readings:"
    assert f.direct.startswith(
        'No on-screen text was read at [00:12] itself. The nearest readings: "CITY PARK — OPEN '
        '6AM-10PM" at [00:10]; "EXIT" at [00:14–00:16].'
    )


def test_a_phrase_said_twice_is_found_both_times(ctx):
    from vidchat.kernel.record import SpeechSegment

    ctx.speech.append(SpeechSegment(start=57.0, end=59.0, text="Look, the fountain is running!"))
    f = facts_for('When does someone say "the fountain is running"?', ctx)
    assert f.direct == (
        'It appears 2 times in the record: said at [00:20]: "Look, the fountain is running '
        'again."; said at [00:57]: "Look, the fountain is running!".'
    )
    assert facts_for('When does someone say "we sail at dawn"?', ctx).direct == (
        'The record has no speech or on-screen text with the words "we sail at dawn".'
    )
    # "and" inside the quoted words is data, not a second question.
    f = facts_for('When does someone say "head back and"?', ctx)
    assert f.direct is not None


def test_first_appearance_is_not_taken_for_an_attribute(ctx):
    ctx.objects[0].attributes.update({"class": "person"})
    f = facts_for("When does the first person appear?", ctx)
    assert (f.kind, f.direct) == ("first_last", "The first person appears at [00:02] (person#1).")


def test_what_an_object_is_doing_says_what_the_record_has_on_it(ctx):
    f = facts_for("What is the dog doing?", ctx)
    assert (f.kind, f.direct) == ("doing", None)
    assert f.lines == [
        'dog#1: seen 00:30–00:45; 00:31 caption: "a brown dog runs across the grass"'
    ]
    f = facts_for("What does person#2 do?", ctx)
    assert f.lines == [
        "person#2: seen 00:15–00:58 (fell=True, posture=fallen); no caption or action in the "
        "record says what it does"
    ]


# ---------------------------------------------------------------------------------------------
# Round 4: topics in speech, actions, times named in speech, what is seen


def _speech(*lines: tuple[float, str]):
    """A record with the detector's objects (persons, a dog), no captions, and these sentences."""
    from vidchat.kernel.record import SpeechSegment

    c = _detected(small_record())
    c.speech = [SpeechSegment(start=t, end=t + 3.0, text=text) for t, text in lines]
    return c


def test_topic_words_stems_synonyms_and_kinds():
    from vidchat.text.topics import mentions, stem, topic_words

    assert topic_words("the price of the house in the video") == ["price", "house"]
    assert stem("prices") == stem("priced") == stem("price")
    assert stem("running") == stem("run") and stem("meeting") == stem("meet")
    # A synonym, and a kind of a general word, count as mentioning it...
    assert mentions("The children are playing football.", ["soccer"]) == ["soccer"]
    assert mentions("It is sunny and warm today.", ["weather"]) == ["weather"]
    assert mentions("Tickets cost five dollars.", ["money"]) == ["money"]
    # ...but a general word is not its kinds: a sentence about the weather says nothing of rain,
    # and buying apples says nothing of a house's price.
    assert mentions("The weather today is sunny.", ["rain"]) == []
    assert mentions("She bought some apples at the market.", ["price", "house"]) == []


def test_a_topic_nobody_speaks_about_is_answered_by_code():
    c = _speech((2.0, "The train to the city leaves early in the morning."),
                (9.0, "My brother likes to read books."))  # fmt: skip
    f = facts_for("What does the speaker say about the election?", c)
    assert f.kind == "topic"
    assert f.direct == (
        "Nothing said in the record mentions the election, and no on-screen text does. What is "
        'said: [00:02–00:05] "The train to the city leaves early in the morning."; [00:09–00:12] '
        '"My brother likes to read books.".'
    )
    # Said as a kind of it: the sentence, with the word it uses for the asked one.
    f = facts_for("Does the narrator mention transport?", c)
    assert f.kind == "topic" and f.direct is not None
    assert '"train" (for transport)' in f.direct and "00:02–00:05" in f.direct
    # Half the topic mentioned: the missing half is said, not glossed over.
    f = facts_for("What is said about the price of the books?", c)
    assert f.direct is not None and f.direct.startswith('Nothing said mentions "price"; speech')
    # On-screen text that mentions it is told apart from speech.
    c.events.append(Event(start=20.0, end=20.0, kind="ocr", text="ELECTION DAY", source="ocr"))
    f = facts_for("What does the speaker say about the election?", c)
    assert f.direct is not None and 'On-screen text mentions "election": [00:20]' in f.direct
    assert "written, not said" in f.direct


def test_an_action_the_record_cannot_see():
    c = _speech((75.0, "She bought some apples and ran out of the market."))
    f = facts_for("Does anyone fall down?", c)
    assert f.kind == "action"
    assert f.direct is not None and f.direct.startswith(
        "The record cannot tell whether anyone is falling: none of the perceivers that ran "
        "(detect) observes actions or postures"
    )
    assert "posture model" in f.direct  # what would be needed, for a fall
    # A word of the speech is something said, not something seen.
    f = facts_for("Is anyone running?", c)
    assert f.direct is not None and "cannot tell whether anyone is running" in f.direct
    assert "(The speech mentions it - 01:15–01:18 speech:" in f.direct
    assert "something said, not something seen" in f.direct
    # What is said about it is a speech question, not an action one; a count of passers-by is a
    # count of tracks.
    assert facts_for("What does she say about running?", c).kind == "topic"
    assert facts_for("How many people walk by?", c).kind == "count"
    # No person at all: said first.
    c.objects = [o for o in c.objects if o.label != "person"]
    f = facts_for("Does anyone dance?", c)
    assert f.direct is not None and f.direct.startswith("No person is seen in the video")


def test_an_action_from_perception_that_sees_it():
    from vidchat.kernel.record import Provenance

    c = _speech()
    c.provenance.append(Provenance(name="action", version="1", status="ok", model="videomae"))
    c.events.append(Event(start=30.0, end=34.0, kind="action", text="dancing ballet",
                          source="action", objects=["person#1"]))  # fmt: skip
    f = facts_for("Does anyone dance?", c)
    assert f.kind == "action"
    assert f.lines == ['00:30–00:34 action: "dancing ballet" (person#1)']
    assert f.direct == ('The record\'s action perceiver shows dancing: [00:30–00:34] action '
                        '"dancing ballet" (person#1).')  # fmt: skip
    # It ran and named no jumping: labels are its own words, so the model reads them.
    f = facts_for("Does anyone jump?", c)
    assert (f.kind, f.direct) == ("action", None)
    assert "no label or caption in the record uses a word for jumping" in f.lines[0]
    # A posture model's fall attribute answers falls (as before).
    c.objects[1].attributes.update(posture="fallen", fell=True)
    assert facts_for("Does anyone fall down?", c).kind == "attribute"


def test_a_time_named_in_speech_is_the_answer():
    from vidchat.text.topics import spoken_times

    said = "We will meet at the library after lunch on Friday."
    assert [t.words for t in spoken_times(said)] == ["after lunch", "on Friday"]
    assert [t.words for t in spoken_times("The bus leaves at half past nine tonight")] == [
        "at half past nine tonight"
    ]
    assert [t.words for t in spoken_times("The exam is on the 14th of March, 2026.")] == [
        "on the 14th of March, 2026"
    ]
    assert spoken_times("The code is four seven two nine") == []
    c = _speech((12.0, "The train to the city leaves early in the morning."), (40.0, said))
    f = facts_for("When does the train leave?", c)
    assert f.kind == "spoken_time"
    assert f.direct == (
        'The speech names "early in the morning", said at '
        '[00:12–00:15]: "The train to the city leaves early in the morning.".'
    )
    f = facts_for("When will they meet at the library?", c)
    assert f.direct is not None and f.direct.startswith(
        'The speech names "after lunch", "on Friday", said at [00:40–00:43]'
    )
    # Every time said, when none is asked about in particular.
    f = facts_for("What time is mentioned in the video?", c)
    assert f.direct is not None and "early in the morning" in f.direct and "Friday" in f.direct
    # The speech about it names no time: said so, never a time made up.
    f = facts_for("When does the bus leave?", _speech((3.0, "The last bus leaves from here.")))
    assert f.direct == ('The speech that mentions it names no time that can be read: '
                        '[00:03–00:06] "The last bus leaves from here." (the words as '
                        "transcribed).")  # fmt: skip
    f = facts_for("What time is mentioned?", _speech((3.0, "The last bus leaves from here.")))
    assert f.direct is not None and f.direct.startswith("No time or date is named in what is")
    # Not about speech: the video's own times.
    assert facts_for("When does the first person appear?", c).kind == "first_last"
    assert facts_for("When does person#2 appear?", c).kind == "first_last"


def test_which_vehicles_and_is_there_a_thing():
    c = _speech()
    f = facts_for("Which animals can be seen?", c)
    assert f.direct == (
        "The record tracks these animals: 1 dog (dog#1; seen first [00:30], last [00:45])."
    )
    f = facts_for("Which vehicles appear in the video?", c)
    assert f.direct is not None and f.direct.startswith(
        "The record shows no vehicle: the object detector looks for "
    )
    assert facts_for("Is there a dog in the video?", c).direct == (
        "Yes: the record tracks 1 dog (dog#1; seen first [00:30], last [00:45])."
    )
    assert facts_for("Is there a horse?", c).direct.startswith("No. The record does not show")
    assert facts_for("Is the dog brown?", c).kind != "seen"  # not a question of presence
    # "…, and when?": the sightings' times are in the facts, so it is still a plain lookup
    # (found as a user, round 6: the model's sentence dropped two of the animals listed).
    for q in ("Which animals appear in the video, and when?", "Which animals appear and when?",
              "Which animals can be seen, and when do they appear?"):  # fmt: skip
        assert facts_for(q, c).direct == facts_for("Which animals can be seen?", c).direct, q
    # A second question after "and" that the facts do not answer still goes to the model.
    assert facts_for("Which animals can be seen and why?", c).direct is None
    assert facts_for("What is said at 00:31, and when is it said again?", c).direct is None


def test_no_animal_at_all_names_what_the_detector_looks_for():
    c = _speech()
    c.objects = [o for o in c.objects if o.label == "person"]
    f = facts_for("Which animals can be seen?", c)
    assert f.direct == (
        "The record shows no animal: the object detector looks for bears, birds, cats, cows, "
        "dogs, elephants, giraffes, horses, sheep, zebras, and tracked none."
    )


def test_counts_name_persons_reidentified_after_a_cut():
    c = small_record()
    c.objects[1].attributes["reidentified"] = (
        "seen 00:15–00:20, 00:46–00:58; same appearance after the cut at 00:46 (similarity 0.95)"
    )
    f = facts_for("How many persons are there?", c)
    assert f.lines[0].endswith("; person#2 re-identified after a cut (one id for each stretch)")
    assert f.direct.startswith("The record tracks 2 persons")
    assert f.direct.endswith(
        "person#2 was seen again after a shot cut and kept the same id (same appearance)."
    )
    assert "re-identified" not in facts_for("How many persons are there?", small_record()).lines[0]


def test_an_about_question_gets_the_lines_that_mention_it():
    """ "What do we learn about the blue ferry?" over a long record was answered with the bakery
    sign: the lines that mention the asked thing now come with the question; when they are few
    and nothing tracked is named by it, they are the answer, quoted whole (round 6: the model
    summarising two such lines dropped one, or denied what they say)."""
    from vidchat.testing.records import long_record

    ctx = long_record(600.0)
    f = facts_for("What do we learn about the blue ferry?", ctx)
    assert f.kind == "about" and f.direct == (
        'What the record says about the blue ferry: [02:13–02:17] speech: "The blue ferry to '
        'Harbor Island leaves at half past four.".'
    )
    # an open question around it still goes to the model, with the same lines
    why = facts_for("What do we learn about the blue ferry, and why?", ctx)
    assert why.kind == "about" and why.direct is None and why.lines == f.lines
    # a thing the record also sees is the model's to describe (what is seen is not quoted)
    c = small_record()
    c.speech[1] = c.speech[1].model_copy(update={"text": "Look at the dog by the fountain."})
    dog = facts_for("What do we learn about the dog?", c)
    assert dog.kind == "about" and dog.direct is None
    assert f.lines[0].startswith('record lines that mention "blue" or "ferry": ')
    assert any("The blue ferry to Harbor Island leaves at half past four." in ln for ln in f.lines)
    assert not any("BAKERY" in ln for ln in f.lines)
    # nothing mentions it: no lines (the model still reads the record), no answer by code
    assert facts_for("What do we learn about the zeppelin?", ctx).kind is None


def test_event_line_is_the_one_form_of_an_on_screen_text_line():
    from vidchat.kernel.record import Event
    from vidchat.text.facts import event_line

    e = Event(kind="ocr", start=10.2, end=13.0, text="CITY LIBRARY", source="ocr")
    assert event_line(e) == '00:10 ocr: "CITY LIBRARY"'
    assert event_line(e, span=True) == '00:10–00:13 ocr: "CITY LIBRARY"'
    short = e.model_copy(update={"end": 10.6})
    assert event_line(short, span=True) == '00:10 ocr: "CITY LIBRARY"'


def test_an_existence_question_is_about_its_subject_not_where_it_is():
    from vidchat.text.facts import exists_subject

    assert exists_subject("Is there a drink on the table?") == "drink"
    assert exists_subject("Can you see an umbrella anywhere?") == "umbrella"
    assert exists_subject("How many persons are there?") is None
    c = small_record()
    c.objects[2] = c.objects[2].model_copy(update={"id": "dining_table#1", "label": "dining_table"})
    # the table is tracked, but a drink is what is asked: no "yes" about the table
    drink = facts_for("Is there a drink on the table?", c)
    assert drink.direct is None and drink.kind == "absent"
    assert drink.lines == ['nothing in the record mentions "drink" (no tracked object, tag, '
                           "caption, speech or on-screen text)"]  # fmt: skip
    assert facts_for("Is there a table in the video?", c).direct.startswith("Yes: the record")
    sea = facts_for("Is there a wave on the sea?", small_record())
    assert sea.lines == ['nothing in the record mentions "wave" or "sea" (no tracked object, '
                         "tag, caption, speech or on-screen text)"]  # fmt: skip


def test_what_do_we_learn_about_a_thing_reads_the_lines_that_mention_it():
    c = small_record()
    c.speech[1] = c.speech[1].model_copy(update={"text": "The train to the park is late."})
    f = facts_for("What do we learn about the train?", c)
    assert f.kind == "about" and any("The train to the park is late." in ln for ln in f.lines)
