"""The comparison harness: multiple-choice accuracy per question type and latency per answer,
for the text path (perception record + LLM, `conversation.session.ChatSession`), the embed path
(a trained `embed_model` checkpoint), the blind baseline and chance, on the same held-out videos
and questions.

- The **text path**'s LLM writes an answer that is read back by `parse_choice` as a letter
  ``(B)`` or as the text of one option; an answer that names none counts as wrong (and is
  counted as ``unparsed``).
- The **embed path** scores each option by its mean log-likelihood and takes the best.
- The **blind baseline** (`evaluate_blind`) is the same LLM as the text path given only the
  question and its options: no record, no frames. What it scores above chance is what the
  questions give away by themselves; a path is only as good as its margin over it.
- **Chance** is the expected accuracy of guessing uniformly, ``mean(1 / number of options)``.

Every accuracy comes with a 95 % Wilson score interval (`wilson_interval`), so a table of a few
dozen questions says how little it can tell apart.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from vidchat.apps.instruct import LETTERS, QA, InstructionRecord, format_choices, read_jsonl
from vidchat.kernel.errors import InputError

if TYPE_CHECKING:
    from vidchat.kernel.record import VideoContext

__all__ = [
    "BLIND_PROMPT",
    "EvalItem",
    "ItemResult",
    "PathReport",
    "TypeScore",
    "chance_report",
    "comparison_table",
    "evaluate_blind",
    "evaluate_embed",
    "evaluate_text",
    "mc_items",
    "parse_choice",
    "report_from_items",
    "wilson_interval",
]

PathName = Literal["text", "embed", "blind", "chance"]
BLIND_PROMPT = "blind"
"""The prompt template (``prompts/blind.yaml``) of the blind baseline."""
TEXT_MC_SUFFIX = "Answer with the letter of the correct option, for example (A)."


class EvalItem(BaseModel):
    """One multiple-choice question about one video."""

    video: str
    sha256: str
    record: str | None = None
    qa: QA


class ItemResult(BaseModel):
    type: str
    video: str
    question: str
    answer_index: int
    predicted: int | None
    correct: bool
    seconds: float
    output: str = ""
    prompt_tokens: int | None = None  # None where the backend reports no usage
    completion_tokens: int | None = None

    @classmethod
    def of(
        cls,
        item: EvalItem,
        question: str,
        predicted: int | None,
        seconds: float,
        output: str,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
    ) -> ItemResult:
        """One path's answer to `item`, scored against the item's answer."""
        qa = item.qa
        assert qa.answer_index is not None
        return cls(
            type=qa.type,
            video=item.video,
            question=question,
            answer_index=qa.answer_index,
            predicted=predicted,
            correct=predicted == qa.answer_index,
            seconds=seconds,
            output=output,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )


class TypeScore(BaseModel):
    n: int
    correct: float = Field(description="number right (expected number for chance)")
    accuracy: float
    mean_seconds: float
    unparsed: int = 0
    ci95: tuple[float, float] = Field(
        (0.0, 1.0), description="95 % Wilson score interval of the accuracy"
    )


def wilson_interval(correct: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion `correct`/`n` (95 % with the default `z`).

    Unlike the normal approximation it stays inside [0, 1] and is honest at 0 or n right and
    for small n, which is where these tables live. n = 0 gives the uninformative (0, 1).
    """
    if n <= 0:
        return (0.0, 1.0)
    p = min(max(correct / n, 0.0), 1.0)
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


class PathReport(BaseModel):
    """One path's results over the evaluation items."""

    path: PathName
    model: str
    per_type: dict[str, TypeScore]
    overall: TypeScore
    items: list[ItemResult] = Field(default_factory=list)


def mc_items(
    data: str | Path | Sequence[InstructionRecord], split: str | None = "test"
) -> list[EvalItem]:
    """Every multiple-choice QA of the videos in `split` (None: all)."""
    recs = read_jsonl(data) if isinstance(data, (str, Path)) else list(data)
    items = [
        EvalItem(video=r.video, sha256=r.sha256, record=r.record, qa=qa)
        for r in recs
        if split is None or r.split == split
        for qa in r.QA
        if qa.is_mc
    ]
    if not items:
        splits = sorted({r.split for r in recs})
        raise InputError(
            f"no multiple-choice questions in split {split!r} (splits present: "
            f"{', '.join(splits) or 'none'})"
        )
    return items


# A letter that names an option: "(B)" anywhere; a bare letter at the very start ("B", "B.",
# "B) …", "B: …") or after "option"/"answer (is)". The capital "A" is also the English article,
# so a bare "A" followed by a word is the article ("A person is seen at 00:20.") unless the word
# is the text of option A itself ("A moves left" when option A is "moves left").
_LETTER_RE = re.compile(
    r"\(([A-H])\)"
    r"|^\s*([A-H])(?=[).:,]|\s|$)"
    r"|\b(?:[Oo]ption|[Aa]nswer(?:\s+is)?)\s*:?\s*\(?([A-H])(?=[).:,]|\s|$)"
)


