"""Embed path vs its trained blind twin vs text path vs zero-shot blind LLM vs chance, per
question type, on generated scenes where each path has something to win
(`vidchat.embed_model.scenes`).

    nice -n 10 python -m bench.embed_bench [--videos 2000] [--work DIR] [--text-per-type 10]

(run from the repository root). What it does, all on this machine, every step resumable:

1. Writes `--videos` scenes (coloured shapes, some moving, a word on screen, a sentence said)
   with their truth and text-path records into ``WORK/scenes`` and their instruction data into
   ``WORK/data.jsonl``; splits are by video (80 / 5 / 15 %). Training videos are asked every
   question (every object, every mover, several phrasings), held-out ones one of each type.
2. Trains the CPU preset (`EmbedConfig.cpu()`, `TrainConfig.cpu()`: stage 0, the auxiliary
   attribute loss alone; alignment on descriptions written from the records; then instruction
   tuning, the attribute loss staying on) into ``WORK/run``, and the same model on
   the same data with every video replaced by blank frames (``EmbedConfig.cpu(blind=True)``,
   the trained blind baseline) into ``WORK/run_blind``; each continues from its checkpoint, and
   one already at its last step is reused. The frozen encoder's features are cached once.
3. Scores on the test split's multiple-choice questions (and on the val split, the half that
   steered the choices made here, reported apart):
   - the embed path and its trained blind twin on every question; the embed path again on the
     visual ones with the frames shuffled and blanked;
   - the text path (perfect-perception record + the default local LLM through
     `conversation.session`) and the zero-shot blind LLM (question and options only) on a
     fixed subset: the first `--text-per-type` test questions of each of `--text-types` (the
     local LLM takes tens of seconds per answer on 2 busy cores), with the embed path and
     chance on that same subset, so every row compares like with like.
4. Writes bench/results/embed.json: the tables (accuracy with 95 % Wilson intervals), the
   answer balance per type (majority-answer accuracy), the loss curves of both runs, steps,
   CPU-seconds and the load average while training, and the targets checked.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import Counter
from pathlib import Path
from typing import Any

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


def dump_report(r: Any) -> dict:
    """A PathReport without its per-item answers."""
    return r.model_dump(exclude={"items"})


def _loadavg() -> str:
    """The 1, 5 and 15-minute load averages (the machine is shared: timings need them)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _table(columns: list[tuple[str, Any]]) -> str:
    """Markdown: one row per question type, one column per (label, PathReport), accuracy with
    its 95 % interval (chance: the expected accuracy)."""
    types = sorted({t for _, r in columns for t in r.per_type})
    head = ["question type", "n", *[label for label, _ in columns]]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]

    def cell(s: Any, r: Any) -> str:
        if s is None:
            return "-"
        if r.path == "chance":
            return f"{s.accuracy:.2f}"
        return f"{s.accuracy:.2f} [{s.ci95[0]:.2f}, {s.ci95[1]:.2f}]"

    for t in [*types, None]:
        scores = [(r.per_type.get(t) if t else r.overall, r) for _, r in columns]
        n = max((s.n for s, _ in scores if s is not None), default=0)
        name = t or "**all**"
        lines.append("| " + " | ".join([name, str(n), *[cell(s, r) for s, r in scores]]) + " |")
    lines.append("")
    lines.append("; ".join(f"{label}: {r.model}" for label, r in columns))
    return "\n".join(lines)


def _compare(a: Any, b: Any, t: str, need: float) -> dict | None:
    """`a` beats `b` on type `t` by at least `need`, with their 95 % intervals apart."""
    sa, sb = a.per_type.get(t), b.per_type.get(t)
    if sa is None or sb is None:
        return None
    margin = sa.accuracy - sb.accuracy
    return {
        "margin": round(margin, 3),
        "n": [sa.n, sb.n],
        "ci95": [[round(x, 3) for x in sa.ci95], [round(x, 3) for x in sb.ci95]],
        "met": margin >= need and sa.ci95[0] > sb.ci95[1],
    }


