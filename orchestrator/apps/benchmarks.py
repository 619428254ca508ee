"""Public video-QA benchmarks' question files, read into multiple-choice items for `vidchat eval`.

Formats (each as its authors publish it; `read_benchmark` detects nothing: name the format):

- ``egoschema``: ``questions.json``, a list of ``{"q_uid", "question", "option 0" … "option 4"}``;
  answers from ``subset_answers.json`` (``{q_uid: index}``, pass it as `answers`) or an
  ``"answer"`` field. Videos ``<q_uid>.mp4``. One task type, ``egoschema``.
- ``nextqa``: the multiple-choice CSV (``val.csv``: ``video, question, answer, qid, type,
  a0 … a4``; JSON lists with the same keys work too). Videos ``<video>.mp4`` anywhere under the
  folder, or where ``map_vid_vidorID.json`` (beside the CSV or in the folder) says. Task types are
  NExT-QA's codes (``CW`` causal why, ``CH`` causal how, ``TN``/``TC``/``TP`` temporal next,
  current, previous, ``DC``/``DL``/``DO`` descriptive count, location, other).
- ``videomme``: Video-MME rows (JSON list, JSONL, or the released parquet when ``pyarrow`` is
  installed): ``videoID, question_id, duration, domain, task_type, question, options
  (["A. …", …]), answer ("B")``. Videos ``<videoID>.mp4``; subtitles ``<videoID>.srt`` in the
  `subtitles` folder give the "with subtitles" condition.
- ``lvbench``: ``video_info.meta.jsonl``: one line per video ``{"key", "qa": [{"uid",
  "question": "…\\n(A) …\\n(B) …", "answer": "C", "question_type": [...]}]}``. Videos
  ``<key>.mp4``. The task type is the first listed type.
- ``mvbench``: MVBench-style task files: a JSON list of ``{"video", "question", "candidates",
  "answer"}`` (the answer is the text of the right candidate; optional ``start``/``end`` bound
  the part of the video asked about). A folder of such files gives one task per file (the file
  name); videos are found by their relative path under the folder, else by file name.

Every item keeps its benchmark id, so results can be compared with published per-question
outputs. A question whose video is missing is skipped and counted, never guessed.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from vidchat.kernel.errors import InputError
from vidchat.kernel.timecode import parse_timecode

__all__ = [
    "FORMATS",
    "BenchItem",
    "Benchmark",
    "read_benchmark",
    "read_srt",
]

Format = Literal["egoschema", "nextqa", "videomme", "lvbench", "mvbench"]
FORMATS: tuple[str, ...] = ("egoschema", "nextqa", "videomme", "lvbench", "mvbench")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v")


@dataclass(frozen=True)
class BenchItem:
    """One multiple-choice question of a benchmark, its video found on disk."""

    id: str
    video: Path
    question: str
    choices: tuple[str, ...]
    answer_index: int
    type: str
    subtitles: Path | None = None
    bound: tuple[float, float] | None = None  # MVBench: the part of the video asked about


@dataclass
class Benchmark:
    """The items of one question file, and what could not be used (with why)."""

    format: str
    source: Path
    items: list[BenchItem] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1


# ------------------------------------------------------------------------------------ reading


def _load_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON list, JSONL, CSV or parquet file; InputError (one line) otherwise."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            with open(path, newline="", encoding="utf-8") as f:
                return list(csv.DictReader(f))
        if suffix == ".jsonl":
            return [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln]
        if suffix == ".parquet":
            try:
                import pyarrow.parquet as pq
            except ImportError:
                raise InputError(
                    f"{path}: reading parquet needs pyarrow (pip install pyarrow), or convert "
                    "the file to JSON"
                ) from None
            return pq.read_table(path).to_pylist()
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read the question file ({e})") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
    if isinstance(data, dict):
        # {"id": {...}} maps (some re-releases) become rows carrying their key.
        if all(isinstance(v, dict) for v in data.values()):
            return [{"_key": k, **v} for k, v in data.items()]
        raise InputError(f"{path}: expected a JSON list of questions, got an object")
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a JSON list of questions, got {type(data).__name__}")
    return data


class _VideoIndex:
    """Videos under a folder by relative path, file name and stem (a recursive scan, once)."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise InputError(f"{root}: videos folder not found (expected a folder of videos)")
        self.root = root
        self.by_name: dict[str, Path] = {}
        self.by_stem: dict[str, Path] = {}
        for p in sorted(root.rglob("*")):
            if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES:
                self.by_name.setdefault(p.name, p)
                self.by_stem.setdefault(p.stem, p)

    def find(self, name: str) -> Path | None:
        name = str(name).strip()
        if not name:
            return None
        direct = self.root / name
        if direct.is_file():
            return direct
        return (
            self.by_name.get(Path(name).name)
            or self.by_stem.get(Path(name).stem)
            or (self.by_stem.get(name))
        )