def parse_choice(text: str, choices: Sequence[str]) -> int | None:
    """The option an answer names: a letter ``(B)``/``B.``/``answer is B``, else the one option
    whose text the answer contains (None when it names none or several).

    A leading "A" that starts a sentence ("A person is seen at 00:20.") is read as the article,
    not as option A; the sentence is then matched against the options' texts.
    """
    stripped = text.strip()
    for m in _LETTER_RE.finditer(stripped):
        letter = next(g for g in m.groups() if g)
        k = LETTERS.index(letter)
        if k >= len(choices):
            continue
        if m.group(1) is None and _is_article(stripped, m.end(), choices[k]):
            continue
        return k
    low = stripped.lower()
    hits = [k for k, c in enumerate(choices) if c.lower() in low]
    # "00:01" is inside "00:10"? no, but "square" is inside "squares": keep the longest match.
    if len(hits) > 1:
        longest = max(hits, key=lambda k: len(choices[k]))
        hits = [
            k for k in hits if k == longest or choices[k].lower() not in choices[longest].lower()
        ]
    return hits[0] if len(hits) == 1 else None


def _is_article(text: str, end: int, choice: str) -> bool:
    """Whether the bare "A" ending at `end` is the article: followed by a word that does not
    begin option A's own text."""
    if text[end - 1] != "A":
        return False
    rest = text[end:]
    if not re.match(r"\s+[A-Za-z]", rest):
        return False  # "A", "A.", "A)", "A 00:20": a letter
    return not rest.strip().lower().startswith(choice.strip().lower())


def _summarize(results: list[ItemResult], unparsed_of: Callable[[ItemResult], bool]) -> TypeScore:
    n = len(results)
    right = sum(r.correct for r in results)
    return TypeScore(
        n=n,
        correct=right,
        accuracy=right / n if n else 0.0,
        mean_seconds=sum(r.seconds for r in results) / n if n else 0.0,
        unparsed=sum(unparsed_of(r) for r in results),
        ci95=wilson_interval(right, n),
    )


def report_from_items(path: PathName, model: str, results: Sequence[ItemResult]) -> PathReport:
    """A path's report (per type and overall, with intervals) from its answers one by one, for
    evaluations run piecewise (resumable benchmarks) and merged afterwards."""
    return _report(path, model, list(results))


def _report(path: PathName, model: str, results: list[ItemResult]) -> PathReport:
    by_type: dict[str, list[ItemResult]] = defaultdict(list)
    for r in results:
        by_type[r.type].append(r)

    def unparsed(r: ItemResult) -> bool:
        return r.predicted is None

    return PathReport(
        path=path,
        model=model,
        per_type={t: _summarize(rs, unparsed) for t, rs in sorted(by_type.items())},
        overall=_summarize(results, unparsed),
        items=results,
    )


def _context_for(item: EvalItem, cache: dict[str, VideoContext]) -> VideoContext:
    if item.sha256 not in cache:
        from vidchat.pipeline.open import open_context

        target = item.record if item.record and Path(item.record).is_file() else item.video
        cache[item.sha256] = open_context(target, progress=False)
    return cache[item.sha256]


