"""Training in VideoChat-Embed's two stages, on GMHRA + Q-Former + projection (AdamW, gradient
accumulation, warmup then cosine decay in each stage), checkpoints that carry both configs, and
resume from the last checkpoint:

0. **attribute alignment** (optional, `TrainConfig.attr_steps`, not in VideoChat-Embed): the
   auxiliary attribute loss alone (`EmbedConfig.aux_weight`), without running the LLM, so the
   video tokens carry each object's colour, shape, size and motion before any question is
   asked of them (generated scenes only: the targets come from their truth records);
1. **alignment** (the first `TrainConfig.align_steps` steps): video -> its description (items of
   type ``description``: written from the record), so the video tokens come to say what the
   record says;
2. **instruction tuning** (the remaining steps): video + question -> answer.

A checkpoint (``checkpoint.pt``) holds the model config, the training config, the trainable
weights (never the frozen LLM or encoder: those are named by the config), the optimizer and
scheduler state, the step, the loss history and the RNG state, so a resumed run continues the
same curve.
"""

from __future__ import annotations

import io
import math
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vidchat.embed_model.config import EmbedConfig, TrainConfig, config_from_dict
from vidchat.embed_model.data import InstructionDataset
from vidchat.embed_model.encoder import FrozenEncoder
from vidchat.embed_model.model import VideoChatEmbed, load_llm
from vidchat.kernel.errors import InputError
from vidchat.kernel.record import atomic_write_bytes

__all__ = ["CHECKPOINT", "TrainResult", "build_model", "load_checkpoint", "train"]

CHECKPOINT = "checkpoint.pt"


@dataclass
class TrainResult:
    """What a training run did."""

    checkpoint: Path
    steps: int
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    steps_per_s: float = 0.0
    resumed_from: int = 0
    trainable_params: int = 0
    align_steps: int = 0
    aux_losses: list[float] = field(default_factory=list)
    """the auxiliary attribute loss per step (`EmbedConfig.aux_weight`; NaN where a step had
    none); `losses` is the main (answer-token) loss alone."""
    attr_losses: list[float] = field(default_factory=list)
    """stage 0's attribute loss per step (`TrainConfig.attr_steps`)."""
    attr_steps: int = 0
    cpu_seconds: float = 0.0
    """CPU time of this process over the steps (all threads): on a busy shared machine the
    wall time says more about the neighbours than about the model."""


def build_model(config: EmbedConfig, device: str = "cpu") -> tuple[VideoChatEmbed, FrozenEncoder]:
    """The model with fresh trainable parts, its frozen LLM and encoder loaded."""
    encoder = FrozenEncoder(config.encoder, config.image_size, config.spatial_tokens).load()
    llm, tok = load_llm(config.llm, config.llm_layers)
    model = VideoChatEmbed(
        config, encoder.out_dim, llm.to(device), tok, encoder_tokens=encoder.out_tokens
    ).to(device)
    return model, encoder


def _lr_lambda(cfg: TrainConfig):
    """Warmup then cosine to a tenth, within each stage (alignment peaks at `align_lr`)."""
    align_scale = (cfg.align_lr or cfg.lr) / cfg.lr

    def f(step: int) -> float:
        if step < cfg.align_steps:
            begin, length, scale = 0, cfg.align_steps, align_scale
        else:
            begin, length, scale = cfg.align_steps, cfg.steps - cfg.align_steps, 1.0
        k = step - begin
        warm = min(cfg.warmup_steps, max(length // 4, 1))
        if k < warm:
            return scale * (k + 1) / warm
        progress = (k - warm) / max(length - warm, 1)
        return scale * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))

    return f


def _save(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())  # a killed run never leaves half a checkpoint


def load_checkpoint(
    path: str | Path, device: str = "cpu"
) -> tuple[VideoChatEmbed, FrozenEncoder, dict[str, Any]]:
    """Model (trainable weights restored), encoder and the raw checkpoint dict."""
    p = Path(path)
    if p.is_dir():
        p = p / CHECKPOINT
    if not p.is_file():
        raise InputError(f"no embed-model checkpoint at {p} (expected a file from train())")
    try:
        state = torch.load(p, map_location="cpu", weights_only=False)
        config = config_from_dict(EmbedConfig, state["config"])
    except (KeyError, EOFError, RuntimeError, TypeError) as e:
        raise InputError(f"{p}: not an embed-model checkpoint ({type(e).__name__}: {e})") from None
    model, encoder = build_model(config, device)
    model.load_state_dict(state["model"])
    return model, encoder, state


