"""QA benchmark: do the answers match what generated clips are known to contain?

    nice -n 10 python -m bench.qa_bench [--models llm:qwen2.5-coder-1.5b,llm:smollm2-135m]
        [--max-minutes-per-model 30] [--clips clip10:0,clip30:1,clip60:2,clip300:3]

(run from the repository root). Writes bench/results/qa.json after every model, so a run cut
short keeps what it measured.

The clips are made by the fidelity generator (bench/fidelity: photographs with hard cuts, espeak-ng
sentences, on-screen text, pedestrians from vtest.avi; the ``clip300`` preset, five minutes, is
defined here) plus two spoken-fact clips (a date, a number; tests/fixtures/speech.py). Each clip
is textualized once with the offline profile (through the cache), and the questions are written
from the generator's ground truth — not from the record — so a perception miss costs points too:

- ``speech_at``: what is said at a time (score: at least half of the sentence's content words,
  and not half of another sentence's);
- ``speech_when``: when a phrase is said (every time the clip says it cited within 2.5 s);
- ``text_at``: what on-screen text is shown at a time (half the phrase's words, and not half of
  another phrase's: an answer hedging between two readings is not right);
- ``count_shots`` / ``count_persons``: how many (the first number the answer states; persons are
  the walkers plus each photograph showing a person, once);
- ``first_person``: when the first person appears (within 2.5 s);
- ``date`` / ``number``: a spoken date or number (its parts named);
- ``absent``: something the clip does not contain, by construction (a plain "not in the record"
  counts).

Round 4 (split ``held_out_r4``, written before the code it measures and never tuned on; a spoken
clock-time clip, ``clock``, is added for it):

- ``topic_absent``: what is said about a topic no sentence mentions (a plain "nothing" counts);
- ``topic_said``: what is said about a topic some sentence mentions (half its content words);
- ``action_unobservable``: an action (fall, run, dance...) asked of a record whose perceivers
  cannot see actions: "the record cannot tell" is right, "yes" never is;
- ``spoken_time``: a time named in speech ("after lunch on Friday", "half past nine"): that
  time, and when it was said (cited within 2.5 s);
- ``who_said``: who says a sentence: its time cited (the record's speaker labels are not scored);
- ``present``: which vehicles / animals / things are seen (one word for each, no leading "no").

Round 5 (split ``held_out_r5``, written before the code it measures and never tuned on):

- two-turn questions: a question with a ``previous`` one is asked right after it in the same
  conversation (the previous answer is produced first, not scored):
  ``followup_speech`` ("and what is said right after that?": the sentence said next, scored as
  ``speech_at``; repeating the previous sentence is wrong) and ``followup_text`` ("what text is
  on screen at that moment?", scored as ``text_at``);
- ``same_person``: is the person at one time the same as at another / is the first person seen
  again (the truth: the same photograph, or the same walker; a yes must not say "not the same"
  and, where the truth has a second appearance, cite its time);
- ``seen_again``: when the person is seen again (its time cited); ``appear_count``: how many
  times (separate appearances) the person appears;
- action and topic words used as nouns ("a wave on the sea", "a fall in the price", "a drink
  on the table"): ``absent`` / ``present`` as before;
- ``about``: what do we learn about X (every sentence about it, half its content words);
- questions the computed facts do not recognise (the model answers): ``duration`` (the length,
  as mm:ss or seconds, within a second), ``words`` (groups of alternatives, one of each), and
  ``speech_at`` / ``text_at`` asked without a time ("the first thing said", "the text at the
  beginning").

Reported per model: accuracy overall, per question type and on each half (``tune``, the half
prompt changes may be checked on, and ``held_out``, never looked at while tuning; the split is a
hash of the question); the share of answers whose evidence verified (all quoted lines found in
the record, at least one; facts answered by code count as verified); the invented-fact rate
(answers that cite a time no record observation is near, an object id not in the record, or a
quoted phrase not in the record); time to first token (the model's first token, evidence
included) and to the first shown answer token; seconds per answer.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.results_io import write_results

RESULTS = Path(__file__).parent / "results"
DEFAULT_MODELS = ("llm:qwen2.5-coder-1.5b", "llm:qwen2.5-coder-0.5b", "llm:smollm2-135m")
DEFAULT_CLIPS = "clip10:0,clip30:1,clip60:2,clip300:3"
TIME_TOLERANCE_S = 2.5
_NUM_WORDS = {
    0: "zero", 1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven",
    8: "eight", 9: "nine", 10: "ten", 11: "eleven", 12: "twelve",
}  # fmt: skip
_STOPWORDS = {
    "the", "a", "an", "and", "or", "of", "to", "in", "on", "at", "for", "with", "from", "by",
    "is", "are", "was", "were", "be", "it", "its", "this", "that", "into", "near", "after",
    "before", "some", "about", "will", "has", "have", "been",
}  # fmt: skip
DATE_SENTENCE = "The final exam will take place on the fourteenth of March two thousand twenty six"
NUMBER_SENTENCE = "The code for the back door is four seven two nine"
CLOCK_SENTENCE = "The last bus to the airport leaves at half past nine tonight"
# Questions about what a clip does not contain, with the words that must be absent from its
# truth: no object, photograph tag, sentence or on-screen text of the clip may name them (checked
# when the questions are made). The generator puts vans (found as trucks or cars), cats, cups and
# people into its clips, so the thing asked about is one it never draws and that nothing it draws
# is mistaken for.
ABSENT = [
    ("What colour is the boat on the water?", "absent",
     ("boat", "ship", "ferry", "yacht", "canoe", "water")),
    ("What does the narrator say about the price of the house?", "absent",
     ("price", "prices", "house", "houses", "cost", "costs")),
]  # fmt: skip

# Round 4 (issue 12): a batch written before the code it measures, and never tuned on. Each
# entry: clip, question, kind, and what the truth must hold for it (checked when the questions
# are made; an entry whose check fails is dropped, said loudly and listed in the results):
# - ``key``: the words a truth sentence must contain (the sentence the question is about);
# - ``absent``: words no object, photograph, tag, sentence or on-screen text of the clip names;
# - ``label``: an object label the clip's truth must have;
# - ``any``: groups of alternatives, one of each group in a right answer.
R4_SPLIT = "held_out_r4"
_VEHICLES = [["truck", "trucks", "van", "vans", "lorry"]]
R4: list[tuple[str, str, str, dict[str, object]]] = [
    ("clip10-s0", "Is anyone waving at the camera?", "action_unobservable", {}),
    ("clip10-s0", "What does the narrator say about money?", "topic_absent",
     {"absent": ("money", "cash", "price", "prices", "cost", "dollars", "bank", "pay")}),
    ("clip10-s0", "Which vehicles can be seen in the video?", "present",
     {"label": "truck", "any": _VEHICLES}),
    ("clip10-s0", "Is there a horse in the video?", "absent", {"absent": ("horse", "pony")}),
    ("clip30-s1", "Does anyone fall down?", "action_unobservable", {}),
    ("clip30-s1", "When does the train leave?", "spoken_time",
     {"key": "train", "any": [["early"], ["morning"]]}),
    ("clip30-s1", "What does the speaker say about the election?", "topic_absent",
     {"absent": ("election", "elections", "vote", "voting", "candidate")}),
    ("clip30-s1", "What does the speaker say about the weather?", "topic_said", {"key": "weather"}),
    ("clip30-s1", "Who talks about the weather?", "who_said", {"key": "weather"}),
    ("clip30-s1", "Which animals appear in the video?", "present",
     {"label": "cat", "any": [["cat", "cats", "kitten", "tabby"]]}),
    ("clip30-s1", "Is there a bicycle in the video?", "absent",
     {"absent": ("bicycle", "bicycles", "bike", "bikes", "cyclist")}),
    ("clip60-s2", "Is anyone running?", "action_unobservable", {}),
    ("clip60-s2", "What is said about the hospital?", "topic_absent",
     {"absent": ("hospital", "doctor", "nurse", "clinic")}),
    ("clip60-s2", "What does the speaker say about soccer?", "topic_said", {"key": "football"}),
    ("clip60-s2", "When will they meet at the library?", "spoken_time",
     {"key": "library", "any": [["friday"], ["lunch"]]}),
    ("clip60-s2", "Who says that the meeting has been moved?", "who_said",
     {"key": "meeting has been moved"}),
    ("clip60-s2", "Can you see an umbrella anywhere?", "absent",
     {"absent": ("umbrella", "umbrellas", "parasol")}),
    ("clip60-s2", "Is there a cup in the video?", "present",
     {"label": "cup", "any": [["cup", "cups", "mug"]]}),
    ("clip300-s3", "Does anybody dance?", "action_unobservable", {}),
    ("clip300-s3", "What does the narrator say about the holiday?", "topic_absent",
     {"absent": ("holiday", "holidays", "vacation", "trip")}),
    ("clip300-s3", "What is said about the market?", "topic_said", {"key": "market"}),
    ("clip300-s3", "Who mentions the apples?", "who_said", {"key": "apples"}),
    ("clip300-s3", "Does anyone sit down?", "action_unobservable", {}),
    ("clip300-s3", "Which vehicles can be seen?", "present", {"label": "truck", "any": _VEHICLES}),
    ("clip300-s3", "Are there any birds in the video?", "absent",
     {"absent": ("bird", "birds", "pigeon", "duck")}),
    ("clock", "When does the last bus leave?", "spoken_time",
     {"key": "last bus", "any": [["9:30", "9.30", "half past nine", "nine thirty", "21:30"]]}),
    ("clock", "What time is mentioned in the video?", "spoken_time",
     {"key": "half past nine", "any": [["9:30", "9.30", "half past nine", "nine thirty",
                                        "21:30"]]}),
    ("clock", "What does the speaker say about the train?", "topic_absent",
     {"absent": ("train", "trains", "railway")}),
    ("clock", "Does anyone run for the bus?", "action_unobservable", {"no_persons": True}),
]  # fmt: skip


# Round 5 (issue 12): a batch written before the code it measures, and never tuned on. Each
# entry: clip, question, kind, spec; `r5_question` takes the expectation from the clip's truth
# (an entry the truth does not support unambiguously is dropped and listed, not bent):
# - ``previous``: the question asked first in the same conversation;
# - ``at``: the time the previous question is about (a follow-up's sentence is the one said
#   there), ``key``: words of the sentence it is about; ``dir``: ``after`` / ``before``;
# - ``t1``, ``t2``: times at which exactly one person is on screen (``same_person``), or ``t``
#   (``seen_again`` / ``appear_count``), or ``first``: the first person to appear;
# - ``absent`` / ``label`` / ``any`` / ``key`` as in round 4.
R5_SPLIT = "held_out_r5"
_CUPS = [["cup", "cups", "mug", "coffee", "espresso"]]
R5: list[tuple[str, str, str, dict[str, object]]] = [
    # follow-ups: relative references resolved against the previous answer
    ("clip30-s1", "And what is said right after that?", "followup_speech",
     {"previous": "What is said at 00:13?", "at": 13.0, "dir": "after"}),
    ("clip60-s2", "What is said right after that?", "followup_speech",
     {"previous": "What is said at 00:27?", "at": 27.0, "dir": "after"}),
    ("clip60-s2", "And what was said just before that?", "followup_speech",
     {"previous": "What is said at 00:48?", "at": 48.0, "dir": "before"}),
    ("clip300-s3", "What is said right after that?", "followup_speech",
     {"previous": "What is said at 02:10?", "at": 130.0, "dir": "after"}),
    ("clip300-s3", "What was said before that?", "followup_speech",
     {"previous": "What does the speaker say about the market?", "key": "market",
      "dir": "before"}),
    ("clip30-s1", "What text is on screen at that moment?", "followup_text",
     {"previous": 'When does someone say "train to the city"?', "key": "train to the city"}),
    ("clip60-s2", "What is shown on screen at that moment?", "followup_text",
     {"previous": "What is said at 00:11?", "at": 11.0}),
    ("clip30-s1", "When is the same person seen again?", "seen_again",
     {"previous": "When does the first person appear?", "first": True}),
    # the same person across a cut (re-identified by appearance), or not
    ("clip300-s3", "Is the person seen at 03:32 the same as the one seen at 02:10?",
     "same_person", {"t1": 212.0, "t2": 130.0}),
    ("clip300-s3", "Is the person seen at 00:10 the same as the one seen at 01:30?",
     "same_person", {"t1": 10.0, "t2": 90.0}),
    ("clip300-s3", "When is the person seen at 02:10 seen again?", "seen_again", {"t": 130.0}),
    ("clip300-s3", "How many times does the person at 02:10 appear?", "appear_count",
     {"t": 130.0}),
    ("clip30-s1", "Is the first person to appear seen again later?", "same_person",
     {"first": True}),
    ("clip60-s2", "Is the first person to appear seen again later?", "same_person",
     {"first": True}),
    # action and topic words used as nouns
    ("clip60-s2", "Is there a wave on the sea?", "absent",
     {"absent": ("wave", "waves", "sea", "ocean", "beach", "surf")}),
    ("clip30-s1", "Is there a fall in the price of bread?", "absent",
     {"absent": ("price", "prices", "cost", "cheaper", "fall")}),
    ("clip10-s0", "Is there a catch of fish in the video?", "absent",
     {"absent": ("fish", "fishing", "catch", "boat")}),
    ("clip60-s2", "Is there a drink on the table?", "present", {"label": "cup", "any": _CUPS}),
    # open "what do we learn about X" questions
    ("clip60-s2", "What do we learn about the library?", "about", {"key": "library"}),
    ("clip300-s3", "What do we learn about the market?", "about", {"key": "market"}),
    ("clip30-s1", "What do we learn about the train?", "about", {"key": "train"}),
    ("clip60-s2", "What do we learn about the meeting?", "about",
     {"key": "meeting has been moved"}),
    # questions the computed facts do not recognise (the model's path)
    ("clip60-s2", "How long is the video?", "duration", {}),
    ("clip30-s1", "What is the first thing the speaker says?", "speech_at", {"nth": 0}),
    ("clip300-s3", "What is the last sentence spoken in the video?", "speech_at", {"nth": -1}),
    ("clip10-s0", "What is written on the screen at the beginning of the video?", "text_at",
     {"nth": 0}),
    ("clip30-s1", "What does the brother like to read?", "words",
     {"key": "brother", "any": [["history"], ["science"]]}),
]  # fmt: skip


@dataclass
class Question:
    """One question with what a right answer must contain."""

    clip: str
    text: str
    kind: str
    expect: dict[str, object]
    split: str = ""  # empty: the first batches' halves, by a hash of the question
    previous: str = ""  # a question asked just before, in the same conversation (not scored)

    def __post_init__(self) -> None:
        if not self.split:
            h = hashlib.sha256(f"{self.clip}|{self.text}".encode()).digest()[0]
            self.split = "held_out" if h % 2 else "tune"


@dataclass
class Result:
    """One answer, scored."""

    clip: str
    question: str
    kind: str
    split: str
    answer: str
    correct: bool
    evidence_verified: bool
    invented: list[str] = field(default_factory=list)
    answered_by: str = "llm"
    first_token_s: float | None = None
    first_answer_s: float | None = None
    seconds: float = 0.0
    previous: str = ""  # a two-turn question's first question, and its answer
    previous_answer: str = ""
    off_topic: bool = False  # its evidence verified, but none of it bears on the question
    read_as: str | None = None  # a follow-up as the answer layer read it


def _mmss(t: float) -> str:
    return f"{int(t) // 60:02d}:{int(t) % 60:02d}"


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOPWORDS]


def _times_in(text: str) -> list[float]:
    out = []
    for m in re.finditer(r"(?<![\d:])(?:(\d{1,2}):)?(\d{1,3}):(\d{2})(?![\d])", text):
        h, mm, ss = m.groups()
        out.append(int(mm) * 60 + int(ss) + (int(h) * 3600 if h else 0))
    return out


# ---------------------------------------------------------------------------------------------
# Clips and questions


def _clip300() -> object:
    from vidchat.apps.fidelity.generate import Preset

    # Five minutes, small and sparse (as the "hour" preset, scaled down): cheap to textualize.
    return Preset(
        300.0, 320, 180, 5,
        shot_range=(30.0, 60.0), silence_range=(10.0, 25.0), music_range=(5.0, 15.0),
        text_range=(4.0, 6.0), text_gap=(20.0, 40.0), person_range=(15.0, 30.0),
        person_gap=(20.0, 60.0), crf=30,
    )  # fmt: skip


def fidelity_questions(truth: object) -> list[Question]:
    """Questions from one fidelity clip's ground truth."""
    name = truth.name  # type: ignore[attr-defined]
    qs: list[Question] = []
    sentences = [s.text for s in truth.speech]  # type: ignore[attr-defined]
    phrases = [t.text for t in truth.texts]  # type: ignore[attr-defined]
    for s in truth.speech[:4]:  # type: ignore[attr-defined]
        qs.append(Question(name, f"What is said at {_mmss(s.start + 0.5)}?", "speech_at",
                           {"words": _words(s.text),
                            "not": [_words(x) for x in sentences if x != s.text]}))  # fmt: skip
    if truth.speech:  # type: ignore[attr-defined]
        s = truth.speech[-1]  # type: ignore[attr-defined]
        phrase = " ".join(s.text.split()[1:5])
        # A sentence can be said more than once in a clip: every time is the answer.
        times = [x.start for x in truth.speech if phrase.lower() in x.text.lower()]  # type: ignore[attr-defined]
        qs.append(Question(name, f'When does someone say "{phrase}"?', "speech_when",
                           {"times": times}))  # fmt: skip
    for t in truth.texts[:3]:  # type: ignore[attr-defined]
        others = [_words(x) for x in phrases if x != t.text]
        qs.append(Question(name, f"What text is shown on screen at {_mmss(t.start + 0.5)}?",
                           "text_at", {"words": _words(t.text), "not": others}))  # fmt: skip
    qs.append(Question(name, "How many shot cuts are there?", "count_shots",
                       {"number": len(truth.cuts)}))  # type: ignore[attr-defined]  # fmt: skip
    persons = truth.persons  # type: ignore[attr-defined]
    # The walkers, and each photograph that shows a person once (the astronaut is one person
    # however many shots show the photograph).
    pictured = {o.crop for o in getattr(truth, "objects", []) if o.label == "person"}
    qs.append(Question(name, "How many persons appear in the video?", "count_persons",
                       {"number": len(persons) + len(pictured)}))  # fmt: skip
    everyone = [*persons, *(o for o in getattr(truth, "objects", []) if o.label == "person")]
    if everyone:
        first = min(p.first_seen for p in everyone)
        qs.append(Question(name, "When does the first person appear?", "first_person",
                           {"time": first}))  # fmt: skip
    return qs


