"""The instruction-data engine: training data for the embed model, made from video records.

Two kinds of data, after VideoChat and VideoRefer:

- **grounded** questions derived from the record itself, so their answers are correct by
  construction (with respect to the record): counting, temporal order, what was said and when,
  on-screen text, when an object appears and leaves, questions about one object by id (where it
  first is in the frame, which way it moves). Every grounded question comes twice: open-ended,
  and as multiple choice with plausible distractors drawn from the same record.

  No template may give its answer away to a reader who sees only the question: an object's label
  is the prefix of its id, so "what kind of object is person#3?" is not asked; tracker ids count
  up in order of appearance, so "which appears first/later" pairs only objects of different
  labels, names the two in random order and asks "first" or "later" at random.
- **LLM-written** data after VideoChat: a detailed description (``prompts/describe.yaml``), tidied
  by the post-processing prompt (``prompts/postprocess.yaml``), and multi-turn conversations
  (``prompts/conversation.yaml``), all written by any langchain chat model from the rendered record.

The output is VideoChat's instruction format, one JSON object per video and line::

    {"video": "/path/a.mp4", "sha256": "…", "split": "train", "duration": 5.3,
     "QA": [{"i": "instruction", "q": "question", "a": "answer", "type": "count",
             "source": "grounded", "choices": ["2", "3", "4"], "answer_index": 1}, …]}

Videos are split into train / val / test by a hash of their content, so every question about a
video lands in the same split, whatever order the videos were given in.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vidchat.kernel.errors import InputError
from vidchat.kernel.record import VideoContext, atomic_write_text
from vidchat.kernel.timecode import fmt_time, parse_timecode
from vidchat.text.render import render

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

__all__ = [
    "GROUNDED_TYPES",
    "LETTERS",
    "MC_INSTRUCTION",
    "QA",
    "InstructionRecord",
    "assign_splits",
    "build_dataset",
    "format_choices",
    "grounded_qa",
    "llm_conversations",
    "llm_description",
    "mc_qa",
    "read_jsonl",
    "write_jsonl",
]

Split = Literal["train", "val", "test"]
Source = Literal["grounded", "llm"]
LETTERS = "ABCDEFGH"
OPEN_INSTRUCTION = "Answer the question about the video briefly and exactly."
MC_INSTRUCTION = "Answer with the letter of the correct option, then the option."
GROUNDED_TYPES = (
    "count",
    "order",
    "shots",
    "speech_what",
    "speech_when",
    "ocr",
    "appear",
    "leave",
    "object_position",
    "object_motion",
)


class QA(BaseModel):
    """One instruction, question and answer (VideoChat keys ``i``, ``q``, ``a``).

    Multiple-choice items also carry their options and the index of the right one; the question
    text then lists the options as ``(A) …`` and the answer is ``(B) …``.
    """

    model_config = ConfigDict(extra="forbid")

    i: str = Field(description="instruction")
    q: str = Field(description="question (may be empty for a plain instruction)")
    a: str = Field(description="answer")
    type: str = Field(description="question type: count, order, …, description, conversation")
    source: Source
    choices: list[str] | None = None
    answer_index: int | None = None
    turn: int | None = Field(None, description="position in a multi-turn conversation")

    @model_validator(mode="after")
    def _mc_consistent(self) -> QA:
        if (self.choices is None) != (self.answer_index is None):
            raise ValueError("choices and answer_index go together")
        if self.choices is not None:
            assert self.answer_index is not None
            if not 2 <= len(self.choices) <= len(LETTERS):
                raise ValueError(f"expected 2..{len(LETTERS)} choices, got {len(self.choices)}")
            if not 0 <= self.answer_index < len(self.choices):
                raise ValueError(
                    f"answer_index {self.answer_index} outside 0..{len(self.choices) - 1}"
                )
            if len(set(self.choices)) != len(self.choices):
                raise ValueError(f"choices must differ, got {self.choices}")
        return self

    @property
    def is_mc(self) -> bool:
        return self.choices is not None


class InstructionRecord(BaseModel):
    """All instruction data about one video (one JSONL line)."""

    model_config = ConfigDict(extra="forbid")

    video: str
    sha256: str
    duration: float
    record: str | None = Field(None, description="the saved record it came from, when known")
    split: Split
    QA: list[QA]


# ------------------------------------------------------------------------------------ helpers


def format_choices(question: str, choices: Sequence[str]) -> str:
    """The question followed by its options, one per line as ``(A) option``."""
    lines = [question, "Options:"]
    lines += [f"({LETTERS[k]}) {c}" for k, c in enumerate(choices)]
    return "\n".join(lines)


def _mc(
    rng: random.Random,
    question: str,
    answer: str,
    distractors: Iterable[str],
    qtype: str,
    n_choices: int,
) -> QA | None:
    """The multiple-choice twin of an open question; None when no distractor exists."""
    pool = list(dict.fromkeys(d for d in distractors if d != answer))
    if not pool:
        return None
    rng.shuffle(pool)
    return mc_qa(rng, question, answer, [answer, *pool[: n_choices - 1]], qtype)


def mc_qa(
    rng: random.Random, question: str, answer: str, choices: Sequence[str], qtype: str
) -> QA:
    """A grounded multiple-choice question over `choices` (which hold `answer`), shuffled by
    `rng`; the expected reply is ``(LETTER) answer``."""
    shuffled = list(choices)
    rng.shuffle(shuffled)
    k = shuffled.index(answer)
    return QA(
        i=MC_INSTRUCTION,
        q=format_choices(question, shuffled),
        a=f"({LETTERS[k]}) {answer}",
        type=qtype,
        source="grounded",
        choices=shuffled,
        answer_index=k,
    )


def _pair(
    rng: random.Random,
    question: str,
    answer: str,
    distractors: Iterable[str],
    qtype: str,
    n_choices: int,
) -> list[QA]:
    out = [QA(i=OPEN_INSTRUCTION, q=question, a=answer, type=qtype, source="grounded")]
    mc = _mc(rng, question, answer, distractors, qtype, n_choices)
    if mc is not None:
        out.append(mc)
    return out


_IRREGULAR = {"person": "people", "man": "men", "woman": "women", "child": "children"}


def _plural(label: str, n: int) -> str:
    if n == 1:
        return label
    if label in _IRREGULAR:
        return _IRREGULAR[label]
    return label + "es" if label.endswith(("s", "sh", "ch", "x")) else label + "s"


def _time_distractors(t: float, duration: float, rng: random.Random, n: int = 6) -> list[str]:
    """Other times inside the video that read differently from `t`, the farther ones first
    (a distractor one second away is too close to call for any model reading sparse frames)."""
    right = fmt_time(t)
    span = max(duration, t)
    candidates = {fmt_time(float(s)) for s in range(int(span) + 1)}
    candidates |= {fmt_time(rng.uniform(0, span)) for _ in range(20)}
    candidates.discard(right)
    far = sorted(c for c in candidates if abs(parse_timecode(c) - t) >= 2)
    near = sorted(c for c in candidates if abs(parse_timecode(c) - t) < 2)
    rng.shuffle(far)
    rng.shuffle(near)
    return (far + near)[:n]


def _region(ctx: VideoContext, box: tuple[float, float, float, float]) -> str:
    """Where a box's centre lies in a 3x3 grid of the frame, in words."""
    w = max(ctx.video.width, 1)
    h = max(ctx.video.height, 1)
    cx = (box[0] + box[2]) / 2 / w
    cy = (box[1] + box[3]) / 2 / h
    col = "left" if cx < 1 / 3 else ("right" if cx > 2 / 3 else "center")
    row = "top" if cy < 1 / 3 else ("bottom" if cy > 2 / 3 else "middle")
    if row == "middle" and col == "center":
        return "center"
    return f"{row} {col}" if row != "middle" else f"middle {col}"