_LETTER_PREFIX = re.compile(r"^\s*\(?([A-H])[.):]\s*")
_INLINE_OPTION = re.compile(r"^\s*\(([A-H])\)\s*(.+?)\s*$")


def _letter_index(answer: Any, n: int) -> int | None:
    text = str(answer).strip()
    m = re.match(r"^\(?([A-Ha-h])\)?(?:[.):\s]|$)", text)
    if m:
        k = ord(m.group(1).upper()) - ord("A")
        return k if k < n else None
    if text.isdigit():
        k = int(text)
        return k if 0 <= k < n else None
    return None


def _add(
    bench: Benchmark,
    videos: _VideoIndex,
    *,
    id: str,
    video: str,
    question: str,
    choices: Sequence[str],
    answer_index: int | None,
    qtype: str,
    subtitles: Path | None = None,
    bound: tuple[float, float] | None = None,
) -> None:
    choices = tuple(str(c).strip() for c in choices)
    if not question.strip() or len(choices) < 2:
        bench.skip("no question or fewer than two options")
        return
    if len(set(choices)) != len(choices):
        bench.skip("two options with the same text")
        return
    if answer_index is None or not 0 <= answer_index < len(choices):
        bench.skip("no answer key")
        return
    path = videos.find(video)
    if path is None:
        bench.skip("video not in the videos folder")
        return
    bench.items.append(
        BenchItem(
            id=str(id),
            video=path,
            question=question.strip(),
            choices=choices,
            answer_index=answer_index,
            type=qtype or "all",
            subtitles=subtitles,
            bound=bound,
        )
    )


def _egoschema(rows: list[dict], videos: _VideoIndex, answers: dict[str, Any], b: Benchmark):
    for r in rows:
        uid = str(r.get("q_uid") or r.get("_key") or "")
        opts = [r[f"option {k}"] for k in range(8) if f"option {k}" in r]
        if not opts and isinstance(r.get("options"), list):
            opts = list(r["options"])
        ans = answers.get(uid, r.get("answer"))
        idx = None if ans is None else _letter_index(ans, len(opts))
        _add(
            b,
            videos,
            id=uid,
            video=f"{uid}.mp4",
            question=str(r.get("question") or ""),
            choices=opts,
            answer_index=idx,
            qtype="egoschema",
        )


def _nextqa(rows: list[dict], videos: _VideoIndex, source: Path, b: Benchmark):
    mapping: dict[str, str] = {}
    for cand in (source.parent / "map_vid_vidorID.json", videos.root / "map_vid_vidorID.json"):
        if cand.is_file():
            mapping = {str(k): str(v) for k, v in json.loads(cand.read_text()).items()}
            break
    for r in rows:
        vid = str(r.get("video") or r.get("video_id") or "")
        opts = [r[f"a{k}"] for k in range(5) if r.get(f"a{k}") not in (None, "")]
        ans = r.get("answer")
        idx = _letter_index(ans, len(opts)) if ans not in (None, "") else None
        if idx is None and ans is not None and str(ans) in opts:
            idx = opts.index(str(ans))
        name = f"{mapping[vid]}.mp4" if vid in mapping else f"{vid}.mp4"
        _add(
            b,
            videos,
            id=f"{vid}_{r.get('qid', '')}",
            video=name,
            question=str(r.get("question") or ""),
            choices=opts,
            answer_index=idx,
            qtype=str(r.get("type") or "all"),
        )