def _named_words(truth: object) -> set[str]:
    """Every word a clip's truth names: its objects, photographs and their tags, sentences and
    on-screen text (lower case)."""
    named = [o.label for o in getattr(truth, "objects", [])]
    named += [o.crop for o in getattr(truth, "objects", [])]
    for shot in getattr(truth, "shots", []):
        named += [shot.photo, *shot.tags]
    named += [x.text for x in truth.speech] + [x.text for x in getattr(truth, "texts", [])]  # type: ignore[attr-defined]
    return set(re.findall(r"[a-z]+", " ".join(named).lower()))


def _check_absent(truth: object, question: str, words: tuple[str, ...]) -> None:
    """Raise if the clip's truth names any of `words` (the question would not be about something
    absent): its objects, its photographs and their tags, its sentences and on-screen text."""
    clash = sorted(_named_words(truth) & set(words))
    if clash:
        raise SystemExit(
            f"{truth.name}: the 'absent' question {question!r} is about something the clip "  # type: ignore[attr-defined]
            f"contains ({', '.join(clash)}); expected none of {', '.join(words)} in its truth"
        )


@dataclass
class _SpokenTruth:
    """The truth of a spoken-fact clip: one sentence from about `start`, nothing on screen."""

    name: str
    sentence: str
    start: float = 1.0

    @property
    def speech(self) -> list[object]:
        from vidchat.apps.fidelity.truth import SpeechTruth

        return [SpeechTruth(start=self.start, end=self.start + 4.0, text=self.sentence)]


