"""Words of a question matched to words of the record: stems, related words, spoken times.

The computed facts (`vidchat.text.facts`) ask "does any speech mention the price of the house?",
"which sentence is about the train?", "what time does that sentence name?". A small model answers
those by guessing; these helpers answer them by code, generally (content words, crude stems, a
table of related words), never tuned to one question:

- `stem` folds inflections (``prices``/``priced`` -> ``price``, ``running`` -> ``run``);
- `related` widens a word to its synonyms (``soccer`` -> ``football``) and, for a general word,
  to the kinds of it (``money`` -> ``price``, ``cost``...; never a specific word to its general
  one), from two small hand-written tables (`RELATED`);
- `topic_words` takes the content words of an asked topic (``the price of the house`` ->
  ``price``, ``house``);
- `mentions` says which of those topic words a text mentions;
- `spoken_times` finds the times a sentence names (``half past nine``, ``on Friday``,
  ``early in the morning``, ``the 14th of March``) - times in the speech, not times of the video.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "RELATED",
    "SpokenTime",
    "mentions",
    "related",
    "spoken_times",
    "stem",
    "topic_words",
]

_WORD_RE = re.compile(r"[a-z][a-z'\-]*")

# Words that carry no topic: function words, question words, and the words of asking itself
# ("what does the narrator say about ..."), the video itself, and vague nouns.
_NOT_TOPIC = frozenset(
    """