_REGIONS = [
    f"{r} {c}" if (r, c) != ("middle", "center") else "center"
    for r in ("top", "middle", "bottom")
    for c in ("left", "center", "right")
]
_MOTIONS = ["moves left", "moves right", "moves up", "moves down", "stays in place"]


def _motion(ctx: VideoContext, obj_traj: list[tuple[float, float]]) -> str:
    """Main direction of travel from first to last centre; small moves count as staying."""
    (x0, y0), (x1, y1) = obj_traj[0], obj_traj[-1]
    dx = (x1 - x0) / max(ctx.video.width, 1)
    dy = (y1 - y0) / max(ctx.video.height, 1)
    if max(abs(dx), abs(dy)) < 0.1:
        return "stays in place"
    if abs(dx) >= abs(dy):
        return "moves right" if dx > 0 else "moves left"
    return "moves down" if dy > 0 else "moves up"


# ------------------------------------------------------------------------- grounded questions


def grounded_qa(
    ctx: VideoContext, seed: int = 0, n_choices: int = 4, max_per_type: int = 4
) -> list[QA]:
    """Questions whose answers follow from the record by construction, open and multiple choice.

    `max_per_type` caps the open questions of one type per video (a busy video would otherwise
    drown the others); the choice of which ones is seeded by `seed` and the video's hash.
    """
    rng = random.Random(f"{seed}:{ctx.video.sha256}")
    dur = ctx.video.duration
    out: list[QA] = []

    def take(items: list[tuple[str, str, list[str]]], qtype: str) -> None:
        if len(items) > max_per_type:
            items = rng.sample(items, max_per_type)
        for q, a, d in items:
            out.extend(_pair(rng, q, a, d, qtype, n_choices))

    objs = ctx.objects
    by_label = Counter(o.label for o in objs)

    # Counting: every label the record has, and one it has not (answer 0).
    counts: list[tuple[str, str, list[str]]] = []
    for label, n in sorted(by_label.items()):
        d = [str(x) for x in {n - 2, n - 1, n + 1, n + 2, n + 3, 0} if x >= 0 and x != n]
        counts.append((f"How many different {_plural(label, 2)} appear in the video?", str(n), d))
    take(counts, "count")

    # Temporal order of two objects' first appearances (only clearly separated ones). Ids of one
    # label count up in order of appearance (person#1 before person#2), so a same-label pair
    # would answer itself: only pairs of different labels, named in random order, asked about
    # the first or the later one at random.
    pairs: list[tuple[str, str, list[str]]] = []
    ordered = sorted(objs, key=lambda o: o.first_seen)
    for k, a in enumerate(ordered):
        for b in ordered[k + 1 :]:
            if b.label == a.label or b.first_seen - a.first_seen < 1.0:
                continue
            x, y = (a, b) if rng.random() < 0.5 else (b, a)
            which, right, wrong = ("first", a, b) if rng.random() < 0.5 else ("later", b, a)
            pairs.append(
                (
                    f"Which appears {which} in the video, {x.id} or {y.id}?",
                    right.id,
                    [wrong.id, "they appear at the same time"],
                )
            )
    take(pairs, "order")

    # Shot cuts.
    cuts = [e for e in ctx.events if e.kind == "shot" and e.start > 0]
    if any(p.name == "shots" and p.status == "ok" for p in ctx.provenance) or cuts:
        n = len(cuts)
        d = [str(x) for x in {n - 1, n + 1, n + 2, n + 3, 0} if x >= 0 and x != n]
        take([("How many shot cuts are there in the video?", str(n), d)], "shots")

    # Speech: what is said at a time, and when a sentence is said.
    segs = [s for s in ctx.speech if s.text.strip()]
    texts = [s.text.strip() for s in segs]
    what, when = [], []
    for s in segs:
        text = s.text.strip()
        others = [t for t in texts if t != text] or ["Nothing is said.", "Music plays."]
        what.append((f"What is said at {fmt_time(s.start)}?", text, others))
        when.append(
            (
                f"When is {json.dumps(text, ensure_ascii=False)} said?",
                fmt_time(s.start),
                _time_distractors(s.start, dur, rng),
            )
        )
    take(what, "speech_what")
    take(when, "speech_when")

    # On-screen text.
    ocr = [e for e in ctx.events if e.kind == "ocr" and e.text.strip()]
    ocr_texts = list(dict.fromkeys(e.text.strip() for e in ocr))
    take(
        [
            (
                f"What text is written on screen at {fmt_time(e.start)}?",
                e.text.strip(),
                [t for t in ocr_texts if t != e.text.strip()] or ["No text is shown."],
            )
            for e in ocr
        ],
        "ocr",
    )

    # Objects one by one (VideoRefer-style): when they come and go, where, which way. (Not what
    # they are: the label is the id's own prefix.)
    appear, leave, pos_q, motion_q = [], [], [], []
    for o in objs:
        appear.append(
            (
                f"When does {o.id} first appear?",
                fmt_time(o.first_seen),
                _time_distractors(o.first_seen, dur, rng),
            )
        )
        leave.append(
            (
                f"When is {o.id} last seen?",
                fmt_time(o.last_seen),
                _time_distractors(o.last_seen, dur, rng),
            )
        )
        if o.trajectory:
            first = _region(ctx, o.trajectory[0].box)
            pos_q.append(
                (
                    f"Where in the frame is {o.id} when it first appears?",
                    first,
                    [r for r in _REGIONS if r != first],
                )
            )
            centres = [((p.box[0] + p.box[2]) / 2, (p.box[1] + p.box[3]) / 2) for p in o.trajectory]
            if len(centres) >= 2:
                m = _motion(ctx, centres)
                motion_q.append(
                    (
                        f"How does {o.id} move while it is visible?",
                        m,
                        [x for x in _MOTIONS if x != m],
                    )
                )
    take(appear, "appear")
    take(leave, "leave")
    take(pos_q, "object_position")
    take(motion_q, "object_motion")
    return out