def _init_weights(model: VideoChatEmbed, source: Path) -> None:
    """Copy `source`'s trainable weights into `model` (`train`'s `init_from`): a weight
    `model` does not have, or of another shape, is an error; weights `source` lacks keep
    their fresh values."""
    p = source / CHECKPOINT if source.is_dir() else source
    if not p.is_file():
        raise InputError(f"init_from: no embed-model checkpoint at {p}")
    try:
        weights = torch.load(p, map_location="cpu", weights_only=False).get("model")
    except (AttributeError, EOFError, RuntimeError, TypeError, pickle.UnpicklingError) as e:
        raise InputError(f"init_from: {p}: not an embed-model checkpoint ({e})") from None
    if not isinstance(weights, dict):
        raise InputError(f"init_from: {p} holds no trainable weights ('model')")
    own = model.state_dict()
    bad = sorted(k for k, v in weights.items() if k not in own or own[k].shape != v.shape)
    if bad:
        raise InputError(
            f"init_from: {p} has weights this model does not, or of another shape: "
            f"{', '.join(bad[:5])}{' …' if len(bad) > 5 else ''} (expected the same EmbedConfig "
            f"up to added parts such as llm_lora_rank)"
        )
    model.load_state_dict(weights, strict=False)


def _attribute_stage(
    model: VideoChatEmbed,
    dataset: InstructionDataset,
    tcfg: TrainConfig,
    state: dict[str, Any] | None,
    done: int,
    losses: list[float],
    checkpoint: Callable[..., None],
) -> int:
    """Stage 0: `TrainConfig.attr_steps` steps of the auxiliary attribute loss alone, on the
    training items whose video has a truth record (each item's question reaches the Q-Former
    as in stage 2, so the tokens learn to carry every attribute whatever is asked). Its own
    AdamW, warmup and cosine; checkpointed (``attr_step``) and resumable. Returns the steps
    done."""
    if not model.aux_sizes:
        raise InputError("TrainConfig.attr_steps needs EmbedConfig.aux_weight > 0")
    keep = [k for k in range(len(dataset)) if dataset.example(k).targets is not None]
    if not keep:
        raise InputError(
            "TrainConfig.attr_steps: no training video has a truth record (.truth.json beside "
            "it, written by vidchat.embed_model.scenes) to take attribute targets from"
        )
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=tcfg.attr_lr or tcfg.lr, weight_decay=tcfg.weight_decay)
    warm = min(tcfg.warmup_steps, max(tcfg.attr_steps // 4, 1))

    def lr_at(k: int) -> float:
        if k < warm:
            return (k + 1) / warm
        progress = min((k - warm) / max(tcfg.attr_steps - warm, 1), 1.0)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    gen = torch.Generator().manual_seed(tcfg.seed + 1)
    if state is not None and "attr_optimizer" in state:
        opt.load_state_dict(state["attr_optimizer"])
        sched.load_state_dict(state["attr_scheduler"])
        gen.set_state(state["attr_generator"])
    k = done
    for k in range(done + 1, tcfg.attr_steps + 1):
        pick = torch.randint(len(keep), (tcfg.attr_batch_size,), generator=gen).tolist()
        loss = model.attribute_loss([dataset.example(keep[j]) for j in pick])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, tcfg.grad_clip)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if k % tcfg.checkpoint_every == 0 or k == tcfg.attr_steps:
            extra = {
                "attr_step": k,
                "attr_optimizer": opt.state_dict(),
                "attr_scheduler": sched.state_dict(),
                "attr_generator": gen.get_state(),
            }
            checkpoint(0, extra)
    return k


def train(
    data: str | Path,
    out_dir: str | Path,
    config: EmbedConfig | None = None,
    train_config: TrainConfig | None = None,
    resume: bool = True,
    log: Any = None,
    init_from: str | Path | None = None,
) -> TrainResult:
    """Train on the instruction JSONL `data`; checkpoints go to ``out_dir/checkpoint.pt``.

    With `resume` and a checkpoint in `out_dir`, training continues from it (its model config
    wins; `train_config.steps` may extend the run). `log` is called as ``log(step, loss)``.
    `init_from` (a checkpoint, or a run folder holding one) starts a new run from another
    run's trainable weights, e.g. its stage 0 reused with ``attr_steps=0``: every weight it
    has is copied, parts it lacks (LoRA adapters added since) keep their fresh start, and the
    optimizer starts fresh; ignored when `out_dir` already has a checkpoint to resume.
    """
    from vidchat.apps.instruct import read_jsonl

    out = Path(out_dir)
    ckpt_path = out / CHECKPOINT
    tcfg = train_config or TrainConfig()
    records = read_jsonl(data)  # a bad file fails here, before any model loads
    state: dict[str, Any] | None = None
    if resume and ckpt_path.exists():
        model, encoder, state = load_checkpoint(ckpt_path, tcfg.device)
        config = model.config
    else:
        config = config or EmbedConfig()
        torch.manual_seed(tcfg.seed)
        model, encoder = build_model(config, tcfg.device)
        if init_from is not None:
            _init_weights(model, Path(init_from))
    align = None
    if tcfg.align_steps:
        align = InstructionDataset(
            records, config, encoder, split=tcfg.split, types={"description"}
        )
    dataset = InstructionDataset(
        records,
        config,
        encoder,
        split=tcfg.split,
        mc_only=tcfg.mc_only,
        open_only=tcfg.open_only,
        exclude_types={"description"} if tcfg.align_steps else None,
    )

    if config.feature_norm and state is None:  # a fresh model: statistics of its data
        model.set_feature_stats(list(dataset.features.values()))

    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": tcfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=tcfg.lr,
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(tcfg))
    gen = torch.Generator().manual_seed(tcfg.seed)
    start, losses, aux_losses = 0, [], []
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        start, losses = int(state["step"]), list(state["losses"])
        aux_losses = list(state.get("aux_losses", [math.nan] * start))
        # A longer run than first planned: the schedule follows the new length.
        sched.lr_lambdas[0] = _lr_lambda(tcfg)

    def checkpoint(step: int, extra: dict[str, Any] | None = None) -> None:
        _save(
            ckpt_path,
            {
                "config": config.to_dict(),
                "train": tcfg.to_dict(),
                "model": model.trainable_state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "generator": gen.get_state(),
                "step": step,
                "losses": losses,
                "aux_losses": aux_losses,
                "attr_step": attr_done,
                "attr_losses": attr_losses,
                "encoder_dim": model.encoder_dim,
                "encoder_tokens": model.encoder_tokens,
                **(extra or {}),
            },
        )

    model.train()
    model.llm.eval()  # frozen: no dropout in the LLM
    t0, c0 = time.perf_counter(), time.process_time()
    # Stage 0 (attribute alignment), before any answer step.
    attr_done = int(state.get("attr_step", 0)) if state is not None else 0
    attr_losses: list[float] = list(state.get("attr_losses", [])) if state is not None else []
    if tcfg.attr_steps and start == 0 and attr_done < tcfg.attr_steps:
        attr_done = _attribute_stage(
            model, dataset, tcfg, state, attr_done, attr_losses, checkpoint
        )

    batches = dataset.batches(tcfg.batch_size, gen)
    align_batches = align.batches(tcfg.batch_size, gen) if align is not None else None
    step = start
    for step in range(start + 1, tcfg.steps + 1):
        opt.zero_grad(set_to_none=True)
        total, aux_total = 0.0, math.nan
        stream = align_batches if align_batches and step <= tcfg.align_steps else batches
        for _ in range(tcfg.grad_accum):
            main, aux = model.losses(next(stream), answer_head=tcfg.answer_head_in_answers)
            loss = main if aux is None else main + config.aux_weight * aux
            (loss / tcfg.grad_accum).backward()
            total += float(main.detach()) / tcfg.grad_accum
            if aux is not None:
                aux_total = (0.0 if math.isnan(aux_total) else aux_total) + float(
                    aux.detach()
                ) / tcfg.grad_accum
        torch.nn.utils.clip_grad_norm_(params, tcfg.grad_clip)
        opt.step()
        sched.step()
        losses.append(total)
        aux_losses.append(aux_total)
        if log is not None:
            log(step, total)
        if step % tcfg.checkpoint_every == 0:
            checkpoint(step)
    seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - c0
    done = max(step - start, 0)
    checkpoint(max(step, start))
    model.eval()
    return TrainResult(
        checkpoint=ckpt_path,
        steps=max(step, start),
        losses=losses,
        aux_losses=aux_losses,
        attr_losses=attr_losses,
        attr_steps=attr_done,
        seconds=seconds,
        steps_per_s=done / seconds if seconds > 0 else 0.0,
        resumed_from=start,
        trainable_params=sum(p.numel() for p in params),
        align_steps=tcfg.align_steps,
        cpu_seconds=cpu_seconds,
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m vidchat.embed_model.train DATA.jsonl OUT_DIR [--preset tiny|full] …``."""
    import argparse
    import sys

    from vidchat.kernel.errors import VidchatError

    p = argparse.ArgumentParser(
        prog="python -m vidchat.embed_model.train", description=train.__doc__
    )
    p.add_argument("data", help="instruction JSONL from vidchat instruct")
    p.add_argument("out_dir", help="folder for checkpoint.pt (resumed from when present)")
    p.add_argument(
        "--preset",
        choices=["tiny", "cpu", "full", "default"],
        default="tiny",
        help="model size; cpu and full also set their two-stage schedules (TrainConfig.cpu(), "
        "TrainConfig.full())",
    )
    p.add_argument("--encoder", default=None, help="encoder spec (see EmbedConfig.encoder)")
    p.add_argument("--llm", default=None, help="frozen LLM: shipped name, GGUF or folder")
    p.add_argument("--steps", type=int, default=None, help=f"default {TrainConfig.steps}")
    p.add_argument(
        "--align-steps", type=int, default=None, help="stage-1 steps on descriptions (default 0)"
    )
    p.add_argument("--batch-size", type=int, default=None, help=f"default {TrainConfig.batch_size}")
    p.add_argument("--grad-accum", type=int, default=None)
    p.add_argument("--lr", type=float, default=None, help=f"default {TrainConfig.lr}")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 …")
    p.add_argument("--mc-only", action="store_true", help="multiple-choice items only")
    p.add_argument("--open-only", action="store_true", help="open-ended items only")
    p.add_argument(
        "--no-resume", action="store_true", help="start over even if a checkpoint exists"
    )
    p.add_argument(
        "--blind",
        action="store_true",
        help="train the blind baseline: blank frames instead of every video (EmbedConfig.blind)",
    )
    p.add_argument(
        "--attr-steps",
        type=int,
        default=None,
        help="stage-0 steps of the attribute loss alone, before the others (needs --aux-weight)",
    )
    p.add_argument(
        "--aux-weight",
        type=float,
        default=None,
        help="weight of the auxiliary attribute loss on the video tokens (EmbedConfig.aux_weight;"
        " needs generated scenes' truth records)",
    )
    p.add_argument(
        "--llm-lora-rank",
        type=int,
        default=None,
        help="LoRA adapters of this rank on the kept LLM layers (EmbedConfig.llm_lora_rank)",
    )
    args = p.parse_args(argv)
    overrides: dict[str, Any] = {
        k: v for k, v in (("encoder", args.encoder), ("llm", args.llm)) if v
    }
    if args.aux_weight is not None:
        overrides["aux_weight"] = args.aux_weight
    if args.blind:
        overrides["blind"] = True
    if args.llm_lora_rank is not None:
        overrides["llm_lora_rank"] = args.llm_lora_rank
    make: dict[str, Callable[..., EmbedConfig]] = {
        "tiny": EmbedConfig.tiny,
        "cpu": EmbedConfig.cpu,
        "full": EmbedConfig.full,
        "default": EmbedConfig,
    }
    given = {
        k: v
        for k, v in (
            ("steps", args.steps),
            ("align_steps", args.align_steps),
            ("batch_size", args.batch_size),
            ("grad_accum", args.grad_accum),
            ("lr", args.lr),
            ("attr_steps", args.attr_steps),
        )
        if v is not None
    }
    given["device"] = args.device
    if args.mc_only:
        given["mc_only"] = True
    if args.open_only:
        given["open_only"] = True
    try:
        config = make[args.preset](**overrides)
        schedule = {"cpu": TrainConfig.cpu, "full": TrainConfig.full}.get(args.preset, TrainConfig)
        tcfg = schedule(**given)
        started = time.perf_counter()
        result = train(
            args.data,
            args.out_dir,
            config,
            tcfg,
            resume=not args.no_resume,
            log=lambda s, loss: print(
                f"step {s}: loss {loss:.4f} ({time.perf_counter() - started:.0f} s)", flush=True
            ),
        )
    except VidchatError as e:
        print(f"vidchat.embed_model.train: error: {e}", file=sys.stderr)
        return e.exit_code
    print(
        f"{result.checkpoint}: step {result.steps} ({result.steps_per_s:.2f} steps/s, "
        f"{result.cpu_seconds:.0f} CPU-s over {result.steps - result.resumed_from} steps, "
        f"{result.trainable_params} trainable parameters)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
