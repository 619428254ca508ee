"""Stage-0 probe of issue 16 (round 6): train the embed bridge on the auxiliary loss alone
(the LLM is never run) and print what the attribute head, and the answer head when on, read
back on the val videos; shape given present and motion given moving are printed apart.

    OMP_NUM_THREADS=1 nice -n 10 python -m bench.embed_probe --steps 200 \\
        '{"motion": "diff", "aux_answer": true, "image_size": 224}'

The JSON argument overrides `EmbedConfig.cpu()`; the data are bench/embed_bench.py's scenes
(``--work``, default ``~/.cache/vidchat/embed_bench3``). The round-6 runs are in
bench/results/embed_stage0_probes_r6.json.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path
from typing import Any

IGNORE = -100


def _cosine(steps: int, warm: int = 10):
    def f(k: int) -> float:
        if k < warm:
            return (k + 1) / warm
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min((k - warm) / max(steps - warm, 1), 1)))

    return f


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("overrides", nargs="?", default="{}", help="EmbedConfig.cpu() overrides")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--train-videos", type=int, default=1600)
    p.add_argument("--work", default=str(Path.home() / ".cache" / "vidchat" / "embed_bench3"))
    args = p.parse_args(argv)

    import torch

    from vidchat.apps.instruct import OPEN_INSTRUCTION, read_jsonl
    from vidchat.embed_model.config import EmbedConfig
    from vidchat.embed_model.encoder import video_features
    from vidchat.embed_model.model import Example
    from vidchat.embed_model.scenes import ATTRIBUTE_HEADS, answer_target, scene_targets
    from vidchat.embed_model.train import build_model

    torch.set_num_threads(1)
    cfg = EmbedConfig.cpu(**json.loads(args.overrides))
    torch.manual_seed(0)
    model, enc = build_model(cfg)
    recs = read_jsonl(Path(args.work) / "data.jsonl")

    def load(split: str, n: int | None = None) -> list[tuple[Any, Any, list]]:
        out = []
        for r in [r for r in recs if r.split == split][:n]:
            t = scene_targets(r.video)
            qs = [qa for qa in r.QA if qa.type != "description" and not qa.is_mc]
            out.append((video_features(r.video, enc, cfg.n_frames), torch.tensor(t), qs))
        return out

    train, val = load("train", args.train_videos), load("val")
    params = [q for q in model.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _cosine(args.steps))
    rng = random.Random(1)
    c0 = time.process_time()
    model.train()
    for k in range(args.steps):
        exs = []
        for f, t, qs in (rng.choice(train) for _ in range(args.batch_size)):
            qa = rng.choice(qs)
            if cfg.aux_answer:
                t = torch.cat([t, torch.tensor([answer_target(qa.type, qa.a)])])
            exs.append(Example(f, OPEN_INSTRUCTION, qa.q, "", t))
        loss = model.attribute_loss(exs)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if k % 50 == 0:
            print(k, round(float(loss.detach()), 3), flush=True)
    load_avg = Path("/proc/loadavg").read_text().split()[:3]
    print("cpu_s", round(time.process_time() - c0, 1), "loadavg", load_avg)
    model.eval()

    def heads(data: list, shuffle: bool = False) -> dict[str, float]:
        right: dict[str, int] = {}
        asked: dict[str, int] = {}
        with torch.no_grad():
            for n, (f, t, _) in enumerate(data):
                if shuffle:  # never the original order
                    g = torch.Generator().manual_seed(n)
                    perm = torch.randperm(f.shape[0], generator=g)
                    while bool((perm == torch.arange(len(perm))).all()):
                        perm = torch.randperm(f.shape[0], generator=g)
                    f = f[perm]
                ex = [Example(f, OPEN_INSTRUCTION, "How many objects move?", "", t)]
                g_out, q_out = model.bridge(f.unsqueeze(0), model.bridge_texts(ex))
                logits = model.aux_logits(g_out, q_out)[: len(ATTRIBUTE_HEADS)]
                for k, ((head, _), lg) in enumerate(zip(ATTRIBUTE_HEADS, logits, strict=True)):
                    want = int(t[k])
                    if want == IGNORE:
                        continue
                    keys = [head.split(": ")[-1]]
                    if want and head.endswith(("shape", "motion")):
                        keys.append("shape|present" if head.endswith("shape") else "motion|moving")
                    for key in keys:
                        asked[key] = asked.get(key, 0) + 1
                        right[key] = right.get(key, 0) + int(int(lg[0].argmax()) == want)
        return {k: round(right[k] / asked[k], 3) for k in sorted(asked)}

    print("VAL", json.dumps(heads(val)))
    print("TRAIN", json.dumps(heads(train[:200])))
    print("VAL_SHUF", json.dumps(heads(val, shuffle=True)))
    if cfg.aux_answer:
        right: dict[str, int] = {}
        asked: dict[str, int] = {}
        with torch.no_grad():
            for f, t, qs in val:
                for qa in qs:
                    want = answer_target(qa.type, qa.a)
                    if want == IGNORE:
                        continue
                    ex = [Example(f, OPEN_INSTRUCTION, qa.q, "", t)]
                    g_out, q_out = model.bridge(f.unsqueeze(0), model.bridge_texts(ex))
                    got = int(model.aux_logits(g_out, q_out)[-1][0].argmax())
                    asked[qa.type] = asked.get(qa.type, 0) + 1
                    right[qa.type] = right.get(qa.type, 0) + int(got == want)
        print("ANSWER_HEAD", json.dumps({k: round(right[k] / asked[k], 3) for k in sorted(asked)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
