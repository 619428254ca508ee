"""The QA benchmark's scoring: each question kind's rule, on hand-written answers (right, wrong,
and the traps: digits of ids, times that are not counts), the halves, and invented facts."""

from __future__ import annotations

from bench.qa_bench import (
    Question,
    Result,
    fidelity_questions,
    invented_facts,
    score_answer,
    summarize,
)
from tests.conversation.chat_helpers import ScriptedChatModel, small_record
from vidchat.apps.fidelity.truth import (
    PathPoint,
    PersonTruth,
    ShotTruth,
    SpeechTruth,
    TextTruth,
    Truth,
)
from vidchat.conversation.session import ChatSession


def q(kind: str, **expect) -> Question:
    return Question("clip", f"a {kind} question", kind, expect)


def test_rules_per_kind():
    words = q("speech_at", words=["brother", "likes", "read", "books", "history", "science"])
    assert score_answer(words, 'They say "My brother likes to read books" [00:01].')
    assert not score_answer(words, "Someone talks about the weather.")
    when = q("speech_when", time=0.8)
    assert score_answer(when, "At [00:02].") and not score_answer(when, "At [00:07].")
    count = q("count_persons", number=2)
    assert score_answer(count, "Two people.") and score_answer(count, "2 persons")
    assert not score_answer(count, "3 persons: person#1, person#2, person#3 at 00:02")
    date = q("date", any=[["march"], ["14", "fourteenth", "14th"]])
    assert score_answer(date, "On March 14th.") and not score_answer(date, "In March.")
    number = q("number", any=[["4729", "four seven two nine"]])
    assert score_answer(number, "The code is 4-7-2-9.") and not score_answer(number, "4728")
    absent = q("absent")
    assert score_answer(absent, "The record does not show a car.")
    assert not score_answer(absent, "The car is red [00:19].")


def test_questions_come_from_the_truth_and_split_in_halves():
    truth = Truth(
        name="clip30-s1", seed=1, video="x.mp4", duration=30.0, width=640, height=360, fps=10.0,
        shots=[ShotTruth(start=0, end=10, photo="coffee", tags=["cup"]),
               ShotTruth(start=10, end=30, photo="rocket", tags=["missile"])],
        speech=[SpeechTruth(start=2.0, end=5.0, text="The train to the city leaves early")],
        texts=[TextTruth(start=12.0, end=15.0, text="RIVER VIEW", box=(0, 0, 10, 10))],
        persons=[PersonTruth(id="person#1", first_seen=4.0, last_seen=9.0, crop="a",
                             path=[PathPoint(t=4.0, box=(0, 0, 5, 5))])],
    )  # fmt: skip
    qs = fidelity_questions(truth)
    kinds = [x.kind for x in qs]
    assert kinds == ["speech_at", "speech_when", "text_at", "count_shots", "count_persons",
                     "first_person"]  # fmt: skip
    assert qs[0].text == "What is said at 00:02?" and qs[3].expect == {"number": 1}
    assert {x.split for x in qs} <= {"tune", "held_out"}
    assert Question("c", "same", "absent", {}).split == Question("c", "same", "absent", {}).split


def test_invented_facts_and_summary():
    ctx = small_record()
    s = ChatSession(ctx, llm=ScriptedChatModel(replies=[
        'person#7 says "we sail at dawn" [09:30]; person#1 says "Good morning" [00:03]'
    ]))  # fmt: skip
    a = s.ask("Who speaks, and what do they say?")
    bad = invented_facts(a, ctx, s.rendered.text)
    assert bad == ["id person#7", "time [09:30]", "quote 'we sail at dawn'"]
    # A short quote keeps the pairing: the words between two quotes are not a quote.
    s2 = ChatSession(ctx, llm=ScriptedChatModel(replies=[
        'It mentions "park" as said, not written: "Good morning, welcome to the park." [00:03]'
    ]))  # fmt: skip
    a2 = s2.ask("What is said about the park, and why?")
    assert invented_facts(a2, ctx, s2.rendered.text) == []
    rows = [
        Result("c", "q1", "absent", "tune", "a", True, True, [], "llm", 1.0, 2.0, 3.0),
        Result("c", "q2", "date", "held_out", "b", False, False, ["time [09:30]"], "llm", 1.0,
               2.0, 5.0),
        Result("c", "q3", "count_persons", "held_out", "c", True, True, [], "facts", 0, 0, 0),
    ]  # fmt: skip
    sm = summarize(rows)
    assert (sm["accuracy"], sm["accuracy_tune"], sm["accuracy_held_out"]) == (0.667, 1.0, 0.5)
    assert sm["evidence_verified"] == 0.667 and sm["invented_rate"] == 0.333
    assert sm["answered_by_facts"] == 1 and sm["median_seconds"] == 5.0