a an the of in on at to for with from by into onto over under about regarding and or but not no
is are was were be been being am do does did doing done has have had having will would shall
should can could may might must this that these those there here it its it's they them their he
him his she her we us our you your i me my one ones some any anything something nothing every
all each other another such what which who whom whose when where why how whether if then than
so very just also only ever again still yet much many more most less least lot lots
say says said saying tell tells told talk talks talked talking speak speaks spoke speaking
mention mentions mentioned mentioning hear hears heard narrator speaker someone somebody anyone
anybody person people video clip record recording film movie part scene
thing things stuff topic subject matter kind sort way
""".split()  # noqa: SIM905 - a word list reads better as text
)

# Words that name the same thing (each group symmetric: "soccer" is "football").
_SYNONYMS: tuple[tuple[str, ...], ...] = (
    ("football", "soccer"), ("house", "home"), ("flat", "apartment"), ("car", "automobile"),
    ("bicycle", "bike"), ("airplane", "plane", "aircraft"), ("child", "kid"),
    ("film", "movie"), ("shop", "store"), ("exam", "examination", "test"),
    ("meeting", "meet", "appointment"), ("price", "cost"), ("doctor", "physician"),
    ("railway", "railroad"), ("holiday", "vacation"), ("money", "cash"),
)  # fmt: skip
# A general word (first) and the words that are kinds or signs of it: "the weather" is talked
# about when a sentence says "sunny"; the reverse does not hold (a sentence about the weather
# does not mention rain), so a specific word never matches its general word or its siblings.
_KINDS: tuple[tuple[str, ...], ...] = (
    ("money", "price", "cost", "pay", "paid", "payment", "dollar", "euro", "pound", "cheap",
     "expensive", "afford", "fee", "fare", "salary", "budget"),
    ("price", "charge", "fee", "fare", "expensive", "cheap", "dollar", "euro"),
    ("weather", "sunny", "sun", "rain", "rainy", "snow", "wind", "windy", "breeze", "cloud",
     "cloudy", "storm", "warm", "hot", "cold", "temperature", "forecast", "fog"),
    ("sport", "football", "soccer", "tennis", "basketball", "baseball", "golf", "match"),
    ("vehicle", "car", "truck", "bus", "van", "train", "bike", "bicycle", "motorcycle"),
    ("transport", "train", "bus", "car", "plane", "airplane", "taxi", "tram", "metro"),
    ("travel", "trip", "journey", "flight", "train", "airport", "station"),
    ("train", "railway", "station", "platform"),
    ("plane", "airport", "flight"),
    ("school", "exam", "class", "lesson", "teacher", "student"),
    ("food", "meal", "lunch", "dinner", "breakfast", "bread", "apple", "fruit", "cook",
     "cooking", "eat"),
    ("shopping", "shop", "market", "store", "buy", "bought"),
    ("family", "brother", "sister", "mother", "father", "parent", "son", "daughter"),
    ("children", "child", "kid", "boy", "girl"),
    ("health", "doctor", "hospital", "nurse", "clinic", "ill", "sick"),
    ("animal", "cat", "dog", "horse", "bird", "cow", "sheep"),
    ("time", "morning", "evening", "afternoon", "tonight", "today", "tomorrow"),
)  # fmt: skip


def stem(word: str) -> str:
    """A crude stem that folds the inflections a question and a sentence differ by: plural and
    possessive, -ing, -ed, -ly (``prices`` and ``priced`` -> ``price``; ``running`` -> ``run``)."""
    w = word.lower().strip("'-")
    w = w.removesuffix("'s")
    for suffix, add in (("ies", "y"), ("ied", "y"), ("ing", ""), ("ed", ""), ("es", "e"),
                        ("s", ""), ("ly", "")):  # fmt: skip
        if w.endswith(suffix) and len(w) - len(suffix) >= 3 and not w.endswith("ss"):
            w = w[: -len(suffix)] + add
            break
    if len(w) >= 4 and w[-1] == w[-2] and w[-1] not in "lsaeiou":
        w = w[:-1]  # runn(ing) -> run, stopp(ed) -> stop
    return w.removesuffix("e") if len(w) > 4 else w


def _build_related() -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for group in _SYNONYMS:
        stems = {stem(w) for w in group}
        for w in group:
            out.setdefault(stem(w), set()).update(stems)
    kinds: dict[str, set[str]] = {}
    for head, *members in _KINDS:
        kinds.setdefault(stem(head), set()).update(stem(m) for m in members)
    # A word (or its synonym) that heads a list of kinds is mentioned by any of them.
    for word in set(out) | set(kinds):
        same = out.get(word, set()) | {word}
        out[word] = same | {k for s in same for k in kinds.get(s, ())}
    return {k: frozenset(v) for k, v in out.items()}


RELATED: dict[str, frozenset[str]] = _build_related()


def related(word: str) -> frozenset[str]:
    """The stems that count as mentioning `word`: its own, its synonyms', and those of the kinds
    of it (``weather``: ``sunny``, ``rain``...; not the other way round)."""
    s = stem(word)
    return RELATED.get(s, frozenset()) | {s}


def topic_words(text: str) -> list[str]:
    """The content words of an asked topic, in order, once each (``the price of the house`` ->
    ``["price", "house"]``)."""
    out: list[str] = []
    for w in _WORD_RE.findall(text.lower()):
        w = w.strip("'-")
        if len(w) > 1 and w not in _NOT_TOPIC and not w.isdigit() and w not in out:
            out.append(w)
    return out


def mentions(text: str, words: list[str]) -> list[str]:
    """Which of `words` (topic words) `text` mentions: the word itself, an inflection of it, or a
    related word (`RELATED`)."""
    have = {stem(w) for w in _WORD_RE.findall(text.lower())}
    return [w for w in words if related(w) & have]


# ---------------------------------------------------------------------------------------------
# Times a sentence names

_NUM = r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|\d{1,2})"
_MONTH = (
    r"(?:january|february|march|april|may|june|july|august|september|october|november|december)"
)
# A day of the month in digits (14, 14th) or words (fourteenth, twenty-first).
_DAY = (
    r"(?:\d{1,2}(?:st|nd|rd|th)?|(?:(?:twenty|thirty)[- ]?)?(?:first|second|third|fourth|fifth|"
    r"sixth|seventh|eighth|ninth)|tenth|eleventh|twelfth|thirteenth|fourteenth|fifteenth|"
    r"sixteenth|seventeenth|eighteenth|nineteenth|twentieth|thirtieth)"
)
_SPOKEN_TIME_RES: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        # clock times: 9:30, 9.30 pm, half past nine, quarter to ten, nine thirty, ten o'clock
        r"\b(?:at\s+)?\d{1,2}[:.]\d{2}(?:\s*[ap]\.?m\.?)?",
        rf"\b(?:at\s+)?(?:half|quarter|twenty|ten|five|twenty[- ]five)\s+(?:past|to)\s+{_NUM}"
        r"(?:\s+(?:tonight|today|tomorrow|in the (?:morning|afternoon|evening)))?",
        rf"\b(?:at\s+)?{_NUM}\s+(?:o'?\s?clock|thirty|fifteen|forty[- ]five|[ap]\.?m\.?)"
        r"(?:\s+(?:tonight|today|tomorrow|in the (?:morning|afternoon|evening)))?",
        r"\b(?:at\s+)?(?:noon|midnight|midday)\b",
        # days and dates
        r"\b(?:(?:on|next|last|this)\s+)?(?:monday|tuesday|wednesday|thursday|friday|saturday|"
        r"sunday)\b",
        rf"\b(?:on\s+)?(?:the\s+)?{_DAY}\s+(?:of\s+)?{_MONTH}(?:,?\s+\d{{4}})?",
        rf"\b(?:on\s+)?{_MONTH}\s+(?:the\s+)?{_DAY}\b(?:,?\s+\d{{4}})?",
        # a month alone only after "in"/"since"/... or before a year ("may", "march" are verbs)
        rf"\b(?:in|since|until|by|during)\s+{_MONTH}(?:\s+\d{{4}})?\b",
        rf"\b{_MONTH}\s+(?:19|20)\d{{2}}\b",
        r"\b(?:in|since|until|by)\s+(?:19|20)\d{2}\b",
        rf"\bat\s+{_NUM}\b(?!\s*(?:people|persons|of|more|times))",
        r"\b(?:at\s+)?(?:dawn|dusk|sunrise|sunset|daybreak|nightfall)\b",
        r"\b(?:this|next|last|in the)\s+(?:spring|summer|autumn|fall|winter)\b",
        r"\b(?:on|at|over)\s+the\s+weekend\b",
        # parts of the day and relative days
        r"\b(?:early|late)\s+in\s+the\s+(?:morning|afternoon|evening|day)\b",
        r"\b(?:in|during)\s+the\s+(?:morning|afternoon|evening|night)\b",
        r"\b(?:before|after)\s+(?:breakfast|lunch|dinner|work|school|noon)\b",
        r"\b(?:tonight|tomorrow|yesterday|today|this (?:morning|afternoon|evening|week|weekend)|"
        r"next (?:week|month|year)|last (?:night|week|month|year))\b",
        r"\bin\s+(?:\w+\s+)?(?:minutes|hours|days|weeks)\b",
    )
)


@dataclass(frozen=True)
class SpokenTime:
    """A time named in a sentence (its words as said), not a time of the video."""

    words: str
    start: int  # character offsets in the sentence
    end: int


def spoken_times(text: str) -> list[SpokenTime]:
    """The times `text` names, in order, overlapping finds merged into the longest
    (``after lunch on Friday`` -> ``after lunch``, ``on Friday``)."""
    found: list[tuple[int, int]] = []
    for pat in _SPOKEN_TIME_RES:
        for m in pat.finditer(text):
            found.append((m.start(), m.end()))
    found.sort(key=lambda x: (x[0], -x[1]))
    merged: list[tuple[int, int]] = []
    for a, b in found:
        if merged and a < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return [SpokenTime(text[a:b].strip(" ,."), a, b) for a, b in merged]
