"""Round-7 probes of issue 16: candidates for the answer steps (stages 1-2) of the CPU preset,
each started from the same stage 0 and scored on the val split only.

    OMP_NUM_THREADS=1 nice -n 10 python -m bench.embed_probe_r7 --stage0 run_r7_s0_seed0 \\
        --seed 0 --name lora8 --embed '{"llm_lora_rank": 8}' [--train '{"steps": 600}']

Stage 0 (the attribute and answer heads alone, no LLM) is the same for every candidate of a
seed, so it is trained once (``WORK/<stage0>``: a CPU-preset run stopped after its stage 0) and
each candidate continues from its weights (`embed_model.train.train`'s ``init_from``, with
``attr_steps=0``) exactly as the whole preset would after its own stage 0 (same seed, same
batches). `--embed` and `--train` override `EmbedConfig.cpu()` and `TrainConfig.cpu()`. The run
goes to ``WORK/run_r7_<name>_seed<seed>`` (resumable), and one JSON line per candidate is
appended to ``--out`` (default bench/results/embed_probe_r7.jsonl): val accuracy per visual
type (every val video's question of each type), the stage-2 CPU-seconds, steps, the load
average, and the mean answer loss of the last 20 steps. The test split is never read.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def answer_head_val(work: Path, run: str) -> dict[str, dict[str, float]]:
    """What the question-conditioned answer head of `run` reads on every open visual question
    of the val videos (accuracy per type, and the number asked): the selection the Q-Former
    makes, apart from the LLM's reading of it."""
    import torch

    from vidchat.apps.instruct import OPEN_INSTRUCTION, read_jsonl
    from vidchat.embed_model.encoder import video_features
    from vidchat.embed_model.model import Example
    from vidchat.embed_model.scenes import answer_target
    from vidchat.embed_model.train import load_checkpoint

    model, enc, _ = load_checkpoint(work / run)
    model.eval()
    right: dict[str, int] = {}
    asked: dict[str, int] = {}
    with torch.no_grad():
        for r in [r for r in read_jsonl(work / "data.jsonl") if r.split == "val"]:
            f = video_features(r.video, enc, model.config.n_frames).unsqueeze(0)
            for qa in r.QA:
                want = answer_target(qa.type, qa.a)
                if qa.is_mc or want < 0:
                    continue
                ex = [Example(f[0], OPEN_INSTRUCTION, qa.q)]
                g_out, q_out = model.bridge(f, model.bridge_texts(ex))
                got = int(model.aux_logits(g_out, q_out)[-1][0].argmax())
                asked[qa.type] = asked.get(qa.type, 0) + 1
                right[qa.type] = right.get(qa.type, 0) + int(got == want)
    return {t: {"n": asked[t], "accuracy": round(right[t] / asked[t], 3)} for t in sorted(asked)}


def token_losses_val(work: Path, run: str, per_type: int = 20) -> dict[str, Any]:
    """The LLM's loss (nats) on the right answer of the first `per_type` open visual val
    questions of each type, apart for the answer's first token (the word the video decides),
    its later words ("red circle" after "the") and its end-of-answer token."""
    import torch

    from vidchat.apps.evaluate import mc_items
    from vidchat.apps.instruct import OPEN_INSTRUCTION
    from vidchat.embed_model.infer import load_embed_chat
    from vidchat.embed_model.scenes import VISUAL_TYPES

    chat = load_embed_chat(work / run)
    taken: dict[str, int] = {}
    parts: dict[str, list[float]] = {"first": [], "later": [], "eos": []}
    with torch.no_grad():
        for it in mc_items(work / "data.jsonl", "val"):
            qa = it.qa
            if qa.type not in VISUAL_TYPES or taken.get(qa.type, 0) >= per_type:
                continue
            taken[qa.type] = taken.get(qa.type, 0) + 1
            assert qa.choices is not None and qa.answer_index is not None
            ex = chat.example(it.video, OPEN_INSTRUCTION, qa.q.split("\nOptions:")[0])
            nll = chat.model.answer_token_losses(ex, qa.choices[qa.answer_index])
            parts["first"].append(nll[0])
            parts["eos"].append(nll[-1])
            parts["later"] += nll[1:-1]
    return {
        k: {"n": len(v), "mean_nats": round(sum(v) / max(len(v), 1), 3)} for k, v in parts.items()
    }


class _StopAfterStage0(Exception):
    """Raised by the training log at the first answer step (see `train_stage0`)."""