# ---------------------------------------------------------------------------- LLM-written data


def _record_text(ctx: VideoContext, budget_tokens: int) -> str:
    return render(ctx, budget_tokens=budget_tokens).text


def _ask(model: BaseChatModel, system: str, user: str) -> str:
    from langchain_core.messages import HumanMessage, SystemMessage

    from vidchat.llm.streaming import invoke_chat

    msg = invoke_chat(model, [SystemMessage(system), HumanMessage(user)])
    return str(msg.text if hasattr(msg, "text") else msg.content).strip()


def llm_description(
    ctx: VideoContext,
    model: BaseChatModel,
    budget_tokens: int = 2000,
    style: str = "one detailed paragraph",
) -> str:
    """A detailed description of the video: the description prompt, then the post-processing
    prompt that removes what the record does not support, repetitions and broken sentences."""
    from vidchat.prompts import load_prompt

    record = _record_text(ctx, budget_tokens)
    describe = load_prompt("describe")
    draft = _ask(
        model, describe.render("system"), describe.render("user", record=record, style=style)
    )
    post = load_prompt("postprocess")
    clean = _ask(model, post.render("system"), post.render("user", record=record, draft=draft))
    return _tidy(clean or draft)


_SENTENCE_RE = re.compile(r"[^.!?]+[.!?]")