def _videomme(rows: list[dict], videos: _VideoIndex, subtitles: Path | None, b: Benchmark):
    for r in rows:
        vid = str(r.get("videoID") or r.get("video_id") or "")
        opts = [_LETTER_PREFIX.sub("", str(o)) for o in (r.get("options") or [])]
        srt = None
        if subtitles is not None and (subtitles / f"{vid}.srt").is_file():
            srt = subtitles / f"{vid}.srt"
        _add(
            b,
            videos,
            id=str(r.get("question_id") or vid),
            video=f"{vid}.mp4",
            question=str(r.get("question") or ""),
            choices=opts,
            answer_index=_letter_index(r.get("answer", ""), len(opts)),
            qtype=str(r.get("task_type") or "all"),
            subtitles=srt,
        )


def _lvbench(rows: list[dict], videos: _VideoIndex, b: Benchmark):
    for r in rows:
        key = str(r.get("key") or r.get("video_id") or "")
        for qa in r.get("qa") or [r]:
            lines = str(qa.get("question") or "").splitlines()
            question = "\n".join(ln for ln in lines if not _INLINE_OPTION.match(ln)).strip()
            opts = [m.group(2) for ln in lines if (m := _INLINE_OPTION.match(ln))]
            types = qa.get("question_type") or ["all"]
            qtype = types[0] if isinstance(types, list) and types else str(types)
            _add(
                b,
                videos,
                id=str(qa.get("uid") or key),
                video=f"{key}.mp4",
                question=question,
                choices=opts,
                answer_index=_letter_index(qa.get("answer", ""), len(opts)),
                qtype=qtype,
            )


def _mvbench(files: Iterable[Path], videos: _VideoIndex, b: Benchmark):
    for f in files:
        for n, r in enumerate(_load_rows(f)):
            opts = [str(c) for c in r.get("candidates") or []]
            ans = str(r.get("answer", ""))
            idx = opts.index(ans) if ans in opts else _letter_index(ans, len(opts))
            bound = None
            if r.get("start") is not None and r.get("end") is not None:
                bound = (float(r["start"]), float(r["end"]))
            _add(
                b,
                videos,
                id=f"{f.stem}/{n}",
                video=str(r.get("video") or ""),
                question=str(r.get("question") or ""),
                choices=opts,
                answer_index=idx,
                qtype=f.stem,
                bound=bound,
            )


def read_benchmark(
    fmt: str,
    questions: str | Path,
    videos: str | Path,
    *,
    answers: str | Path | None = None,
    subtitles: str | Path | None = None,
) -> Benchmark:
    """Read a benchmark's question file (an MVBench folder of task files too) and find its videos.

    InputError (one line) for an unknown format, a missing file or folder, or a file with no
    usable question; questions whose video or answer is missing are skipped and counted.
    """
    if fmt not in FORMATS:
        raise InputError(f"unknown benchmark format {fmt!r}; formats: {', '.join(FORMATS)}")
    source = Path(questions).expanduser()
    if not source.exists():
        raise InputError(f"{source}: no such question file")
    index = _VideoIndex(Path(videos).expanduser())
    bench = Benchmark(format=fmt, source=source)
    if fmt == "mvbench":
        files = sorted(source.glob("*.json")) if source.is_dir() else [source]
        if not files:
            raise InputError(f"{source}: no .json task files in the folder")
        _mvbench(files, index, bench)
    else:
        if source.is_dir():
            raise InputError(f"{source}: expected the {fmt} question file, got a folder")
        rows = _load_rows(source)
        if fmt == "egoschema":
            keyed: dict[str, Any] = {}
            if answers is not None:
                a = Path(answers).expanduser()
                if not a.is_file():
                    raise InputError(f"{a}: no such answers file")
                keyed = {str(k): v for k, v in json.loads(a.read_text(encoding="utf-8")).items()}
            _egoschema(rows, index, keyed, bench)
        elif fmt == "nextqa":
            _nextqa(rows, index, source, bench)
        elif fmt == "videomme":
            sub = Path(subtitles).expanduser() if subtitles else None
            if sub is not None and not sub.is_dir():
                raise InputError(f"{sub}: subtitles folder not found")
            _videomme(rows, index, sub, bench)
        else:
            _lvbench(rows, index, bench)
    if not bench.items:
        why = "; ".join(f"{n} {w}" for w, n in bench.skipped.items()) or "the file is empty"
        raise InputError(f"{source}: no usable {fmt} question ({why})")
    return bench