def train_stage0(work: Path, name: str, seed: int, attr_steps: int, blind: bool) -> dict:
    """The CPU preset's stage 0 alone (`attr_steps` steps, `seed`) into ``WORK/<name>``: the
    run is stopped at its first answer step, which is discarded (the checkpoint on disk is
    the one written at the end of stage 0). Returns its CPU-seconds and the load."""
    from vidchat.embed_model.config import EmbedConfig, TrainConfig
    from vidchat.embed_model.train import train

    def stop(step: int, loss: float) -> None:
        raise _StopAfterStage0

    c0, t0, load = time.process_time(), time.perf_counter(), _loadavg()
    tcfg = TrainConfig.cpu(seed=seed, attr_steps=attr_steps)
    with contextlib.suppress(_StopAfterStage0):
        train(work / "data.jsonl", work / name, EmbedConfig.cpu(blind=blind), tcfg, log=stop)
    return {
        "cpu_seconds_incl_loading": round(time.process_time() - c0, 1),
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "loadavg_before": load,
        "loadavg_after": _loadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--stage0", required=True, help="run folder in WORK holding a stage-0 model")
    p.add_argument("--name", required=True, help="candidate name (run folder, results line)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--embed", default="{}", help="EmbedConfig.cpu() overrides (JSON)")
    p.add_argument("--train", default="{}", help="TrainConfig.cpu() overrides (JSON)")
    p.add_argument("--blind", action="store_true", help="the candidate's trained blind twin")
    p.add_argument("--work", default=str(Path.home() / ".cache" / "vidchat" / "embed_bench3"))
    p.add_argument("--out", default=str(RESULTS / "embed_probe_r7.jsonl"))
    p.add_argument(
        "--head-only",
        action="store_true",
        help="no training: append what --stage0's answer head reads on the val videos",
    )
    p.add_argument(
        "--token-losses",
        action="store_true",
        help="no training: append --stage0's loss on the answer's first token, later words "
        "and end token (val)",
    )
    p.add_argument(
        "--stage0-steps",
        type=int,
        default=0,
        help="no answer steps: train the preset's stage 0 alone for this many steps into "
        "WORK/--stage0, then append what its answer head reads on the val videos",
    )
    args = p.parse_args(argv)
    work = Path(args.work)
    import torch

    torch.set_num_threads(1)  # every probe on one core: two run side by side on the 2 cores

    def emit(line: dict[str, Any]) -> int:
        print(json.dumps(line))
        with Path(args.out).open("a") as f:  # one line per probe: a later one never erases
            f.write(json.dumps(line) + "\n")
        return 0

    if args.stage0_steps:
        line = {"name": args.name, "run": args.stage0, "seed": args.seed, "blind": args.blind}
        line["attr_steps"] = args.stage0_steps
        line.update(train_stage0(work, args.stage0, args.seed, args.stage0_steps, args.blind))
        if not args.blind:
            line["answer_head_val"] = answer_head_val(work, args.stage0)
        return emit(line)
    if args.token_losses:
        line = {"name": args.name, "run": args.stage0}
        line["answer_token_losses_val"] = token_losses_val(work, args.stage0)
        return emit(line)
    if args.head_only:
        c0 = time.process_time()
        head = {
            "name": args.name,
            "run": args.stage0,
            "answer_head_val": answer_head_val(work, args.stage0),
        }
        head["cpu_seconds"] = round(time.process_time() - c0, 1)
        return emit(head)

    from vidchat.apps.evaluate import evaluate_embed, mc_items
    from vidchat.embed_model.config import EmbedConfig, TrainConfig
    from vidchat.embed_model.scenes import VISUAL_TYPES
    from vidchat.embed_model.train import train

    embed: dict[str, Any] = json.loads(args.embed)
    given: dict[str, Any] = json.loads(args.train)
    cfg = EmbedConfig.cpu(blind=args.blind, **embed)
    tcfg = TrainConfig.cpu(**{"seed": args.seed, **given, "attr_steps": 0})
    run = work / f"run_r7_{args.name}_seed{args.seed}"
    load_before, t0 = _loadavg(), time.perf_counter()
    result = train(
        work / "data.jsonl",
        run,
        cfg,
        tcfg,
        init_from=work / args.stage0,
        log=lambda s, loss: print(f"step {s}: {loss:.3f}", flush=True) if s % 50 == 0 else None,
    )
    load_after, wall = _loadavg(), time.perf_counter() - t0
    val = [it for it in mc_items(work / "data.jsonl", "val") if it.qa.type in VISUAL_TYPES]
    c0 = time.process_time()
    rep = evaluate_embed(val, run)
    line = {
        "name": args.name,
        "seed": args.seed,
        "blind": args.blind,
        "stage0": args.stage0,
        "embed_overrides": embed,
        "train_overrides": given,
        "val": {
            t: {"n": v.n, "accuracy": round(v.accuracy, 3), "ci95": [round(x, 3) for x in v.ci95]}
            for t, v in rep.per_type.items()
        },
        "stage12_steps": result.steps - result.resumed_from,
        "stage12_cpu_seconds": round(result.cpu_seconds, 1),
        "stage12_wall_seconds": round(wall, 1),
        "eval_cpu_seconds": round(time.process_time() - c0, 1),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "answer_loss_last20": round(sum(result.losses[-20:]) / len(result.losses[-20:]), 3),
        "trainable_params": result.trainable_params,
    }
    if cfg.aux_answer and not args.blind:
        line["answer_head_val"] = answer_head_val(work, run.name)
    return emit(line)


if __name__ == "__main__":
    raise SystemExit(main())