def _tidy(text: str) -> str:
    """Drop repeated sentences and a trailing broken one (small models loop and stop mid-way)."""
    sentences = [s.strip() for s in _SENTENCE_RE.findall(text)]
    kept = list(dict.fromkeys(s for s in sentences if s))
    return " ".join(kept) if kept else text.strip()


def _parse_turns(text: str) -> list[tuple[str, str]]:
    """Question/answer pairs from the model's output: a JSON list when it wrote one, else
    ``Q: … A: …`` / ``"question": …, "answer": …`` pairs found in the text."""
    start, end = text.find("["), text.rfind("]")
    if 0 <= start < end:
        try:
            data = json.loads(text[start : end + 1])
            pairs = [
                (str(d["question"]).strip(), str(d["answer"]).strip())
                for d in data
                if isinstance(d, dict) and d.get("question") and d.get("answer")
            ]
            if pairs:
                return pairs
        except (ValueError, TypeError, KeyError):
            pass
    found = re.findall(
        r'"question"\s*:\s*"((?:[^"\\]|\\.)+)"\s*,\s*"answer"\s*:\s*"((?:[^"\\]|\\.)+)"', text
    )
    if found:
        return [(q.strip(), a.strip()) for q, a in found]
    found = re.findall(
        r"(?im)^\s*(?:Q|Question)\s*[:.]\s*(.+?)\s*\n\s*(?:A|Answer)\s*[:.]\s*(.+)$", text
    )
    return [(q.strip(), a.strip()) for q, a in found]


