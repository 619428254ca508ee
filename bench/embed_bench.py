"""Embed path vs text path vs blind baseline vs chance, per question type, on generated scenes
where each path has something to win (`vidchat.embed_model.scenes`).

    nice -n 10 python -m bench.embed_bench [--videos 480] [--work DIR] [--text-per-type 6]

(run from the repository root). What it does, all on this machine, every step resumable:

1. Writes `--videos` scenes (coloured shapes, some moving, a word on screen, a sentence said)
   with their truth and text-path records into ``WORK/scenes`` and their instruction data into
   ``WORK/data.jsonl``; splits are by video (75 / 5 / 20 %).
2. Trains the CPU preset (`EmbedConfig.cpu()`, `TrainConfig.cpu()`: alignment on descriptions
   written from the records, then instruction tuning) into ``WORK/run``, or continues it; a run
   already at its last step is reused. The frozen encoder's features are cached once.
3. Scores on the test split's multiple-choice questions:
   - the embed path on every question, then again on the visual ones with the frames
     shuffled and blanked;
   - the text path (perfect-perception record + the default local LLM through
     `conversation.session`) and the blind baseline (the same LLM, question and options only) on
     a fixed subset: the first `--text-per-type` questions of each type in file order (the
     local LLM takes seconds per answer on 2 busy cores);
   - chance, and the embed path on that same subset, so every row compares like with like.
4. Writes bench/results/embed.json: the tables (accuracy with 95 % Wilson intervals), the
   answer balance per type, the loss curves of both stages, steps/s, and the targets checked.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections import Counter
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def _subset(items: list, per_type: int) -> list:
    """The first `per_type` items of each question type in file order, taken round-robin over
    the types (so a partial run covers every type evenly)."""
    by_type: dict[str, list] = {}
    for it in items:
        if len(by_type.setdefault(it.qa.type, [])) < per_type:
            by_type[it.qa.type].append(it)
    out = []
    for k in range(per_type):
        out += [its[k] for _, its in sorted(by_type.items()) if k < len(its)]
    return out


def _balance(items: list) -> dict[str, dict]:
    """Per type: how often each answer is right, and the accuracy of always giving the most
    frequent one (a blind guesser that knew the answer distribution)."""
    out = {}
    for t in sorted({it.qa.type for it in items}):
        answers = Counter(it.qa.choices[it.qa.answer_index] for it in items if it.qa.type == t)
        letters = Counter("ABCDEFGH"[it.qa.answer_index] for it in items if it.qa.type == t)
        n = sum(answers.values())
        out[t] = {
            "n": n,
            "answers": dict(answers.most_common()),
            "letters": dict(sorted(letters.items())),
            "majority_answer_accuracy": answers.most_common(1)[0][1] / n,
        }
    return out


def _curve(losses: list[float], begin: int, end: int, points: int = 30) -> list[list[float]]:
    """[step, mean loss] over `points` windows of steps begin+1..end."""
    span = losses[begin:end]
    if not span:
        return []
    w = max(len(span) // points, 1)
    return [
        [begin + k + w, round(sum(span[k : k + w]) / len(span[k : k + w]), 4)]
        for k in range(0, len(span), w)
    ]


def _llm_rows(subset: list, work: Path, max_tokens: int, log, compute: bool = True) -> list:
    """The text path and the blind baseline on `subset` with the default local LLM, question by
    question (text, then blind). Each answer is appended to a file in `work` as soon as it is
    given (keyed by the LLM settings), so a stopped run continues where it was; with `compute`
    False only the answers already there are used. Both reports cover the same questions."""
    import hashlib

    from vidchat.apps.evaluate import (
        ItemResult,
        evaluate_blind,
        evaluate_text,
        report_from_items,
    )
    from vidchat.llm.config import resolve_llm_config

    llm = resolve_llm_config().model_copy(update={"temperature": 0.0, "max_tokens": max_tokens})
    key = hashlib.sha256(llm.model_dump_json().encode()).hexdigest()[:12]
    file = work / f"llm_rows_{key}.jsonl"
    done: dict[tuple[str, str], ItemResult] = {}
    models = {"text": "", "blind": ""}
    if file.is_file():
        for line in file.read_text().splitlines():
            row = json.loads(line)
            path, k = row.pop("path"), row.pop("key")
            models[path] = row.pop("model")
            done[(path, k)] = ItemResult.model_validate(row)
    runs = (("text", evaluate_text), ("blind", evaluate_blind))
    for n, it in enumerate(subset, 1):
        k = it.sha256 + it.qa.q
        for path, run in runs:
            if (path, k) in done or not compute:
                continue
            r = run([it], llm=llm)
            models[path] = r.model
            done[(path, k)] = r.items[0]
            with file.open("a") as f:  # one line per answer: a stopped run keeps its answers
                row = {"path": path, "key": k, "model": r.model, **r.items[0].model_dump()}
                f.write(json.dumps(row) + "\n")
            log(f"{path} {n}/{len(subset)} {it.qa.type}: {r.items[0].output[:60]!r}")
    both = [it for it in subset if all((p, it.sha256 + it.qa.q) in done for p, _ in runs)]
    return [
        report_from_items(p, models[p], [done[(p, it.sha256 + it.qa.q)] for it in both])  # type: ignore[arg-type]
        for p, _ in runs
    ], both


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--videos", type=int, default=400, help="300 train, 20 val, 80 test")
    p.add_argument("--work", default=str(Path.home() / ".cache" / "vidchat" / "embed_bench"))
    p.add_argument("--steps", type=int, default=None, help="override TrainConfig.cpu().steps")
    p.add_argument("--lr", type=float, default=None, help="override TrainConfig.cpu().lr")
    p.add_argument("--device", default="cpu")
    p.add_argument("--text-per-type", type=int, default=3, help="text/blind subset size per type")
    p.add_argument(
        "--embed-per-type", type=int, default=0, help="embed path: at most N per type (0: all)"
    )
    p.add_argument(
        "--perturb-per-type", type=int, default=0, help="shuffled/blank runs: N per type (0: all)"
    )
    p.add_argument("--llm-tokens", type=int, default=12, help="answer length of the LLM rows")
    p.add_argument("--no-text", action="store_true", help="skip the LLM rows (text, blind)")
    p.add_argument(
        "--llm-only",
        action="store_true",
        help="compute (and cache in WORK) the text and blind rows only, then stop",
    )
    p.add_argument(
        "--llm-cached-only",
        action="store_true",
        help="text and blind rows from the answers cached in WORK only (compute no more)",
    )
    p.add_argument("--out", default=str(RESULTS / "embed.json"))
    p.add_argument("--run-name", default="run", help="the run folder inside WORK")
    p.add_argument(
        "--train-log",
        default=None,
        help="output of `python -m vidchat.embed_model.train` for this run, when it trained apart "
        "(its wall and CPU time go into the results)",
    )
    p.add_argument(
        "--embed-llm",
        default=None,
        help="the embed model's frozen LLM (default: the CPU preset's, truncated SmolLM2-135M)",
    )
    args = p.parse_args(argv)

    import torch

    from vidchat.apps.evaluate import chance_report, comparison_table, evaluate_embed, mc_items
    from vidchat.apps.instruct import write_jsonl
    from vidchat.embed_model.config import EmbedConfig, TrainConfig
    from vidchat.embed_model.scenes import TEXT_TYPES, VISUAL_TYPES, build_scene_dataset
    from vidchat.embed_model.train import CHECKPOINT, train

    def log(msg: str) -> None:
        print(msg, flush=True)

    work = Path(args.work)
    t0 = time.perf_counter()
    data = build_scene_dataset(work / "scenes", args.videos, progress=True)
    write_jsonl(data, work / "data.jsonl")
    splits = Counter(d.split for d in data)
    log(f"{len(data)} videos ({dict(splits)}) in {time.perf_counter() - t0:.0f} s")

    items = mc_items(work / "data.jsonl", "test")
    subset = _subset(items, args.text_per_type)
    llm_reports: list = []

    def llm_rows() -> None:
        nonlocal llm_reports, subset
        if not args.no_text:
            llm_reports, subset = _llm_rows(
                subset, work, args.llm_tokens, log, compute=not args.llm_cached_only
            )

    if args.llm_only:
        llm_rows()
        return 0

    cfg = EmbedConfig.cpu(**({"llm": args.embed_llm} if args.embed_llm else {}))
    given = {k: v for k, v in (("steps", args.steps), ("lr", args.lr)) if v}
    tcfg = TrainConfig.cpu(device=args.device, **given)
    run = work / args.run_name
    done = 0
    if (run / CHECKPOINT).is_file():
        done = int(torch.load(run / CHECKPOINT, map_location="cpu", weights_only=False)["step"])
    t1 = time.perf_counter()
    result = train(
        work / "data.jsonl",
        run,
        cfg,
        tcfg,
        resume=True,
        log=lambda s, loss: log(f"step {s}: loss {loss:.3f}") if s % 25 == 0 else None,
    )
    log(f"trained to step {result.steps} ({result.steps_per_s:.2f} steps/s this session)")
    state = torch.load(run / CHECKPOINT, map_location="cpu", weights_only=False)
    losses = list(state["losses"])

    scored = _subset(items, args.embed_per_type) if args.embed_per_type else items
    embed = evaluate_embed(scored, run, args.device)
    log(comparison_table([embed, chance_report(scored)]))
    visual = [it for it in scored if it.qa.type in VISUAL_TYPES]
    if args.perturb_per_type:
        visual = _subset(visual, args.perturb_per_type)
    shuffled = evaluate_embed(visual, run, args.device, perturb="shuffled")
    blank = evaluate_embed(visual, run, args.device, perturb="blank")
    log(comparison_table([embed, shuffled, blank]))
    chance = chance_report(scored)
    table_all = comparison_table([embed, chance])
    log(table_all)

    # The LLM rows come after the embed path's, so a run whose rows are being computed apart
    # (--llm-only in another process) reads every cached answer when it gets here.
    llm_rows()
    sub_reports = [evaluate_embed(subset, run, args.device)]
    if llm_reports:
        sub_reports = [llm_reports[0], *sub_reports, llm_reports[1]]
    sub_reports.append(chance_report(subset))
    table_sub = comparison_table(sub_reports)
    log(table_sub)

    # Targets, on the same questions for both sides, and only "met" when the 95 % intervals do
    # not overlap: a margin on three questions is no evidence either way.
    by = {r.path: r for r in sub_reports}
    targets = {}

    def compare(a, b, t, need):
        sa, sb = a.per_type.get(t), b.per_type.get(t)
        if sa is None or sb is None:
            return None
        margin = sa.accuracy - sb.accuracy
        separated = sa.ci95[0] > sb.ci95[1]
        return {
            "margin": round(margin, 3),
            "n": sa.n,
            "ci95": [list(sa.ci95), list(sb.ci95)],
            "met": margin >= need and separated,
        }

    if "blind" in by:
        for t in VISUAL_TYPES:
            targets[f"{t}: embed - blind >= 0.20"] = compare(by["embed"], by["blind"], t, 0.20)
    if "text" in by:
        for t in TEXT_TYPES:
            targets[f"{t}: text > embed"] = compare(by["text"], by["embed"], t, 1e-9)

    def dump(r):
        return r.model_dump(exclude={"items"})

    out = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, {args.device}",
        "videos": dict(splits),
        "questions_test": len(items),
        "questions_scored_embed": len(scored),
        "questions_perturbed": len(visual),
        "answer_balance_test": _balance(items),
        "train": {
            "config": cfg.to_dict(),
            "train_config": tcfg.to_dict(),
            "steps": int(state["step"]),
            "resumed_from": done,
            "steps_per_s_last_session": result.steps_per_s,
            "cpu_seconds_last_session": result.cpu_seconds,
            "steps_last_session": result.steps - result.resumed_from,
            "seconds_last_session_incl_features": time.perf_counter() - t1,
            "trainable_params": result.trainable_params,
            "loss_curve_align": _curve(losses, 0, tcfg.align_steps),
            "loss_curve_instruct": _curve(losses, tcfg.align_steps, len(losses)),
        },
        "embed_all_test": {
            "plain": dump(embed),
            "frames_shuffled": dump(shuffled),
            "frames_blank": dump(blank),
        },
        "chance_all_test": dump(chance),
        "table_all_test": table_all,
        "subset": f"first {args.text_per_type} test questions of each type (file order) that "
        f"both the text path and the blind baseline answered: {len(subset)} questions",
        "subset_reports": [dump(r) for r in sub_reports],
        "table_subset": table_sub,
        "targets": targets,
    }
    if args.train_log:
        lines = Path(args.train_log).read_text().splitlines()
        steps = [ln for ln in lines if ln.startswith("step ")]
        out["train"]["train_command"] = {
            "log": args.train_log,
            "summary": next((ln for ln in reversed(lines) if "steps/s" in ln), ""),
            "first_step": steps[0] if steps else "",
            "last_step": steps[-1] if steps else "",
        }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    from vidchat.kernel.record import atomic_write_text

    atomic_write_text(Path(args.out), json.dumps(out, indent=1))
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