def _spec_clash(clip: str, spec: dict[str, object], truth: object) -> str | None:
    """Why the clip's truth contradicts a question's spec (a thing said to be absent is there, a
    label asked about is not), or None."""
    if "absent" in spec:
        clash = sorted(_named_words(truth) & set(spec["absent"]))  # type: ignore[arg-type]
        if clash:
            return f"{clip} contains {', '.join(clash)}"
    if "label" in spec:
        labels = {o.label for o in getattr(truth, "objects", [])}
        if spec["label"] not in labels:
            return f"{clip} has no {spec['label']} in its truth (labels: {sorted(labels)})"
    return None


def r4_question(
    clip: str, text: str, kind: str, spec: dict[str, object], truth: object
) -> Question | str:
    """One round-4 question with its expectation taken from the clip's truth, or why the truth
    does not support it (the entry is then dropped, not bent to fit)."""
    speech = [(float(s.start), str(s.text)) for s in truth.speech]  # type: ignore[attr-defined]
    key = str(spec.get("key", "")).lower()
    said = [(t, words) for t, words in speech if key and key in words.lower()]
    if key and not said:
        return f"no sentence of {clip} contains {key!r}"
    clash = _spec_clash(clip, spec, truth)
    if clash:
        return clash
    expect: dict[str, object] = {}
    if kind == "action_unobservable":
        expect = {"no_persons": bool(spec.get("no_persons"))}
    elif kind == "topic_said":
        expect = {"sentences": [_words(words) for _, words in said]}
    elif kind == "who_said":
        expect = {"times": [t for t, _ in said]}
    elif kind == "spoken_time":
        expect = {"any": spec["any"], "times": [t for t, _ in said]}
    elif kind == "present":
        expect = {"any": spec["any"]}
    return Question(clip, text, kind, expect, split=R4_SPLIT)