# ---------------------------------------------------------------------------------- subtitles

_SRT_TIME = re.compile(r"(\d+:\d{2}:\d{2})[,.](\d{1,3})\s*-->\s*(\d+:\d{2}:\d{2})[,.](\d{1,3})")


def read_srt(path: str | Path) -> list[tuple[float, float, str]]:
    """The cues of an .srt file as (start, end, text) in seconds; markup tags are dropped."""
    text = Path(path).read_text(encoding="utf-8-sig", errors="replace")
    cues = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        lines = [ln for ln in block.strip().splitlines() if ln.strip()]
        for i, ln in enumerate(lines):
            m = _SRT_TIME.search(ln)
            if not m:
                continue
            # SRT writes h:mm:ss,mmm: the one timecode parser reads it with a decimal point.
            start = parse_timecode(f"{m.group(1)}.{m.group(2)}", strict=False)
            end = parse_timecode(f"{m.group(3)}.{m.group(4)}", strict=False)
            body = " ".join(re.sub(r"<[^>]+>|\{[^}]+\}", "", x).strip() for x in lines[i + 1 :])
            if body.strip():
                cues.append((start, max(end, start), body.strip()))
            break
    return cues


# ------------------------------------------------------------------------------------ running

CONDITIONS: tuple[str, ...] = ("asr", "no_asr", "subtitles")
CONDITION_HELP = {
    "asr": "the record as the profile makes it (speech from ASR)",
    "no_asr": "the same record without speech (what the pictures alone give)",
    "subtitles": "the record with the benchmark's subtitles as its speech instead of ASR",
}


@dataclass
class BenchmarkReport:
    """Accuracy per task type for each condition, the blind baseline and chance."""

    format: str
    source: str
    questions: int
    videos: int
    skipped: dict[str, int]
    textualize_seconds: float
    llm_warmup_seconds: float
    conditions: dict[str, Any]  # condition -> evaluate.PathReport
    blind: Any
    chance: Any

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "source": self.source,
            "questions": self.questions,
            "videos": self.videos,
            "skipped": self.skipped,
            "textualize_seconds": round(self.textualize_seconds, 2),
            "llm_warmup_seconds": round(self.llm_warmup_seconds, 2),
            "conditions": {k: r.model_dump() for k, r in self.conditions.items()},
            "blind": self.blind.model_dump(),
            "chance": self.chance.model_dump(),
            "per_question": {k: per_question(r) for k, r in self.conditions.items()}
            | {"blind": per_question(self.blind)},
        }

    def text(self) -> str:
        """The tables: one per condition (text path beside the blind baseline and chance)."""
        from vidchat.apps.evaluate import comparison_table

        head = f"{self.format}: {self.questions} questions on {self.videos} videos"
        if self.skipped:
            head += " (skipped: " + ", ".join(f"{n} {w}" for w, n in self.skipped.items()) + ")"
        parts = [
            head,
            f"textualize: {self.textualize_seconds:.1f} s for all videos (cached); "
            f"local LLM warm-up (not in s/answer): {self.llm_warmup_seconds:.1f} s",
        ]
        for name, rep in self.conditions.items():
            parts += ["", f"## {name}: {CONDITION_HELP[name]}", ""]
            parts.append(comparison_table([rep, self.blind, self.chance]))
        parts.append("")
        for name, rep in [*self.conditions.items(), ("blind", self.blind)]:
            pq = per_question(rep)
            parts.append(
                f"{name}: accuracy {rep.overall.accuracy:.3f}, {pq['seconds']:.2f} s and "
                f"{pq['prompt_tokens']:.0f}+{pq['completion_tokens']:.0f} tokens per question"
                + ("" if pq["tokens_reported"] else " (tokens not reported by the backend)")
            )
        return "\n".join(parts)