def test_round4_rules():
    action = q("action_unobservable", no_persons=False)
    assert score_answer(action, "The record cannot tell: no perceiver that sees actions ran.")
    assert not score_answer(action, "Yes, someone falls at [01:13]; the record cannot say who.")
    assert not score_answer(action, "No one falls.")  # a claim the record cannot back
    nobody = q("action_unobservable", no_persons=True)
    assert score_answer(nobody, "No person is seen in the video.")
    topic = q("topic_said", sentences=[["weather", "today", "sunny", "warm", "breeze", "west"]])
    assert score_answer(topic, 'At [00:16] the speech is: "The weather today is sunny and warm"')
    assert not score_answer(topic, "Nothing said in the record mentions it.")
    # A denial that repeats the sentence's words is still a denial (round 6, clip300 market).
    denial = "The record does not show that the weather today is sunny and warm with a breeze."
    assert not score_answer(topic, denial)
    assert not score_answer(q("about", sentences=topic.expect["sentences"]), denial)
    assert score_answer(q("topic_absent"), "Nothing said in the record mentions the election.")
    assert not score_answer(q("topic_absent"), "The narrator says the weather is sunny.")
    who = q("who_said", times=[46.7])
    assert score_answer(who, "Speaker 1 says it at [00:46–00:50].")
    assert not score_answer(who, "Speaker 1 says it.")
    clock = q("spoken_time", any=[["9:30", "half past nine"]], times=[1.0])
    assert score_answer(clock, 'At half past nine, said at [00:01]: "The last bus ... nine"')
    assert not score_answer(clock, "At [00:01].")  # the video time is not the time asked
    assert not score_answer(clock, "At half past nine.")  # and when it was said is cited
    present = q("present", any=[["truck", "van"]])
    assert score_answer(present, "A truck (truck#1) is seen from [00:01].")
    assert not score_answer(present, "No vehicle is seen; the record has no truck.")


def test_round4_questions_are_checked_against_the_truth():
    from bench.qa_bench import R4_SPLIT, r4_question

    truth = Truth(
        name="clip30-s1", seed=1, video="x.mp4", duration=30.0, width=640, height=360, fps=10.0,
        shots=[ShotTruth(start=0, end=10, photo="coffee", tags=["cup"])],
        speech=[SpeechTruth(start=2.0, end=5.0, text="The train to the city leaves early")],
        texts=[TextTruth(start=12.0, end=15.0, text="RIVER VIEW", box=(0, 0, 10, 10))],
        persons=[],
    )  # fmt: skip
    when = r4_question("c", "When does the train leave?", "spoken_time",
                       {"key": "train", "any": [["early"]]}, truth)  # fmt: skip
    assert isinstance(when, Question) and when.split == R4_SPLIT
    assert when.expect == {"any": [["early"]], "times": [2.0]}
    who = r4_question("c", "Who talks about the train?", "who_said", {"key": "train"}, truth)
    assert isinstance(who, Question) and who.expect == {"times": [2.0]}
    # The truth must support the question, else it is dropped with the reason.
    assert "contains cup" in str(r4_question("c", "Cups?", "absent", {"absent": ("cup",)}, truth))
    assert "no sentence" in str(r4_question("c", "?", "who_said", {"key": "boat"}, truth))
    assert "no truck" in str(r4_question("c", "?", "present", {"label": "truck", "any": []},
                                         truth))  # fmt: skip