def _train_run(work: Path, name: str, cfg: Any, tcfg: Any, log: Any) -> dict:
    """Train (or continue, or reuse) one run; what it did, with the load around it."""
    import torch

    from vidchat.embed_model.train import CHECKPOINT, train

    run = work / name
    done = 0
    if (run / CHECKPOINT).is_file():
        done = int(torch.load(run / CHECKPOINT, map_location="cpu", weights_only=False)["step"])
    load_before = _loadavg()
    t1 = time.perf_counter()
    result = train(
        work / "data.jsonl",
        run,
        cfg,
        tcfg,
        resume=True,
        log=lambda s, loss: log(f"{name} step {s}: loss {loss:.3f}") if s % 100 == 0 else None,
    )
    log(f"{name}: step {result.steps} ({result.steps_per_s:.2f} steps/s this session)")
    state = torch.load(run / CHECKPOINT, map_location="cpu", weights_only=False)
    losses = list(state["losses"])
    info = {
        "config": cfg.to_dict(),
        "train_config": tcfg.to_dict(),
        "steps": int(state["step"]),
        "resumed_from": done,
        "trainable_params": result.trainable_params,
        "loss_curve_align": _curve(losses, 0, tcfg.align_steps),
        "loss_curve_instruct": _curve(losses, tcfg.align_steps, len(losses)),
    }
    aux = list(state.get("aux_losses", []))
    if cfg.aux_weight and aux:
        info["aux_loss_curve"] = _curve(aux, 0, len(aux))
    attr = list(state.get("attr_losses", []))
    if attr:
        info["attr_steps"] = int(state.get("attr_step", 0))
        info["loss_curve_attributes"] = _curve(attr, 0, len(attr))
    if result.steps > done:  # this session trained: its cost (a reused run keeps the old one)
        info["last_session"] = {
            "steps": result.steps - done,
            "cpu_seconds": round(result.cpu_seconds, 1),
            "wall_seconds_training": round(result.seconds, 1),
            "wall_seconds_incl_loading": round(time.perf_counter() - t1, 1),
            "steps_per_s": round(result.steps_per_s, 3),
            "loadavg_before": load_before,
            "loadavg_after": _loadavg(),
        }
        (run / "session.json").write_text(json.dumps(info["last_session"], indent=1))
    elif (run / "session.json").is_file():
        info["last_session"] = json.loads((run / "session.json").read_text())
    return info


def _video_dependence(run: Path, work: Path, n_videos: int = 40) -> dict:
    """How much the trained bridge's video tokens depend on the video: for `n_videos` val
    videos x four fixed questions, the share of the tokens' variance explained by the video
    (per-video means) and by the question (per-question means); and the colour it picks for
    "What colour is the circle?" on each video, with the frames and with blank frames."""
    import torch

    from vidchat.apps.instruct import OPEN_INSTRUCTION, read_jsonl
    from vidchat.embed_model.encoder import video_features
    from vidchat.embed_model.model import Example
    from vidchat.embed_model.scenes import ATTRIBUTE_HEADS, COLOURS, scene_targets
    from vidchat.embed_model.train import load_checkpoint

    model, enc, state = load_checkpoint(run)
    model.eval()
    recs = [r for r in read_jsonl(work / "data.jsonl") if r.split == "val"][:n_videos]
    questions = [
        "What colour is the circle?",
        "What colour is the square?",
        "How many objects move?",
        "Is the red circle small or large?",
    ]
    colours = sorted(COLOURS)
    picks: dict[str, Counter] = {"frames": Counter(), "blank": Counter()}
    rows = []
    # What the auxiliary head reads back from the video tokens of these held-out videos (the
    # first question's tokens): right / asked, per attribute head.
    aux_right: Counter = Counter()
    aux_asked: Counter = Counter()
    with torch.no_grad():
        for r in recs:
            f = video_features(r.video, enc, model.config.n_frames)
            texts = [f"{OPEN_INSTRUCTION}\n{q}" for q in questions]
            g_out, q_out = model.bridge(f.expand(len(questions), *f.shape), texts)
            rows.append(model.proj(q_out))
            truth = scene_targets(r.video)
            if model.aux_sizes and truth is not None:
                for (head, _), logits, want in zip(
                    ATTRIBUTE_HEADS,
                    model.aux_logits(g_out[:1], q_out[:1])[: len(ATTRIBUTE_HEADS)],
                    truth,
                    strict=True,
                ):
                    if want != -100:
                        aux_asked[head] += 1
                        aux_right[head] += int(int(logits[0].argmax()) == want)
            for how, perturb in (("frames", None), ("blank", "blank")):
                g = video_features(r.video, enc, model.config.n_frames, perturb=perturb)
                ex = Example(g, OPEN_INSTRUCTION, questions[0])
                s = model.score_choices(ex, colours)
                picks[how][colours[max(range(len(s)), key=s.__getitem__)]] += 1
    x = torch.stack(rows).flatten(2)  # [videos, questions, Q*H]
    total = x.var(dim=(0, 1), unbiased=False).sum()
    return {
        "step": int(state["step"]),
        "videos": len(recs),
        "variance_share_video": round(float(x.mean(1).var(0, unbiased=False).sum() / total), 4),
        "variance_share_question": round(float(x.mean(0).var(0, unbiased=False).sum() / total), 4),
        "circle_colour_picks": {k: dict(v.most_common()) for k, v in picks.items()},
        "aux_head_accuracy": {
            h: round(aux_right[h] / aux_asked[h], 3) for h, _ in ATTRIBUTE_HEADS if aux_asked[h]
        },
    }