def llm_conversations(
    ctx: VideoContext, model: BaseChatModel, n_turns: int = 4, budget_tokens: int = 2000
) -> list[QA]:
    """A multi-turn conversation about the video (description, temporal and causal questions),
    written by the model from the record; turns it did not write parseably are dropped."""
    from vidchat.prompts import load_prompt

    conv = load_prompt("conversation")
    record = _record_text(ctx, budget_tokens)
    text = _ask(
        model, conv.render("system", n_turns=n_turns), conv.render("user", record=record, focus="")
    )
    return [
        QA(
            i="Answer the question about the video.",
            q=q,
            a=a,
            type="conversation",
            source="llm",
            turn=k,
        )
        for k, (q, a) in enumerate(_parse_turns(text)[:n_turns])
    ]


# --------------------------------------------------------------------------------- the dataset


def assign_splits(
    shas: Sequence[str], ratios: tuple[float, float, float] = (0.7, 0.15, 0.15)
) -> dict[str, Split]:
    """Split videos (by content hash) into train / val / test.

    Videos are ordered by a hash of their content, so the split of a collection does not depend
    on the order they are given in (adding videos can move some); with three or more
    videos each split gets at least one (val and test first take one each from the end of the
    hash order), so a small collection still has held-out videos.
    """
    if abs(sum(ratios) - 1.0) > 1e-6 or any(r < 0 for r in ratios):
        raise InputError(f"split ratios must be >= 0 and sum to 1, got {ratios}")
    unique = sorted(set(shas), key=lambda s: hashlib.sha256(f"split:{s}".encode()).hexdigest())
    n = len(unique)
    n_test = round(n * ratios[2])
    n_val = round(n * ratios[1])
    if n >= 3:
        n_test = max(n_test, 1 if ratios[2] > 0 else 0)
        n_val = max(n_val, 1 if ratios[1] > 0 else 0)
    n_train = max(n - n_val - n_test, 0)
    out: dict[str, Split] = {}
    for k, sha in enumerate(unique):
        out[sha] = "train" if k < n_train else ("val" if k < n_train + n_val else "test")
    return out


def build_dataset(
    records: Sequence[VideoContext],
    *,
    record_paths: Sequence[str | None] | None = None,
    llm: BaseChatModel | None = None,
    seed: int = 0,
    n_choices: int = 4,
    max_per_type: int = 4,
    n_turns: int = 4,
    ratios: tuple[float, float, float] = (0.7, 0.15, 0.15),
) -> list[InstructionRecord]:
    """Instruction data for every record: grounded QA always, LLM-written description and
    conversation when `llm` is given; each video placed in its split."""
    if not records:
        raise InputError("no records given (expected one or more VideoContext)")
    splits = assign_splits([r.video.sha256 for r in records], ratios)
    paths = list(record_paths) if record_paths is not None else [None] * len(records)
    if len(paths) != len(records):
        raise InputError(f"{len(paths)} record paths given for {len(records)} records")
    out = []
    for ctx, rpath in zip(records, paths, strict=True):
        qa = grounded_qa(ctx, seed=seed, n_choices=n_choices, max_per_type=max_per_type)
        if llm is not None:
            desc = llm_description(ctx, llm)
            if desc:
                qa.append(
                    QA(
                        i="Describe the video in detail.",
                        q="",
                        a=desc,
                        type="description",
                        source="llm",
                    )
                )
            qa.extend(llm_conversations(ctx, llm, n_turns=n_turns))
        out.append(
            InstructionRecord(
                video=ctx.video.path,
                sha256=ctx.video.sha256,
                duration=ctx.video.duration,
                split=splits[ctx.video.sha256],
                record=rpath,
                QA=qa,
            )
        )
    return out


def write_jsonl(items: Iterable[InstructionRecord], path: str | Path) -> Path:
    """Write instruction records as JSONL (atomically)."""
    text = "".join(r.model_dump_json(exclude_none=True) + "\n" for r in items)
    return atomic_write_text(Path(path), text)


def read_jsonl(path: str | Path) -> list[InstructionRecord]:
    """Read instruction records; InputError names the file and line of a bad one."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"no such instruction file: {p} (expected JSONL from vidchat instruct)")
    out = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(InstructionRecord.model_validate_json(line))
        except ValueError as e:
            first = str(e).splitlines()[0:3]
            raise InputError(f"{p}:{n}: not an instruction record ({' '.join(first)})") from None
    return out