def per_question(report: Any) -> dict[str, float | bool]:
    """Mean seconds and tokens (prompt, completion) per question of a path's report."""
    items = report.items
    n = max(1, len(items))
    prompt = [i.prompt_tokens for i in items if i.prompt_tokens is not None]
    completion = [i.completion_tokens for i in items if i.completion_tokens is not None]
    return {
        "seconds": sum(i.seconds for i in items) / n,
        "prompt_tokens": sum(prompt) / max(1, len(prompt)),
        "completion_tokens": sum(completion) / max(1, len(completion)),
        "tokens_reported": bool(prompt),
    }


def condition_record(ctx: Any, condition: str, subtitles: Path | None = None) -> Any:
    """The record a condition answers from (a copy; `ctx` is not changed)."""
    from vidchat.kernel.record import SpeechSegment

    if condition not in CONDITIONS:
        raise InputError(f"unknown condition {condition!r}; conditions: {', '.join(CONDITIONS)}")
    out = ctx.model_copy(deep=True)
    if condition == "asr":
        return out
    out.speech = []
    for p in out.provenance:
        if p.name == "asr":
            p.status, p.reason, p.items = "skipped", f"speech left out ({condition})", 0
    if condition == "subtitles" and subtitles is not None:
        out.speech = [
            SpeechSegment(start=a, end=b, text=t, source="subtitles")
            for a, b, t in read_srt(subtitles)
        ]
    out.sort()
    return out


def _question_text(item: BenchItem) -> str:
    if item.bound is None:
        return item.question
    a, b = item.bound
    return f"{item.question} (This question is about {a:g}–{b:g} s of the video.)"


def _warm_up(llm: Any, progress: Any) -> float:
    """Load a local model before the clock starts: its first answer would otherwise carry the
    loading time into the first question's seconds. Remote models are not called (a call costs)."""
    import time

    from vidchat.kernel.llm_config import LLMConfig

    if not isinstance(llm, LLMConfig) or llm.backend != "local":
        return 0.0
    from langchain_core.messages import HumanMessage

    from vidchat.llm.factory import make_chat_model
    from vidchat.llm.streaming import invoke_chat

    if progress:
        progress("loading the local LLM")
    t0 = time.perf_counter()
    invoke_chat(make_chat_model(llm), [HumanMessage("Reply with OK.")])
    return time.perf_counter() - t0