def _persons_at(truth: object, t: float) -> list[tuple[str, str, bool]]:
    """Who is on screen at `t` by the truth: (id, crop, is a photograph) of each walker and each
    photograph showing a person."""
    out = [(p.id, p.crop, False) for p in truth.persons  # type: ignore[attr-defined]
           if p.first_seen <= t <= p.last_seen]  # fmt: skip
    out += [(o.id, o.crop, True) for o in getattr(truth, "objects", [])
            if o.label == "person" and o.first_seen <= t <= o.last_seen]  # fmt: skip
    return out


def _appearances(truth: object, who: tuple[str, str, bool]) -> list[tuple[float, float]]:
    """Every stretch of one person by the truth: a walker once; a photograph each time it is
    shown (the same photograph is the same person)."""
    pid, crop, photo = who
    if not photo:
        p = next(p for p in truth.persons if p.id == pid)  # type: ignore[attr-defined]
        return [(float(p.first_seen), float(p.last_seen))]
    return sorted((float(o.first_seen), float(o.last_seen)) for o in truth.objects  # type: ignore[attr-defined]
                  if o.label == "person" and o.crop == crop)  # fmt: skip


def r5_question(
    clip: str, text: str, kind: str, spec: dict[str, object], truth: object
) -> Question | str:
    """One round-5 question with its expectation taken from the clip's truth, or why the truth
    does not support it unambiguously (the entry is then dropped, not bent to fit)."""
    speech = sorted((float(s.start), float(s.end), str(s.text)) for s in truth.speech)  # type: ignore[attr-defined]
    texts = sorted((float(x.start), float(x.end), str(x.text))
                   for x in getattr(truth, "texts", []))  # fmt: skip
    previous = str(spec.get("previous", ""))
    key = str(spec.get("key", "")).lower()
    clash = _spec_clash(clip, spec, truth)
    if clash:
        return clash

    def sentence() -> tuple[float, float, str] | str:
        """The sentence the previous question is about (said at `at`, or holding `key`)."""
        if "at" in spec:
            at = float(spec["at"])  # type: ignore[arg-type]
            hits = [s for s in speech if s[0] - 0.5 <= at <= s[1] + 0.5]
        else:
            hits = [s for s in speech if key and key in s[2].lower()]
        if len(hits) != 1:
            return f"{len(hits)} sentences of {clip} match {spec.get('at', key)!r}"
        return hits[0]

    def others(words_of: str, pool: list[tuple[float, float, str]]) -> list[list[str]]:
        return [_words(x[2]) for x in pool if x[2] != words_of]

    expect: dict[str, object] = {}
    if kind == "followup_speech":
        said = sentence()
        if isinstance(said, str):
            return said
        later = [s for s in speech if s[0] > said[0]]
        earlier = [s for s in speech if s[0] < said[0]]
        pick = later[:1] if spec["dir"] == "after" else earlier[-1:]
        if not pick or pick[0][2] == said[2]:
            return f"no different sentence {spec['dir']} {said[2]!r} in {clip}"
        expect = {"words": _words(pick[0][2]), "not": others(pick[0][2], speech)}
    elif kind == "followup_text":
        said = sentence()
        if isinstance(said, str):
            return said
        shown = [x for x in texts if x[0] <= said[1] and x[1] >= said[0]]
        if len(shown) != 1:
            return f"{len(shown)} texts of {clip} are on screen while {said[2]!r} is said"
        expect = {"words": _words(shown[0][2]), "not": others(shown[0][2], texts)}
    elif kind in ("same_person", "seen_again", "appear_count"):
        everyone = [(p.id, p.crop, False) for p in truth.persons]  # type: ignore[attr-defined]
        everyone += [(o.id, o.crop, True) for o in getattr(truth, "objects", [])
                     if o.label == "person"]  # fmt: skip
        if spec.get("first"):
            # One entry per person: a photograph shown twice is one person.
            people = {(w[1] if w[2] else w[0]): w for w in everyone}
            starts = sorted((_appearances(truth, w)[0][0], w) for w in people.values())
            if len(starts) < 2 or starts[1][0] - starts[0][0] < 0.5:
                return f"the first person of {clip} is not clear"
            who = starts[0][1]
        else:
            at = _persons_at(truth, float(spec.get("t", spec.get("t2", 0.0))))  # type: ignore[arg-type]
            if len(at) != 1:
                return f"{len(at)} persons on screen in {clip} at {spec.get('t', spec.get('t2'))}"
            who = at[0]
        spans = _appearances(truth, who)
        first_end = spans[0][1]
        again = [a for a, _ in spans[1:] if a > first_end]
        if kind == "same_person" and "t1" in spec:
            other = _persons_at(truth, float(spec["t1"]))  # type: ignore[arg-type]
            if len(other) != 1:
                return f"{len(other)} persons on screen in {clip} at {spec['t1']}"
            o = other[0]
            same = o == who or (o[2] and who[2] and o[1] == who[1])
            expect = {"same": same, "times": []}
        elif kind == "same_person":
            expect = {"same": bool(again), "times": again}
        elif kind == "seen_again":
            if not again:
                return f"the person in {clip} is not seen again"
            expect = {"times": again[:1]}
        else:
            expect = {"number": len(spans)}
    elif kind == "about":
        said = [s for s in speech if key in s[2].lower()]
        if not said:
            return f"no sentence of {clip} contains {key!r}"
        expect = {"sentences": [_words(s[2]) for s in said]}
    elif kind == "duration":
        expect = {"seconds": float(truth.duration)}  # type: ignore[attr-defined]
    elif kind in ("speech_at", "text_at"):
        pool = speech if kind == "speech_at" else texts
        if not pool:
            return f"{clip} has no {'speech' if kind == 'speech_at' else 'text'}"
        chosen = pool[int(spec["nth"])]  # type: ignore[call-overload]
        expect = {"words": _words(chosen[2]), "not": others(chosen[2], pool)}
    elif kind == "words":
        if not any(key in s[2].lower() for s in speech):
            return f"no sentence of {clip} contains {key!r}"
        if not all(any(any(o in s[2].lower() for o in g) for s in speech)
                   for g in spec["any"]):  # type: ignore[union-attr]  # fmt: skip
            return f"the truth of {clip} does not say {spec['any']}"
        expect = {"any": spec["any"]}
    elif kind == "present":
        expect = {"any": spec["any"]}
    return Question(clip, text, kind, expect, split=R5_SPLIT, previous=previous)