def _val_only(args: Any, work: Path, name: str, info: dict, log: Any) -> int:
    """A pilot on the val split: accuracy per type, the video-dependence diagnostics and the
    training curves, written to ``args.out`` (the test split is not read)."""
    from vidchat.apps.evaluate import chance_report, evaluate_embed, mc_items
    from vidchat.kernel.record import atomic_write_text

    val = mc_items(work / "data.jsonl", "val")
    if args.val_per_type:
        val = _subset(val, args.val_per_type)
    rep = evaluate_embed(val, work / name, args.device)
    table = _table([("embed", rep), ("chance", chance_report(val))])
    log(table)
    out = {
        "what": f"pilot {name}: val split only ({len(val)} questions); the test split unread",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "train": info,
        "val": dump_report(rep),
        "table_val": table,
        "diagnostics": _video_dependence(work / name, work),
    }
    log(json.dumps(out["diagnostics"], indent=1))
    atomic_write_text(Path(args.out), json.dumps(out, indent=1))
    log(f"wrote {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--videos", type=int, default=2000, help="1600 train, 100 val, 300 test")
    p.add_argument("--work", default=str(Path.home() / ".cache" / "vidchat" / "embed_bench3"))
    p.add_argument("--steps", type=int, default=None, help="override TrainConfig.cpu().steps")
    p.add_argument("--lr", type=float, default=None, help="override TrainConfig.cpu().lr")
    p.add_argument("--device", default="cpu")
    p.add_argument("--text-per-type", type=int, default=10, help="text/LLM subset size per type")
    p.add_argument(
        "--text-types",
        default="speech,ocr,colour,count_moving",
        help="question types of the text/LLM subset (comma-separated)",
    )
    p.add_argument(
        "--embed-per-type", type=int, default=0, help="embed paths: at most N per type (0: all)"
    )
    p.add_argument(
        "--val-per-type", type=int, default=30, help="val split: at most N per type (0: all)"
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
    p.add_argument(
        "--train-only",
        choices=["embed", "blind", "both"],
        default=None,
        help="train (or continue) the named run(s), then stop",
    )
    p.add_argument(
        "--feature-norm",
        action="store_true",
        help="both runs standardise the encoder features (EmbedConfig.feature_norm)",
    )
    p.add_argument(
        "--no-qformer-text",
        action="store_true",
        help="both runs keep the question out of the Q-Former (qformer_text=False, "
        "VideoChat-Embed's layout)",
    )
    p.add_argument(
        "--aux-weight",
        type=float,
        default=None,
        help="both runs: weight of the auxiliary attribute loss (default: EmbedConfig.cpu()'s)",
    )
    p.add_argument(
        "--aux-from",
        choices=["queries", "gmhra"],
        default=None,
        help="what the auxiliary head reads (EmbedConfig.aux_from)",
    )
    p.add_argument(
        "--motion",
        choices=["none", "diff", "centred", "both"],
        default=None,
        help="both runs: motion signals into GMHRA (EmbedConfig.motion; default: the preset's)",
    )
    p.add_argument(
        "--aux-answer",
        choices=["on", "off"],
        default=None,
        help="both runs: the question-conditioned answer head (EmbedConfig.aux_answer)",
    )
    p.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="both runs: frames fed to the encoder at this size (EmbedConfig.image_size; 112: "
        "3x3 tokens a frame, 224: 7x7)",
    )
    p.add_argument(
        "--lora-rank",
        type=int,
        default=None,
        help="both runs: LoRA rank on the kept LLM layers (EmbedConfig.llm_lora_rank; 0: none)",
    )
    p.add_argument(
        "--answer-head-in-answers",
        choices=["on", "off"],
        default=None,
        help="both runs: the answer head's loss during the answer steps "
        "(TrainConfig.answer_head_in_answers)",
    )
    p.add_argument(
        "--align-steps", type=int, default=None, help="override TrainConfig.cpu().align_steps"
    )
    p.add_argument(
        "--attr-steps", type=int, default=None, help="override TrainConfig.cpu().attr_steps"
    )
    p.add_argument("--attr-lr", type=float, default=None, help="stage 0's peak learning rate")
    p.add_argument("--attr-batch-size", type=int, default=None, help="stage 0's batch size")
    p.add_argument(
        "--val-only",
        action="store_true",
        help="train (or reuse) the embed run only, score it on the val split with the "
        "video-dependence diagnostics, write --out and stop (the test split stays untouched)",
    )
    p.add_argument(
        "--run-suffix", default="", help="run folders WORK/run<SUFFIX>, WORK/run_blind<SUFFIX>"
    )
    p.add_argument(
        "--pilot",
        action="append",
        default=[],
        metavar="RUN:NOTE",
        help="also score this run folder of WORK on the val split (a pilot stopped early), "
        "with a note; repeatable",
    )
    p.add_argument("--out", default=str(RESULTS / "embed.json"))
    args = p.parse_args(argv)

    import torch

    from vidchat.apps.evaluate import chance_report, evaluate_embed, mc_items
    from vidchat.apps.instruct import write_jsonl
    from vidchat.embed_model.config import EmbedConfig, TrainConfig
    from vidchat.embed_model.scenes import TEXT_TYPES, VISUAL_TYPES, build_scene_dataset

    def log(msg: str) -> None:
        print(msg, flush=True)

    work = Path(args.work)
    t0 = time.perf_counter()
    data = build_scene_dataset(
        work / "scenes", args.videos, ratios=(0.8, 0.05, 0.15), progress=True
    )
    write_jsonl(data, work / "data.jsonl")
    splits = Counter(d.split for d in data)
    log(f"{len(data)} videos ({dict(splits)}) in {time.perf_counter() - t0:.0f} s")

    items = mc_items(work / "data.jsonl", "test")
    text_types = set(args.text_types.split(","))
    subset = _subset([it for it in items if it.qa.type in text_types], args.text_per_type)
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

    given: dict[str, Any] = {k: v for k, v in (("steps", args.steps), ("lr", args.lr)) if v}
    for name in ("align_steps", "attr_steps", "attr_lr", "attr_batch_size"):
        if getattr(args, name) is not None:
            given[name] = getattr(args, name)
    if args.answer_head_in_answers is not None:
        given["answer_head_in_answers"] = args.answer_head_in_answers == "on"
    tcfg = TrainConfig.cpu(device=args.device, **given)
    norm: dict[str, Any] = {"feature_norm": True} if args.feature_norm else {}
    if args.no_qformer_text:
        norm["qformer_text"] = False
    if args.aux_weight is not None:
        norm["aux_weight"] = args.aux_weight
    if args.aux_from is not None:
        norm["aux_from"] = args.aux_from
    if args.motion is not None:
        norm["motion"] = "" if args.motion == "none" else args.motion
    if args.aux_answer is not None:
        norm["aux_answer"] = args.aux_answer == "on"
    if args.image_size is not None:
        norm["image_size"] = args.image_size
    if args.lora_rank is not None:
        norm["llm_lora_rank"] = args.lora_rank
    sfx = args.run_suffix
    runs = {
        "embed": (f"run{sfx}", EmbedConfig.cpu(**norm)),
        "blind": (f"run_blind{sfx}", EmbedConfig.cpu(blind=True, **norm)),
    }
    train_info = {}
    for key, (name, cfg) in runs.items():
        if args.train_only in (None, "both", key) and not (args.val_only and key == "blind"):
            train_info[key] = _train_run(work, name, cfg, tcfg, log)
    if args.train_only:
        return 0
    if args.val_only:
        return _val_only(args, work, runs["embed"][0], train_info["embed"], log)

    def scored(split: str, per_type: int) -> list:
        its = mc_items(work / "data.jsonl", split)
        return _subset(its, per_type) if per_type else its

    test, val = scored("test", args.embed_per_type), scored("val", args.val_per_type)
    run, run_blind = work / f"run{sfx}", work / f"run_blind{sfx}"
    embed = evaluate_embed(test, run, args.device)
    blind_trained = evaluate_embed(test, run_blind, args.device)
    chance = chance_report(test)
    visual = [it for it in test if it.qa.type in VISUAL_TYPES]
    if args.perturb_per_type:
        visual = _subset(visual, args.perturb_per_type)
    shuffled = evaluate_embed(visual, run, args.device, perturb="shuffled")
    blank = evaluate_embed(visual, run, args.device, perturb="blank")
    table_test = _table(
        [
            ("embed", embed),
            ("embed, trained blind", blind_trained),
            ("embed, frames shuffled", shuffled),
            ("embed, frames blank", blank),
            ("chance", chance),
        ]
    )
    log(table_test)
    val_embed = evaluate_embed(val, run, args.device)
    val_blind = evaluate_embed(val, run_blind, args.device)
    table_val = _table(
        [("embed", val_embed), ("embed, trained blind", val_blind), ("chance", chance_report(val))]
    )
    log(table_val)

    diagnostics = {"embed": _video_dependence(run, work)}
    pilots = {}
    for spec in args.pilot:
        name, _, note = spec.partition(":")
        rep = evaluate_embed(val, work / name, args.device)
        pilots[name] = {
            "note": note,
            "val": dump_report(rep),
            "table_val": _table([("embed", rep), ("chance", chance_report(val))]),
            "video_dependence": _video_dependence(work / name, work),
        }
        log(pilots[name]["table_val"])

    # The LLM rows come after the embed path's, so a run whose rows are being computed apart
    # (--llm-only in another process) reads every cached answer when it gets here.
    llm_rows()
    sub_cols: list[tuple[str, Any]] = []
    if llm_reports:
        sub_cols.append(("text", llm_reports[0]))
    sub_cols.append(("embed", evaluate_embed(subset, run, args.device)))
    sub_cols.append(("embed, trained blind", evaluate_embed(subset, run_blind, args.device)))
    if llm_reports:
        sub_cols.append(("blind LLM (zero-shot)", llm_reports[1]))
    sub_cols.append(("chance", chance_report(subset)))
    table_sub = _table(sub_cols)
    log(table_sub)

    # Targets: "met" only when the margin is reached AND the 95 % intervals do not overlap.
    sub = dict(sub_cols)
    targets: dict[str, Any] = {}
    for t in VISUAL_TYPES:
        targets[f"{t}: embed - embed trained blind >= 0.20 (test)"] = _compare(
            embed, blind_trained, t, 0.20
        )
    if "blind LLM (zero-shot)" in sub:
        for t in VISUAL_TYPES:
            got = _compare(sub["embed"], sub["blind LLM (zero-shot)"], t, 0.20)
            if got:
                targets[f"{t}: embed - zero-shot blind LLM >= 0.20 (subset)"] = got
    if "text" in sub:
        for t in TEXT_TYPES:
            targets[f"{t}: text > embed (subset)"] = _compare(sub["text"], sub["embed"], t, 1e-9)
        for t in VISUAL_TYPES:
            got = _compare(sub["embed"], sub["text"], t, 1e-9)
            if got:
                targets[f"{t}: embed > text (subset)"] = got

    train_items = mc_items(work / "data.jsonl", "train")
    out = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"{torch.get_num_threads()} torch threads, {args.device}",
        "videos": dict(splits),
        "questions_train_mc": len(train_items),
        "questions_test": len(test),
        "questions_val": len(val),
        "questions_perturbed": len(visual),
        "answer_balance_test": _balance(items),
        "answer_balance_train": _balance(train_items),
        "train": train_info,
        "test": {
            "embed": dump_report(embed),
            "embed_trained_blind": dump_report(blind_trained),
            "embed_frames_shuffled": dump_report(shuffled),
            "embed_frames_blank": dump_report(blank),
            "chance": dump_report(chance),
        },
        "table_test": table_test,
        "val": {"embed": dump_report(val_embed), "embed_trained_blind": dump_report(val_blind)},
        "table_val": table_val,
        "subset": f"first {args.text_per_type} test questions of each of {sorted(text_types)} "
        f"(file order) that both the text path and the zero-shot blind LLM answered: "
        f"{len(subset)} questions",
        "subset_reports": {label: dump_report(r) for label, r in sub_cols},
        "table_subset": table_sub,
        "targets": targets,
        "diagnostics": diagnostics,
        "pilots": pilots,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    from vidchat.kernel.record import atomic_write_text

    atomic_write_text(Path(args.out), json.dumps(out, indent=1))
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