def test_round5_rules():
    same = q("same_person", same=True, times=[16.5])
    assert score_answer(same, "Yes: person#1 is seen again after the cut at [00:16].")
    assert not score_answer(same, "No, person#1 at [00:16] is not the same person.")
    assert not score_answer(same, "Yes, the same person.")  # the second appearance is not cited
    other = q("same_person", same=False, times=[])
    assert score_answer(other, "No: person#1 and person#2 are different ids, not linked.")
    assert not score_answer(other, "Yes, it is the same person.")
    again = q("seen_again", times=[211.6])
    assert score_answer(again, "person#3 is seen again from [03:31] to [04:09].")
    assert not score_answer(again, "It is never seen again.")
    assert score_answer(q("appear_count", number=2), "Twice: two stretches, [02:02] and [03:31].")
    length = q("duration", seconds=60.0)
    assert score_answer(length, "The video is 01:00 long.")
    assert score_answer(length, "It lasts 60 seconds.") and score_answer(length, "One minute.")
    assert not score_answer(length, "It lasts 45 seconds.")
    assert score_answer(q("words", any=[["history"], ["science"]]), "History and science books.")
    follow = q("followup_speech", words=["weather", "sunny", "warm"])
    follow.expect["not"] = [["train", "city", "early"]]
    assert score_answer(follow, 'Next: "The weather today is sunny and warm" [00:16].')
    assert not score_answer(follow, 'Again: "The train to the city leaves early" [00:12].')


def test_round5_questions_are_checked_against_the_truth():
    from bench.qa_bench import R5_SPLIT, r5_question
    from vidchat.apps.fidelity.truth import ObjectTruth

    box = (0.0, 0.0, 5.0, 5.0)
    photo = [ObjectTruth(id=f"photo-person#{i}", label="person", first_seen=a, last_seen=b,
                         crop="astronaut", path=[PathPoint(t=a, box=box)])
             for i, (a, b) in enumerate([(0.0, 4.0), (16.0, 23.0)], 1)]  # fmt: skip
    truth = Truth(
        name="c", seed=1, video="x.mp4", duration=30.0, width=640, height=360, fps=10.0,
        shots=[ShotTruth(start=0, end=30, photo="astronaut", tags=[])],
        speech=[SpeechTruth(start=2.0, end=5.0, text="The train to the city leaves early"),
                SpeechTruth(start=12.0, end=14.0, text="The weather is sunny")],
        texts=[TextTruth(start=1.0, end=4.0, text="RIVER VIEW", box=box)],
        persons=[PersonTruth(id="person#1", first_seen=8.0, last_seen=11.0, crop="a",
                             path=[PathPoint(t=8.0, box=box)])],
        objects=photo,
    )  # fmt: skip
    nxt = r5_question(
        "c",
        "And right after that?",
        "followup_speech",
        {"previous": "What is said at 00:03?", "at": 3.0, "dir": "after"},
        truth,
    )
    assert isinstance(nxt, Question) and nxt.split == R5_SPLIT
    assert nxt.previous == "What is said at 00:03?" and nxt.expect["words"][0] == "weather"
    shown = r5_question("c", "On screen then?", "followup_text",
                        {"previous": "?", "key": "train"}, truth)  # fmt: skip
    assert isinstance(shown, Question) and shown.expect["words"] == ["river", "view"]
    same = r5_question("c", "Same?", "same_person", {"t1": 20.0, "t2": 2.0}, truth)
    assert isinstance(same, Question) and same.expect == {"same": True, "times": []}
    diff = r5_question("c", "Same?", "same_person", {"t1": 9.0, "t2": 2.0}, truth)
    assert isinstance(diff, Question) and diff.expect["same"] is False
    first = r5_question("c", "Again?", "same_person", {"first": True}, truth)
    assert isinstance(first, Question) and first.expect == {"same": True, "times": [16.0]}
    count = r5_question("c", "How many times?", "appear_count", {"t": 2.0}, truth)
    assert isinstance(count, Question) and count.expect == {"number": 2}
    # Nobody (or two people) at a time the question names: dropped, with the reason.
    assert "0 persons" in str(r5_question("c", "?", "seen_again", {"t": 6.0}, truth))
    assert "no different sentence" in str(r5_question(
        "c", "?", "followup_speech", {"at": 13.0, "dir": "after"}, truth))  # fmt: skip


def test_off_topic_answers_are_counted():
    rows = [
        Result("c", "q1", "about", "tune", "a", True, True, off_topic=False),
        Result("c", "q2", "about", "tune", "b", False, True, off_topic=True),
        Result("c", "q3", "about", "tune", "c", True, True, off_topic=True),
    ]
    sm = summarize(rows)
    assert sm["off_topic_answers"] == 2 and sm["off_topic_but_correct"] == 1