def run_benchmark(
    bench: Benchmark,
    *,
    profile: str | None = None,
    llm: Any = None,
    conditions: Sequence[str] | None = None,
    limit: int = 0,
    progress: Any = None,
) -> BenchmarkReport:
    """Textualize each video (through the cache), ask every question in multiple-choice mode
    under each condition, and ask the blind baseline; `llm` as for `evaluate_text`."""
    import time

    from vidchat.apps.evaluate import EvalItem, chance_report, evaluate_blind, evaluate_text
    from vidchat.apps.instruct import QA, format_choices
    from vidchat.pipeline.core import Pipeline

    items = bench.items[:limit] if limit else list(bench.items)
    wanted = list(conditions) if conditions else ["asr", "no_asr"]
    if conditions is None and any(i.subtitles for i in items):
        wanted.append("subtitles")
    for c in wanted:
        if c not in CONDITIONS:
            raise InputError(f"unknown condition {c!r}; conditions: {', '.join(CONDITIONS)}")
    pipeline = Pipeline(profile)
    records: dict[str, Any] = {}
    t0 = time.perf_counter()
    for n, video in enumerate(dict.fromkeys(i.video for i in items), 1):
        if progress:
            progress(f"textualize {n}: {video.name}")
        records[str(video)] = pipeline.run(video)
    textualize_s = time.perf_counter() - t0

    def eval_item(i: BenchItem) -> EvalItem:
        qa = QA(
            i=i.id,
            q=format_choices(_question_text(i), i.choices),
            a=i.choices[i.answer_index],
            type=i.type,
            source="grounded",
            choices=list(i.choices),
            answer_index=i.answer_index,
        )
        # One record per (video, subtitles) pair: the key the text path caches sessions by.
        key = f"{records[str(i.video)].video.sha256}:{i.subtitles or ''}"
        return EvalItem(video=str(i.video), sha256=key, qa=qa)

    evals = [eval_item(i) for i in items]
    warmup_s = _warm_up(llm, progress)
    reports = {}
    for c in wanted:
        contexts = {
            e.sha256: condition_record(records[str(i.video)], c, i.subtitles)
            for e, i in zip(evals, items, strict=True)
        }
        if progress:
            progress(f"asking {len(evals)} questions ({c})")
        reports[c] = evaluate_text(evals, llm=llm, contexts=contexts)
    if progress:
        progress(f"asking {len(evals)} questions (blind baseline)")
    blind = evaluate_blind(evals, llm=llm)
    return BenchmarkReport(
        format=bench.format,
        source=str(bench.source),
        questions=len(items),
        videos=len(records),
        skipped=dict(bench.skipped),
        textualize_seconds=textualize_s,
        llm_warmup_seconds=warmup_s,
        conditions=reports,
        blind=blind,
        chance=chance_report(evals),
    )


# ---------------------------------------------------------------------------------------- CLI


def add_eval_arguments(parser: Any) -> None:
    """The benchmark options of ``vidchat eval``."""
    parser.add_argument(
        "--format",
        choices=["vidchat", *FORMATS],
        default="vidchat",
        help="format of DATA: vidchat instruction JSONL (default) or a benchmark's question file",
    )
    parser.add_argument("--videos", help="folder of the benchmark's videos (searched recursively)")
    parser.add_argument("--answers", help="EgoSchema: the answers file (subset_answers.json)")
    parser.add_argument("--subtitles", help="Video-MME: the folder of <videoID>.srt subtitles")
    parser.add_argument(
        "--conditions",
        help="comma-separated: asr, no_asr, subtitles (default asr,no_asr, plus subtitles when "
        "given)",
    )


def run_eval_benchmark(args: Any) -> int:
    """``vidchat eval QUESTIONS --format F --videos DIR``: the tables on stdout, JSON with -o."""
    import sys

    from vidchat.kernel.record import atomic_write_text
    from vidchat.llm.config import resolve_llm_config
    from vidchat.pipeline.profiles import load_profile

    if not args.videos:
        raise InputError(f"--format {args.format} needs --videos FOLDER (the benchmark's videos)")
    bench = read_benchmark(
        args.format, args.data, args.videos, answers=args.answers, subtitles=args.subtitles
    )
    conditions = [c for c in (args.conditions or "").split(",") if c] or None

    def progress(text: str) -> None:
        if not args.quiet:
            print(f"vidchat eval: {text}", file=sys.stderr, flush=True)

    profile = load_profile(args.profile)
    config = resolve_llm_config(profile.llm, args.llm)
    report = run_benchmark(
        bench, profile=args.profile, llm=config, conditions=conditions, limit=args.limit,
        progress=progress,
    )  # fmt: skip
    print(report.text())
    if args.output:
        atomic_write_text(Path(args.output), json.dumps(report.to_json(), indent=1))
    return 0