def clips_folder(root: Path) -> Path:
    """Where the clips live: one folder per version of the generator's code, so the questions
    are always written from the truth the current generator draws (a clip made by an older
    generator lacks what it now puts in, e.g. objects in photographs)."""
    from vidchat.apps.fidelity import generate

    digest = hashlib.sha256(Path(generate.__file__).read_bytes()).hexdigest()[:12]
    return root / f"gen-{digest}"


def make_clips(
    work: Path, clips: str, dropped: list[str] | None = None
) -> list[tuple[str, Path, list[Question]]]:
    """Generate the clips (skipping those already made) and write their questions; round-4
    questions the clips' truth does not support are listed in `dropped`."""
    from vidchat.apps.fidelity.generate import PRESETS, generate
    from vidchat.apps.fidelity.truth import Truth

    out = []
    truths: dict[str, object] = {}
    for item in clips.split(","):
        preset, seed = item.split(":")
        name = f"{preset}-s{seed}"
        truth_path = work / f"{name}.truth.json"
        if truth_path.exists():
            truth = Truth.load(truth_path)
        else:
            p = PRESETS.get(preset) or (_clip300() if preset == "clip300" else None)
            if p is None:
                raise SystemExit(f"unknown clip preset {preset!r}")
            truth = generate(name, work, preset=p, seed=int(seed))  # type: ignore[arg-type]
            truth.save(truth_path)
        qs = fidelity_questions(truth)
        for text, kind, absent in ABSENT[: 1 if preset == "clip10" else 2]:
            _check_absent(truth, text, absent)
            qs.append(Question(name, text, kind, {}))
        out.append((name, Path(truth.video), qs))
        truths[name] = truth
    from vidchat.testing.speech import make_speech_video

    for name, sentence, qs_spec in (
        ("date", DATE_SENTENCE, [
            ("What date is mentioned in the video?", "date",
             {"any": [["march"], ["14", "fourteenth", "14th"]]}),
            ("When will the final exam take place?", "date",
             {"any": [["march"], ["14", "fourteenth", "14th"]]}),
        ]),
        ("number", NUMBER_SENTENCE, [
            ("What is the code for the back door?", "number",
             {"any": [["4729", "4 7 2 9", "four seven two nine", "4, 7, 2, 9", "4-7-2-9"]]}),
        ]),
    ):  # fmt: skip
        path = work / f"{name}.mp4"
        if not path.exists():
            make_speech_video(path, sentence, start_s=1.0, duration_s=9.0)
        qs = [Question(name, q, kind, expect) for q, kind, expect in qs_spec]
        qs.append(Question(name, "Is any person visible in the video?", "absent", {}))
        out.append((name, path, qs))
        truths[name] = _SpokenTruth(name, sentence)
    path = work / "clock.mp4"
    if not path.exists():
        make_speech_video(path, CLOCK_SENTENCE, start_s=1.0, duration_s=9.0)
    out.append(("clock", path, []))
    truths["clock"] = _SpokenTruth("clock", CLOCK_SENTENCE)
    for batch, make, round_name in ((R4, r4_question, "round-4"), (R5, r5_question, "round-5")):
        for clip, text, kind, spec in batch:
            if clip not in truths:
                continue  # a clip not asked for in this run
            q = make(clip, text, kind, spec, truths[clip])
            if isinstance(q, str):
                print(f"DROPPED {round_name} question {clip}: {text!r}: {q}", flush=True)
                if dropped is not None:
                    dropped.append(f"{clip}: {text} ({q})")
                continue
            next(qs for name, _, qs in out if name == clip).append(q)
    return [(name, path, qs) for name, path, qs in out if qs]


