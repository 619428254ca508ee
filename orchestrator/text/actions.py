"""Actions a question asks about, and which perception in a record could have seen them.

"Does anyone fall down?" has an answer in the record only if something that sees actions or
postures ran: the ``action`` perceiver (video classification), captions, or the detector's
posture model (falls). A detector and tracker alone record where objects are and when, not what
they do; over such a record a small model invents "yes, at 01:13". `asked_actions` finds the
actions a question names (one word list per action, irregular forms included), and
`action_observers` says which of the record's perceivers could show each; `vidchat.text.facts`
turns that into "the record cannot tell" or into the lines that do show it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vidchat.kernel.record import VideoContext

__all__ = [
    "ACTIONS",
    "Action",
    "Observer",
    "action_observers",
    "asked_actions",
    "names_action",
    "used_as_verb",
]


@dataclass(frozen=True)
class Action:
    """One action: its name, the words a question or a label uses for it, and the posture
    values (from a posture model) that show it."""

    name: str  # the verb, as in "whether anyone {name}s"
    words: tuple[str, ...]
    postures: tuple[str, ...] = ()

    @property
    def gerund(self) -> str:
        """``falling``, ``running``, ``dancing`` (for a sentence about it)."""
        n = self.name.split()[0]
        rest = self.name[len(n) :]
        if n.endswith("e") and not n.endswith("ee"):
            return n[:-1] + "ing" + rest
        if n in ("run", "sit", "swim", "hit", "jog", "clap"):
            return n + n[-1] + "ing" + rest
        if n == "lie":
            return "lying" + rest
        return n + "ing" + rest


# Actions people (and animals) do, each with the forms a question or a label spells it. Verbs
# whose answer the record does hold are left out on purpose: saying and talking (speech), reading
# a sign (on-screen text), appearing, leaving and driving past (tracks).
ACTIONS: tuple[Action, ...] = (
    Action("fall", ("fall", "falls", "fell", "fallen", "falling", "trip", "trips", "tripped",
                    "tripping", "collapse", "collapses", "collapsed"), ("fallen", "lying")),
    Action("run", ("run", "runs", "ran", "running", "jog", "jogs", "jogging", "sprint",
                   "sprints", "sprinting")),
    Action("jump", ("jump", "jumps", "jumped", "jumping", "leap", "leaps", "leapt", "hop")),
    Action("sit", ("sit", "sits", "sat", "sitting", "seated"), ("sitting",)),
    Action("lie down", ("lie down", "lies down", "lay down", "lying", "lying down"), ("lying",)),
    Action("stand up", ("stand up", "stands up", "stood up", "standing up", "get up",
                        "gets up", "got up")),
    Action("fight", ("fight", "fights", "fought", "fighting", "punch", "punches", "punched",
                     "punching", "hit", "hits", "hitting", "kick", "kicks", "kicked", "kicking")),
    Action("dance", ("dance", "dances", "danced", "dancing")),
    Action("wave", ("wave", "waves", "waved", "waving")),
    Action("walk", ("walk", "walks", "walked", "walking", "stroll", "strolling")),
    Action("climb", ("climb", "climbs", "climbed", "climbing")),
    Action("throw", ("throw", "throws", "threw", "thrown", "throwing")),
    Action("catch", ("catch", "catches", "caught", "catching")),
    Action("hug", ("hug", "hugs", "hugged", "hugging", "embrace", "embraces", "embraced")),
    Action("kiss", ("kiss", "kisses", "kissed", "kissing")),
    Action("eat", ("eat", "eats", "ate", "eaten", "eating")),
    Action("drink", ("drink", "drinks", "drank", "drinking")),
    Action("swim", ("swim", "swims", "swam", "swimming")),
    Action("ride", ("ride", "rides", "rode", "riding")),
    Action("push", ("push", "pushes", "pushed", "pushing", "pull", "pulls", "pulled", "pulling")),
    Action("carry", ("carry", "carries", "carried", "carrying")),
    Action("crawl", ("crawl", "crawls", "crawled", "crawling")),
    Action("clap", ("clap", "claps", "clapped", "clapping")),
    Action("cry", ("cry", "cries", "cried", "crying")),
    Action("laugh", ("laugh", "laughs", "laughed", "laughing", "smile", "smiles", "smiled",
                     "smiling")),
    Action("sleep", ("sleep", "sleeps", "slept", "sleeping")),
    Action("play", ("play", "plays", "played", "playing")),
    Action("sing", ("sing", "sings", "sang", "singing")),
    Action("shout", ("shout", "shouts", "shouted", "shouting", "scream", "screams",
                     "screamed", "screaming")),
    Action("kneel", ("kneel", "kneels", "knelt", "kneeling")),
)  # fmt: skip

# A question about one of these is about an action only when it does not ask what is said or
# written (those are answered from speech and on-screen text).
_SAID_OR_WRITTEN_RE = re.compile(
    r"\b(say|says|said|saying|talk|talks|talked|talking|speak|speaks|spoke|mention|mentions|"
    r"mentioned|text|written|sign|read|reads)\b"
)
_QUOTED_RE = re.compile(r"[\"“][^\"”]*[\"”]")


def names_action(text: str, action: Action) -> bool:
    """Whether `text` (a label, a caption, a sentence) names `action` in one of its forms."""
    low = text.lower()
    return any(re.search(rf"(?<![a-z]){re.escape(w)}(?![a-z])", low) for w in action.words)


# A word of an action used as a noun: right after an article, a determiner or a possessive
# ("a wave on the sea", "the fall in prices", "the children's play").
_NOUN_LEAD_RE = re.compile(
    r"(?:\b(?:a|an|the|this|that|these|those|any|no|some|his|her|their|its|my|our|your|every|"
    r"each|another)|'s)\s+$"
)
# Who can do an action in a question: question words, pronouns, person words, object ids.
# Labels of the detector (``the dog``) count too (`_agents`).
_AGENT_WORDS = (
    "who", "whoever", "anyone", "anybody", "someone", "somebody", "everyone", "everybody",
    "nobody", "one", "people", "person", "persons", "man", "men", "woman", "women", "boy",
    "boys", "girl", "girls", "child", "children", "kid", "kids", "pedestrian", "pedestrians",
    "he", "she", "they", "we", "it", "i", "you",
)  # fmt: skip
# At most this many words between the agent and the verb ("is anyone still running").
_AGENT_GAP = 2


def _agents() -> str:
    from vidchat.perceivers.detect import COCO_CLASSES

    labels = {w for c in COCO_CLASSES for w in (c, c + "s", c.replace(" ", "_"))}
    words = sorted({*_AGENT_WORDS, *labels}, key=len, reverse=True)
    return r"(?:[a-z][a-z0-9_\-]*#\d+|" + "|".join(re.escape(w) for w in words) + ")"


def used_as_verb(text: str, start: int) -> bool:
    """Whether the action word at `start` of `text` (lower case) is a verb about an agent: it
    follows someone who can do it ("does anyone fall", "who is running", "the dog jumps",
    "person#2 fell") within a couple of words, and no article or possessive makes it a noun
    ("a wave on the sea", "a fall in the price", "the run time")."""
    before = text[:start]
    if _NOUN_LEAD_RE.search(before):
        return False
    gap = rf"(?:[a-z'\-]+\s+){{0,{_AGENT_GAP}}}"
    return re.search(rf"(?<![\w#]){_agents()}\s+{gap}$", before) is not None


def asked_actions(question: str) -> list[Action]:
    """The actions a question asks about ("does anyone fall down?" -> fall): a word of the
    action used as a verb about an agent (`used_as_verb`; "is there a wave on the sea?" asks
    about no action), none when the question asks what is said or written, and none inside
    quoted words (those are data)."""
    q = " ".join(_QUOTED_RE.sub(" ", question.lower()).split())
    if _SAID_OR_WRITTEN_RE.search(q):
        return []
    out = []
    for a in ACTIONS:
        for w in a.words:
            if any(used_as_verb(q, m.start())
                   for m in re.finditer(rf"(?<![a-z]){re.escape(w)}(?![a-z])", q)):  # fmt: skip
                out.append(a)
                break
    return out


@dataclass(frozen=True)
class Observer:
    """Perception in the record that can show an action: its name and what it gives."""

    name: str  # "action perceiver", "captions", "posture model"
    kinds: tuple[str, ...]  # event kinds it writes ("action", "caption", ...); () for attributes


_ACTION_KINDS = ("action",)
_CAPTION_KINDS = ("caption", "object_description")


def action_observers(ctx: VideoContext, action: Action) -> list[Observer]:
    """The perception in `ctx` that could have seen `action`: the action perceiver and captions
    (any action, in their own labels and words) when they ran or left events, and a posture
    model (the detector's ``posture``/``fell`` attributes) for the postures it tells apart."""
    ran = {p.name for p in ctx.provenance if p.status == "ok"}
    kinds = {e.kind for e in ctx.events}
    out = []
    if "action" in ran or kinds & set(_ACTION_KINDS):
        out.append(Observer("action perceiver", _ACTION_KINDS))
    if ran & {"caption", "region_caption"} or kinds & set(_CAPTION_KINDS):
        out.append(Observer("captions", _CAPTION_KINDS))
    has_posture = any("posture" in o.attributes or "fell" in o.attributes for o in ctx.objects)
    if has_posture and action.postures:
        out.append(Observer("posture model", ()))
    return out
