"""Embed-model benchmark: training steps per second, and the comparison table (text path vs
embed path vs chance) on held-out videos, from videos that ship (real and synthetic).

    python -m bench.embed_bench [--steps 60] [--questions 24] [--llm smollm2|tiny] [--no-text]

(run from the repository root). What it does, all on this machine:

1. Records: the shipped videos (vtest, megamind, bigbuckbunny, bikes) textualized with the
   offline profile (through the cache), plus `--synthetic` moving-square videos with exact
   records (`embed_model.synthetic`).
2. Grounded instruction data (`orchestrator.instruct`, no LLM-written part: the shipped 135M
   model writes too little usable text to be worth the minutes), split by video.
3. Trains `EmbedConfig.tiny()` on the train split, with the frozen LLM `--llm`: ``smollm2``
   (the shipped SmolLM2-135M-Instruct, the same model the text path uses) or ``tiny`` (a random
   2-layer Llama: measures the bridge alone). Reports steps/s and the loss curve.
4. Scores both paths and chance on the same `--questions` multiple-choice questions of the test
   split (spread over question types) and prints the table.

Writes bench/results/embed.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
SHIPPED = ["vtest", "megamind", "bigbuckbunny", "bikes"]


def _records(n_synthetic: int, work: Path, log) -> list:
    from embed_model.synthetic import random_scene
    from orchestrator import textualize
    from orchestrator.errors import VidchatError
    from orchestrator.samples import sample_path

    out = []
    for name in SHIPPED:
        try:
            t0 = time.perf_counter()
            ctx = textualize(sample_path(name), profile="offline", progress=False)
            log(f"record {name}: {len(ctx.objects)} objects, {time.perf_counter() - t0:.1f} s")
            out.append(ctx)
        except VidchatError as e:
            log(f"record {name}: skipped ({e})")
    for k in range(n_synthetic):
        out.append(random_scene(work / f"synthetic{k}.mp4", seed=100 + k)[1])
    return out


def _pick(items: list, n: int) -> list:
    """Up to `n` items, round-robin over question types (so every type is represented)."""
    by_type: dict[str, list] = {}
    for it in items:
        by_type.setdefault(it.qa.type, []).append(it)
    out: list = []
    while len(out) < n and any(by_type.values()):
        for t in sorted(by_type):
            if by_type[t] and len(out) < n:
                out.append(by_type[t].pop(0))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--questions", type=int, default=24, help="test questions scored per path")
    p.add_argument("--synthetic", type=int, default=6, help="synthetic videos added")
    p.add_argument("--llm", choices=["smollm2", "tiny"], default="smollm2")
    p.add_argument("--no-text", action="store_true", help="skip the text path (slowest part)")
    p.add_argument("--out", default=str(RESULTS / "embed.json"))
    p.add_argument("--keep", action="store_true", help="keep the work folder (data, checkpoint)")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="embed_bench-"))
    try:
        return _run(args, work)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _run(args: argparse.Namespace, work: Path) -> int:

    import torch

    from embed_model.config import EmbedConfig, TrainConfig
    from embed_model.train import train
    from orchestrator.evaluate import (
        chance_report,
        comparison_table,
        evaluate_embed,
        evaluate_text,
        mc_items,
    )
    from orchestrator.instruct import build_dataset, write_jsonl
    from orchestrator.llm_config import LLMConfig

    def log(msg: str) -> None:
        print(msg, flush=True)

    records = _records(args.synthetic, work, log)
    contexts = {r.video.sha256: r for r in records}
    data = build_dataset(records)
    write_jsonl(data, work / "data.jsonl")
    for d in data:
        log(f"{d.split:5s} {Path(d.video).name}: {len(d.QA)} QA")

    if args.llm == "tiny":
        from embed_model.synthetic import build_tiny_llm

        llm = str(build_tiny_llm(work / "tiny_llm"))
    else:
        llm = "llm:smollm2-135m"
    cfg = EmbedConfig.tiny(llm=llm)
    tcfg = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=3e-3,
        warmup_steps=max(args.steps // 10, 1),
        checkpoint_every=max(args.steps, 1),
        mc_only=True,
    )
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    t0 = time.perf_counter()
    result = train(
        work / "data.jsonl",
        work / "run",
        cfg,
        tcfg,
        resume=False,
        log=lambda s, loss: log(f"step {s}: loss {loss:.3f}") if s % 10 == 0 else None,
    )
    total_s = time.perf_counter() - t0
    log(f"trained {result.steps} steps: {result.steps_per_s:.2f} steps/s ({total_s:.0f} s total)")

    items = _pick(mc_items(work / "data.jsonl", "test"), args.questions)
    reports = []
    if not args.no_text:
        reports.append(
            evaluate_text(items, llm=LLMConfig(max_tokens=24, temperature=0.0), contexts=contexts)
        )
    reports.append(evaluate_embed(items, work / "run"))
    reports.append(chance_report(items))
    table = comparison_table(reports)
    print(table)

    first = sum(result.losses[:5]) / max(len(result.losses[:5]), 1)
    last = sum(result.losses[-5:]) / max(len(result.losses[-5:]), 1)
    out = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
        "videos": {d.split: [] for d in data},
        "train": {
            "config": cfg.to_dict(),
            "train_config": tcfg.to_dict(),
            "steps": result.steps,
            "steps_per_s": result.steps_per_s,
            "seconds_incl_features": total_s,
            "trainable_params": result.trainable_params,
            "loss_first5": first,
            "loss_last5": last,
        },
        "table": table,
        "reports": [r.model_dump(exclude={"items"}) for r in reports],
    }
    for d in data:
        out["videos"][d.split].append(Path(d.video).name)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