# ---------------------------------------------------------------------------------------------
# Scoring


def first_number(text: str) -> int | None:
    """The first count the text states, in digits or words; not the digits of an id
    ("person#2") or a time ("00:02"). An answer's headline number is its answer: "7 tracks, at
    most 3 at once" answers 7."""
    low = text.lower()
    found = [(m.start(), int(m.group(1)))
             for m in re.finditer(r"(?<![\d:.#])(\d+)(?![\d:])", low)]  # fmt: skip
    for n, word in _NUM_WORDS.items():
        found += [(m.start(), n) for m in re.finditer(rf"\b{word}\b", low)]
    if re.search(r"\bno (?:shot|cut|person|people)", low):
        found.append((re.search(r"\bno (?:shot|cut|person|people)", low).start(), 0))  # type: ignore[union-attr]
    return min(found)[1] if found else None


# An answer that opens by denying the record holds something (then may repeat the very words).
_DENIAL_RE = re.compile(
    r"\W*(?:no\b|nothing\b|(?:the )?(?:record|video)(?: \w+)? (?:does not|doesn't|did not|"
    r"never|has no)\b|there is no\b)"
)


def score_answer(q: Question, answer: str) -> bool:
    """Whether `answer` is right for `q` (see the module docstring for each kind's rule)."""
    low = answer.lower()
    e = q.expect
    if q.kind in ("speech_at", "text_at", "followup_speech", "followup_text"):
        got = set(_words(answer))

        def said(phrase: list[str]) -> bool:
            words = [w for w in phrase if len(w) > 2] or list(phrase)
            return bool(words) and sum(w in got for w in words) >= max(1, len(words) / 2)

        others = e.get("not", [])
        return said(e["words"]) and not any(said(o) for o in others)  # type: ignore[arg-type, union-attr]
    if q.kind == "speech_when" and "times" in e:
        cited = _times_in(answer)
        return all(
            any(abs(x - float(t)) <= TIME_TOLERANCE_S for x in cited)
            for t in e["times"]  # type: ignore[union-attr]
        )
    if q.kind in ("speech_when", "first_person"):
        t = float(e["time"])  # type: ignore[arg-type]
        return any(abs(x - t) <= TIME_TOLERANCE_S for x in _times_in(answer))
    if q.kind.startswith("count_"):
        return first_number(answer) == int(e["number"])  # type: ignore[call-overload]
    if q.kind in ("date", "number"):
        compact = re.sub(r"[\s,\-]", "", low)
        return all(
            any(opt in low or re.sub(r"[\s,\-]", "", opt) in compact for opt in group)
            for group in e["any"]  # type: ignore[union-attr]
        )
    if q.kind in ("absent", "topic_absent"):
        return bool(re.search(
            r"\b(not|no|none|nothing|isn't|doesn't|does not|cannot|can't|never)\b", low
        ))  # fmt: skip
    if q.kind == "action_unobservable":
        # The record cannot show the action: a right answer says so, and never says yes. Where
        # the clip shows nobody at all, saying that is right too.
        if re.match(r"\W*yes\b", low):
            return False
        cannot = re.search(
            r"\b(cannot|can't|can not|unable|not able|no way|does not (?:say|show|record|tell|"
            r"include|contain)|doesn't (?:say|show|record|tell|include|contain)|not (?:observed|"
            r"recorded|detected|in the record)|no (?:action|posture|pose|activity|movement))",
            low,
        )
        nobody = e.get("no_persons") and re.search(r"\b(no (?:person|people|one)|nobody)\b", low)
        return bool(cannot or nobody)
    if q.kind == "same_person":
        no = re.search(
            r"\b(not the same|different|not seen again|never seen again|no one is seen again|"
            r"not re-?identified|not linked|no link)\b|^\W*no\b",
            low,
        )
        if not e["same"]:
            return bool(no) and not re.match(r"\W*yes\b", low)
        yes = re.search(r"\b(yes|same|again|re-?identified|reappears?|returns?)\b", low)
        cited = _times_in(answer)
        when = all(any(abs(x - float(t)) <= TIME_TOLERANCE_S for x in cited)
                   for t in e["times"])  # type: ignore[union-attr]  # fmt: skip
        return bool(yes) and not no and when
    if q.kind == "seen_again":
        cited = _times_in(answer)
        return not re.match(r"\W*(no|never)\b", low) and all(
            any(abs(x - float(t)) <= TIME_TOLERANCE_S for x in cited)
            for t in e["times"]  # type: ignore[union-attr]
        )
    if q.kind == "appear_count":
        return first_number(answer) == int(e["number"])  # type: ignore[call-overload]
    if q.kind == "duration":
        secs = float(e["seconds"])  # type: ignore[arg-type]
        stated = [float(x) for x in _times_in(answer)]
        stated += [
            float(m.group(1)) for m in re.finditer(r"(\d+(?:\.\d+)?)\s*(?:s|sec|seconds?)\b", low)
        ]
        stated += [
            60 * float(m.group(1)) for m in re.finditer(r"(\d+(?:\.\d+)?)\s*minutes?\b", low)
        ]
        if secs % 60 == 0:
            n = int(secs // 60)
            stated += [60.0 * n for w in (str(n), _NUM_WORDS.get(n, "")) if w and re.search(
                rf"\b{w}\s+minutes?\b|\b{w}-minute\b", low)]  # fmt: skip
        return any(abs(x - secs) <= 1.0 for x in stated)
    if q.kind == "words":
        return all(any(opt in low for opt in group) for group in e["any"])  # type: ignore[union-attr]
    if q.kind in ("topic_said", "about"):
        if _DENIAL_RE.match(low):
            return False  # "The record does not show that <the sentence>" denies it
        got = set(_words(answer))

        def has(phrase: list[str]) -> bool:
            words = [w for w in phrase if len(w) > 2] or list(phrase)
            return bool(words) and sum(w in got for w in words) >= max(1, len(words) / 2)

        return all(has(p) for p in e["sentences"])  # type: ignore[union-attr]
    if q.kind == "who_said":
        cited = _times_in(answer)
        return all(
            any(abs(x - float(t)) <= TIME_TOLERANCE_S for x in cited)
            for t in e["times"]  # type: ignore[union-attr]
        )
    if q.kind == "spoken_time":
        # The time the speech names, and when it was said (cited): not a video time instead.
        named = all(any(opt in low for opt in group) for group in e["any"])  # type: ignore[union-attr]
        cited = _times_in(answer)
        when = any(abs(x - float(t)) <= TIME_TOLERANCE_S for x in cited for t in e["times"])  # type: ignore[union-attr]
        return named and when
    if q.kind == "present":
        if re.match(r"\W*(no|none|nothing)\b", low):
            return False
        return all(
            any(re.search(rf"\b{re.escape(opt)}\b", low) for opt in group)
            for group in e["any"]  # type: ignore[union-attr]
        )
    raise ValueError(f"unknown question kind {q.kind}")


def invented_facts(answer: object, ctx: object, record_text: str) -> list[str]:
    """What the answer names that the record does not hold: times far from every observation,
    object ids not in the record, quoted phrases not in the record, and details (clock times,
    long numbers, names) nothing in the record holds (`Answer.unsupported`)."""
    a = answer  # an vidchat.conversation.session.Answer
    out = [f"id {i}" for i in a.unknown_objects]  # type: ignore[attr-defined]
    out += [f"detail {d}" for d in getattr(a, "unsupported", [])]
    marks: list[float] = []
    for o in ctx.objects:  # type: ignore[attr-defined]
        marks += [o.first_seen, o.last_seen]
    for s in ctx.speech:  # type: ignore[attr-defined]
        marks += [s.start, s.end]
    for ev in ctx.events:  # type: ignore[attr-defined]
        marks += [ev.start, ev.end]
    window = float(getattr(ctx, "render_window_s", 10.0))
    for c in a.citations:  # type: ignore[attr-defined]
        # A cited span (a track's stretch, [02:02–02:34]) is in the record when both its ends
        # are near observations; it need not fit inside one window.
        near = any(abs(m - c.start) <= window for m in marks) and any(
            abs(m - c.end) <= window for m in marks
        )
        if not c.in_video or not near:
            out.append(f"time {c.text}")
    norm_record = " ".join(re.findall(r"[a-z0-9]+", record_text.lower()))
    # Quotes pair in order: a short one ("house") must not shift the pairing so that the text
    # between two quotes reads as a quote.
    quotes = re.findall(r"[\"“]([^\"”]*)[\"”]", a.text)  # type: ignore[attr-defined]
    for quoted in (q for q in quotes if len(q) >= 6):
        words = " ".join(re.findall(r"[a-z0-9]+", quoted.lower()))
        if words and words not in norm_record:
            out.append(f"quote {quoted[:40]!r}")
    return out


# ---------------------------------------------------------------------------------------------
# Running


def run_model(
    model: str,
    clips: list[tuple[str, object, list[Question]]],
    deadline: float,
    use_facts: bool = True,
) -> list[Result]:
    """Ask every question of every clip with `model`; stops at `deadline` (monotonic).
    `use_facts=False`: no computed facts, so every answer is the model's reading of the record
    (how much of the score is code, how much the model)."""
    from vidchat.conversation.session import ChatSession
    from vidchat.kernel.llm_config import LLMConfig

    results: list[Result] = []
    for name, ctx, qs in clips:
        if time.monotonic() > deadline:
            break
        session = ChatSession(
            ctx,  # type: ignore[arg-type]
            llm=LLMConfig(model=model, temperature=0, max_tokens=200),
            use_facts=use_facts,
        )
        session.prefill()  # the record is ready: the first question starts from the cache
        record_text = session.rendered.text
        for q in qs:
            if time.monotonic() > deadline:
                break
            session.reset()  # each question alone: no answer leans on an earlier one
            before = ""
            if q.previous:
                # A two-turn question: the previous question is answered first, in the same
                # conversation (its answer is what "that" refers to); only the second is scored.
                before = session.ask(q.previous).text
            t0 = time.perf_counter()
            first_shown = None
            parts = []
            for chunk in session.stream(q.text):
                if first_shown is None and chunk.strip():
                    first_shown = time.perf_counter() - t0
                parts.append(chunk)
            a = session.last_answer
            assert a is not None
            ev_ok = a.answered_by == "facts" or (
                bool(a.evidence) and all(e.verified for e in a.evidence)
            )
            r = Result(
                clip=name, question=q.text, kind=q.kind, split=q.split, answer=a.text,
                correct=score_answer(q, a.text), evidence_verified=ev_ok,
                invented=invented_facts(a, ctx, record_text), answered_by=a.answered_by,
                previous=q.previous, previous_answer=before,
                off_topic=bool(getattr(a, "off_topic", False)),
                read_as=getattr(a, "resolved_question", None),
                first_token_s=a.first_token_seconds,
                first_answer_s=round(first_shown, 3) if first_shown is not None else None,
                seconds=a.seconds,
            )  # fmt: skip
            results.append(r)
            mark = "ok " if r.correct else "BAD"
            print(f"  [{model}] {mark} {name}: {q.text} -> {a.text[:100]!r} ({a.seconds:.1f}s)",
                  flush=True)  # fmt: skip
    return results


def summarize(results: list[Result]) -> dict[str, object]:
    """Accuracy (overall, per kind, per half), evidence and invention rates, latencies."""

    def share(flags: list[bool]) -> float | None:
        return round(sum(flags) / len(flags), 3) if flags else None

    def acc(rs: list[Result]) -> float | None:
        return share([r.correct for r in rs])

    def med(xs: list[float]) -> float | None:
        xs = sorted(x for x in xs if x is not None)
        return round(xs[len(xs) // 2], 2) if xs else None

    kinds = sorted({r.kind for r in results})
    llm = [r for r in results if r.answered_by == "llm"]
    return {
        "questions": len(results),
        "accuracy": acc(results),
        "accuracy_tune": acc([r for r in results if r.split == "tune"]),
        "accuracy_held_out": acc([r for r in results if r.split == "held_out"]),
        "n_tune": sum(r.split == "tune" for r in results),
        "n_held_out": sum(r.split == "held_out" for r in results),
        "by_split": {
            sp: {
                "accuracy": acc([r for r in results if r.split == sp]),
                "questions": sum(r.split == sp for r in results),
            }
            for sp in sorted({r.split for r in results})
        },
        "by_kind": {k: acc([r for r in results if r.kind == k]) for k in kinds},
        "evidence_verified": share([r.evidence_verified for r in results]),
        "invented_rate": share([bool(r.invented) for r in results]),
        "answered_by_facts": sum(r.answered_by == "facts" for r in results),
        # Relevance: answers whose verified evidence all bears on something else, and how many
        # of those were scored right anyway (a flag on a right answer is a false flag).
        "off_topic_answers": sum(r.off_topic for r in results),
        "off_topic_but_correct": sum(r.off_topic and r.correct for r in results),
        "median_first_token_s": med([r.first_token_s for r in llm]),  # type: ignore[misc]
        "median_first_answer_s": med([r.first_answer_s for r in llm]),  # type: ignore[misc]
        "median_seconds": med([r.seconds for r in llm]),
    }


def _expected_phrases(q: Question) -> list[list[str]]:
    """The word lists a right answer restates (the sentence or text asked about), if any."""
    e = q.expect
    if "words" in e:
        return [list(e["words"])]  # type: ignore[call-overload]
    if "sentences" in e:
        return [list(x) for x in e["sentences"]]  # type: ignore[union-attr]
    return []


def relevance_probe(clips: list[tuple[str, object, list[Question]]]) -> dict[str, object]:
    """The relevance check (`vidchat.conversation.relevance`) run on every speech and on-screen
    text line of each clip's record as if a model had quoted it for each question: the lines
    that hold the expected answer must never be flagged (false flags); the lines that share none
    of its words should be (off-topic quotes flagged). No model: fast and exact."""
    from vidchat.conversation.grounding import record_lines
    from vidchat.conversation.relevance import Anchors, anchors_of, bears_on
    from vidchat.text.render import render

    right = right_flagged = off = off_flagged = unanchored = 0
    false_flags: list[str] = []
    by_kind: dict[str, list[int]] = {}
    for _name, ctx, qs in clips:
        lines = record_lines(render(ctx).text)  # type: ignore[arg-type]
        data = [ln for ln in lines if re.search(r"\b(?:speech|ocr)\b.*: \"", ln)]
        for q in qs:
            text = q.text if not q.previous else f"{q.previous} {q.text}"
            anchors = anchors_of(q.text, ctx)  # type: ignore[arg-type]
            if anchors.empty or not any(bears_on(ln, anchors) for ln in lines):
                unanchored += 1
                continue
            phrases = _expected_phrases(q)
            # The line that answers: the kind's own (speech or on-screen text), at the time the
            # question names (the same sentence said again later does not answer "at 00:01").
            own = {"text_at": "ocr", "followup_text": "ocr"}.get(q.kind, "speech")
            when = anchors.times and Anchors(times=anchors.times)
            for ln in data:
                got = set(_words(ln))
                holds = any(sum(w in got for w in p if len(w) > 2) >= max(1, len(p) / 2)
                            for p in phrases)  # fmt: skip
                holds = holds and f" {own}" in ln and (not when or bears_on(ln, when))
                flagged = not bears_on(ln, anchors)
                if holds:
                    right += 1
                    right_flagged += flagged
                    if flagged:
                        false_flags.append(f"{q.clip}: {text} <- {ln}")
                elif phrases and not any(set(p) & got for p in phrases):
                    off += 1
                    off_flagged += flagged
                    k = by_kind.setdefault(q.kind, [0, 0])
                    k[0] += 1
                    k[1] += flagged
    return {
        "questions_without_anchors": unanchored,
        "right_lines": right,
        "right_lines_flagged": right_flagged,
        "false_flags": false_flags[:20],
        "off_topic_lines": off,
        "off_topic_lines_flagged": off_flagged,
        "off_topic_flagged_share": round(off_flagged / off, 3) if off else None,
        "off_topic_flagged_by_kind": {k: round(v[1] / v[0], 3) for k, v in sorted(by_kind.items())},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="qa_bench", description=__doc__.splitlines()[0])
    ap.add_argument(
        "--models",
        default=",".join(DEFAULT_MODELS),
        help="comma-separated; MODEL=MINUTES caps that model's time (else --max-minutes-per-model)",
    )
    ap.add_argument("--clips", default=DEFAULT_CLIPS, help="PRESET:SEED,... (fidelity presets)")
    ap.add_argument("--profile", default="offline")
    ap.add_argument("--max-minutes-per-model", type=float, default=60.0)
    ap.add_argument("--out", type=Path, default=RESULTS / "qa.json")
    ap.add_argument(
        "--no-facts",
        action="store_true",
        help="no computed facts: every question goes to the model (a diagnostic, not the product)",
    )
    ap.add_argument(
        "--relevance-only",
        action="store_true",
        help="no model: only the relevance check on every record line for every question",
    )
    args = ap.parse_args(argv)

    from vidchat.kernel.models import cache_dir
    from vidchat.pipeline.core import textualize

    work = clips_folder(cache_dir() / "bench" / "qa")
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    clips = []
    textualize_s = {}
    dropped: list[str] = []
    for name, video, qs in make_clips(work, args.clips, dropped):
        t1 = time.perf_counter()
        ctx = textualize(video, args.profile)
        textualize_s[name] = round(time.perf_counter() - t1, 1)
        clips.append((name, ctx, qs))
        print(f"{name}: {ctx.video.duration:.0f} s, {len(ctx.speech)} speech, "
              f"{len(ctx.objects)} objects, {len(ctx.events)} events, {len(qs)} questions "
              f"({textualize_s[name]} s)", flush=True)  # fmt: skip
    n_questions = sum(len(qs) for _, _, qs in clips)
    if args.relevance_only:
        probe = relevance_probe(clips)
        print(json.dumps(probe, indent=1))
        write_results(args.out, {"questions": n_questions, "relevance_probe": probe})
        return 0
    report: dict[str, object] = {
        "machine": f"{platform.machine()} {os.cpu_count()} cpu",
        "profile": args.profile,
        "facts": not args.no_facts,
        "clips": {n: {"duration": c.video.duration, "questions": len(q)} for n, c, q in clips},
        "questions": n_questions,
        "textualize_s": textualize_s,
        "dropped_questions": dropped,
        "relevance_probe": relevance_probe(clips),
        "models": {},
        "answers": {},
    }
    for item in [m for m in args.models.split(",") if m]:
        model, _, minutes = item.partition("=")
        deadline = time.monotonic() + float(minutes or args.max_minutes_per_model) * 60
        print(f"== {model}", flush=True)
        try:
            results = run_model(model, clips, deadline, use_facts=not args.no_facts)
        finally:
            from vidchat.llm.server import stop_all

            stop_all()  # one model's server at a time: they would share two cores
        summary = summarize(results)
        summary["complete"] = len(results) == n_questions
        report["models"][model] = summary  # type: ignore[index]
        report["answers"][model] = [asdict(r) for r in results]  # type: ignore[index]
        report["seconds"] = round(time.perf_counter() - t0, 1)
        write_results(args.out, report)
        print(json.dumps({model: summary}, indent=1), flush=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