def evaluate_text(
    items: Sequence[EvalItem],
    llm: Any = None,
    contexts: dict[str, VideoContext] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PathReport:
    """Ask every question through the text path (`ChatSession` over the video's record).

    `llm`: an `LLMConfig`, a langchain chat model, or None for the default LLM settings.
    `contexts` maps video sha256 to its record (else the record file, else the video is
    textualized through the cache).
    """
    from vidchat.conversation.session import ChatSession

    cache = dict(contexts or {})
    sessions: dict[str, ChatSession] = {}
    results = []
    model_name = ""
    for n, item in enumerate(items, 1):
        ctx = _context_for(item, cache)
        session = sessions.get(item.sha256)
        if session is None:
            session = sessions[item.sha256] = ChatSession(ctx, llm=llm)
        session.reset()  # each question on its own: no earlier answers to lean on
        qa = item.qa
        assert qa.choices is not None and qa.answer_index is not None
        question = _question_of(qa)
        prompt = f"{format_choices(question, qa.choices)}\n{TEXT_MC_SUFFIX}"
        t0 = time.perf_counter()
        answer = session.ask(prompt)
        seconds = time.perf_counter() - t0
        model_name = answer.model
        k = parse_choice(answer.text, qa.choices)
        results.append(
            ItemResult.of(
                item, question, k, seconds, answer.text,
                answer.prompt_tokens, answer.completion_tokens,
            )
        )
        if progress:
            progress(n, len(items))
    return _report("text", model_name, results)


def evaluate_blind(
    items: Sequence[EvalItem],
    llm: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> PathReport:
    """The blind baseline: the text path's LLM asked every question with its options only
    (prompt ``prompts/blind.yaml``; no record, no frames), answers read by `parse_choice`.

    `llm`: an `LLMConfig`, a langchain chat model, or None for the default LLM settings (pass
    the same value as to `evaluate_text`, so both rows are the same model).
    """
    from langchain_core.messages import HumanMessage, SystemMessage

    from vidchat.llm.streaming import invoke_chat
    from vidchat.prompts import load_prompt

    model = _chat_model(llm)
    prompt = load_prompt(BLIND_PROMPT)
    system = prompt.render("system")
    name = str(getattr(model, "model_name", "") or getattr(model, "model", "") or "")
    results = []
    for n, item in enumerate(items, 1):
        qa = item.qa
        assert qa.choices is not None and qa.answer_index is not None
        question = _question_of(qa)
        user = prompt.render("user", question=format_choices(question, qa.choices))
        t0 = time.perf_counter()
        msg = invoke_chat(model, [SystemMessage(system), HumanMessage(user)])
        seconds = time.perf_counter() - t0
        text = str(msg.text if hasattr(msg, "text") else msg.content).strip()
        usage = getattr(msg, "usage_metadata", None) or {}
        k = parse_choice(text, qa.choices)
        results.append(
            ItemResult.of(
                item, question, k, seconds, text,
                usage.get("input_tokens"), usage.get("output_tokens"),
            )
        )
        if progress:
            progress(n, len(items))
    return _report("blind", name or type(model).__name__, results)


def _chat_model(llm: Any) -> Any:
    """A langchain chat model from None (default settings), an `LLMConfig` or a model."""
    from vidchat.kernel.llm_config import LLMConfig
    from vidchat.llm.config import resolve_llm_config
    from vidchat.llm.factory import make_chat_model

    if llm is None:
        return make_chat_model(resolve_llm_config())
    if isinstance(llm, LLMConfig):
        return make_chat_model(llm)
    return llm


def _question_of(qa: QA) -> str:
    """The bare question of a multiple-choice item (its text before the options)."""
    return qa.q.split("\nOptions:")[0]


def evaluate_embed(
    items: Sequence[EvalItem],
    checkpoint: str | Path,
    device: str = "cpu",
    progress: Callable[[int, int], None] | None = None,
    perturb: str | None = None,
) -> PathReport:
    """Choose every option through a trained embed-model checkpoint. `perturb` (``shuffled``
    or ``blank``, see `embed_model.encoder.PERTURBATIONS`) answers from perturbed frames: the
    drop against the plain run is how much the answers depend on the video."""
    from vidchat.embed_model.infer import load_embed_chat

    chat = load_embed_chat(checkpoint, device)
    results = []
    for n, item in enumerate(items, 1):
        qa = item.qa
        assert qa.choices is not None and qa.answer_index is not None
        question = _question_of(qa)
        ans = chat.choose(item.video, question, qa.choices, perturb=perturb)
        results.append(
            ItemResult.of(item, question, ans.choice_index, ans.seconds, ans.text)
        )
        if progress:
            progress(n, len(items))
    name = chat.name + (f" [frames {perturb}]" if perturb else "")
    return _report("embed", name, results)


def chance_report(items: Sequence[EvalItem]) -> PathReport:
    """Expected accuracy of a uniform guess over each item's options."""
    by_type: dict[str, list[EvalItem]] = defaultdict(list)
    for it in items:
        by_type[it.qa.type].append(it)

    def score(its: list[EvalItem]) -> TypeScore:
        expected = sum(1 / len(it.qa.choices or [0, 0]) for it in its)
        acc = expected / len(its)
        # Chance is an expectation, not a measurement: its interval is a point.
        return TypeScore(
            n=len(its), correct=expected, accuracy=acc, mean_seconds=0, ci95=(acc, acc)
        )

    return PathReport(
        path="chance",
        model="uniform guess",
        per_type={t: score(its) for t, its in sorted(by_type.items())},
        overall=score(list(items)),
    )


def comparison_table(reports: Sequence[PathReport]) -> str:
    """A markdown table: one row per question type (and overall), accuracy per path with its
    95 % interval in brackets (chance: the expected accuracy, no interval), then the mean
    seconds per answer of each path."""
    types = sorted({t for r in reports for t in r.per_type})
    head = ["question type", "n", *[f"{r.path} acc" for r in reports]]
    head += [f"{r.path} s/answer" for r in reports if r.path != "chance"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]

    def acc(s: TypeScore | None, r: PathReport) -> str:
        if s is None:
            return "–"
        if r.path == "chance":
            return f"{s.accuracy:.2f}"
        return f"{s.accuracy:.2f} [{s.ci95[0]:.2f}, {s.ci95[1]:.2f}]"

    def row(name: str, scores: list[TypeScore | None]) -> str:
        n = next((s.n for s in scores if s is not None), 0)
        cells = [name, str(n)]
        cells += [acc(s, r) for s, r in zip(scores, reports, strict=True)]
        cells += [
            f"{s.mean_seconds:.2f}" if s else "–"
            for s, r in zip(scores, reports, strict=True)
            if r.path != "chance"
        ]
        return "| " + " | ".join(cells) + " |"

    for t in types:
        lines.append(row(t, [r.per_type.get(t) for r in reports]))
    lines.append(row("**all**", [r.overall for r in reports]))
    models = "; ".join(f"{r.path}: {r.model}" for r in reports)
    return "\n".join(lines) + f"\n\n{models}"
