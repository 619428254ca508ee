"""The embed path on a lent GPU machine: steps/s and memory of the CPU and full presets there,
and what the CPU preset's bridge reaches when it trains longer than 15 CPU-minutes allow.

The machine this workplace lends has no network and no ffmpeg, and a call carries at most 64 MiB,
so the run is split in two halves (run from the repository root):

    python -m bench.embed_gpu pack [--work DIR] [--dest .gpu]        # here: the payload
    bash bench/embed_gpu_device.sh [BUDGET_S]                        # there (after the parts)

``pack`` takes `bench.embed_bench`'s scenes and instruction data (``WORK``), decodes each
video's 8 sampled frames here exactly as `embed_model.encoder.video_features` would, and packs
them with the videos (hashed there for the feature cache's keys), the truth records (attribute
targets), SmolLM2-135M's GGUF and tokenizer files, EfficientNet-Lite0's weights and the wheels
the machine lacks, split into parts that fit a call each (``DEST/p0``, ``p1``, …). Parts before
the last are parked on the machine (``/tmp/vidchat-gpu-stash``) by calls that only copy them; the
last call carries the last part and runs ``embed_gpu_device.sh``, which checks every part's hash,
unpacks, and runs ``python -m bench.embed_gpu run``:

1. the LLM folder: the GGUF dequantized with the `gguf` package (the same values
   `vidchat.llm.local` gets through transformers: `gguf_to_state_dict` is checked against it by
   ``pack``), the tokenizer files carried as they are;
2. the encoder's features of every video, on the GPU, from the carried frames;
3. runs in order of priority, each under the time left (``--budget-s``): the full preset's
   throughput and memory (`EmbedConfig.full` on the whole 30-layer SmolLM2-135M,
   `TrainConfig.full` shortened), the CPU preset on its own schedule with its trained blind twin,
   then the CPU preset on a schedule several times longer with its blind twin; each trained
   model answers the test split's questions (the same 480 as bench/results/embed.json);
4. writes the results (``--out``) after every step, so a run stopped at its limit keeps what it
   measured.

Any other GPU machine (with ffmpeg) needs none of this: ``python -m bench.embed_bench --device
cuda`` and ``python -m vidchat.embed_model.train DATA OUT --preset full --device cuda`` run there
as they are.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import os
import platform
import shutil
import tarfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
STASH = Path("/tmp/vidchat-gpu-stash")
PART_BYTES = 55 * 2**20
"""A part per call: the call's limit is 64 MiB with the repository (about 5 MiB) included."""
LLM_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
)
"""What the carried LLM folder takes from the converted folder here besides the weights."""
WHEELS = (
    "pydantic==2.13.4",
    "pydantic_core==2.46.4",
    "annotated-types==0.7.0",
    "typing-inspection==0.4.2",
    "efficientnet-lite-pytorch==0.1.0",
    "gguf==0.19.0",
)
"""What the GPU machine's image lacks of what the embed path imports (versions of the lock)."""


def _sha256(path: Path) -> str:
    # Not vidchat.kernel.models.sha256_of: `assemble` runs on the GPU machine before the wheels
    # vidchat needs are installed, so this module's top level and `assemble` use the stdlib only.
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 << 20):
            h.update(chunk)
    return h.hexdigest()


# -- the LLM from its GGUF ---------------------------------------------------------------------

_LAYER_PARTS = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}


def gguf_to_state_dict(gguf_file: Path, heads: int, kv_heads: int) -> dict[str, Any]:
    """A llama-family GGUF's tensors, dequantized to fp32, under transformers' names.

    llama.cpp's converter interleaves the rows of the query and key projections per head (its
    rotary layout); they are put back in transformers' order here."""
    import gguf
    import numpy as np
    import torch

    def unpermute(w: Any, n: int) -> Any:
        return w.reshape(n, w.shape[0] // n // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)

    out: dict[str, Any] = {}
    for t in gguf.GGUFReader(str(gguf_file)).tensors:
        w = np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)
        w = w.reshape([int(x) for x in reversed(t.shape.tolist())])
        if t.name == "token_embd.weight":
            name = "model.embed_tokens.weight"
        elif t.name == "output_norm.weight":
            name = "model.norm.weight"
        elif t.name == "output.weight":
            name = "lm_head.weight"
        else:
            _, layer, part, _ = t.name.split(".")
            name = f"model.layers.{layer}.{_LAYER_PARTS[part]}.weight"
            if part in ("attn_q", "attn_k"):
                w = unpermute(w, heads if part == "attn_q" else kv_heads)
        out[name] = torch.from_numpy(np.array(w))
    return out


def llm_folder(gguf_file: Path, files: Path, dest: Path) -> Path:
    """A transformers folder at `dest`: `files` (config, tokenizer) plus the GGUF's weights."""
    from safetensors.torch import save_file

    config = json.loads((files / "config.json").read_text())
    state = gguf_to_state_dict(
        gguf_file, config["num_attention_heads"], config["num_key_value_heads"]
    )
    dest.mkdir(parents=True, exist_ok=True)
    for name in LLM_FILES:
        if (files / name).is_file():
            shutil.copy(files / name, dest / name)
    save_file(state, str(dest / "model.safetensors"), metadata={"format": "pt"})
    return dest


# -- pack (here) -------------------------------------------------------------------------------


def split_parts(blob: Path, dest: Path, part_bytes: int) -> dict:
    """Cut `blob` into ``dest/p0/part-0``, ``dest/p1/part-1``, … of at most `part_bytes` each (a
    folder per call to carry), each folder with the manifest: every part's size and sha256, and
    the whole blob's."""
    parts = []
    with open(blob, "rb") as f:
        while chunk := f.read(part_bytes):
            k = len(parts)
            (dest / f"p{k}").mkdir(parents=True)
            (dest / f"p{k}" / f"part-{k}").write_bytes(chunk)
            parts.append(
                {
                    "name": f"part-{k}",
                    "bytes": len(chunk),
                    "sha256": hashlib.sha256(chunk).hexdigest(),
                }
            )
    manifest = {"parts": parts, "sha256": _sha256(blob), "bytes": blob.stat().st_size}
    for k in range(len(parts)):
        (dest / f"p{k}" / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def pack(work: Path, dest: Path, wheels: Path, part_bytes: int = PART_BYTES) -> dict:
    """Build the payload in `dest` (``p0``, ``p1``, … each with one part and the manifest)."""
    import numpy as np
    import torch

    from vidchat.apps.instruct import read_jsonl
    from vidchat.embed_model.config import EmbedConfig
    from vidchat.embed_model.encoder import frame_side, sample_frames
    from vidchat.kernel.models import resolve
    from vidchat.llm.local import resolve_local_model, transformers_folder

    cfg = EmbedConfig.cpu()
    records = read_jsonl(work / "data.jsonl")
    scenes = {Path(r.video).parent for r in records}
    if len(scenes) != 1:
        raise SystemExit(f"expected every video in one folder, got {sorted(map(str, scenes))}")
    scene_dir = scenes.pop()
    stage = dest / "stage"
    shutil.rmtree(dest, ignore_errors=True)
    (stage / "scenes").mkdir(parents=True)
    (stage / "llm").mkdir()
    (stage / "scene_dir.txt").write_text(str(scene_dir))
    # The small files (instruction data, truth records: text) compressed together.
    with tarfile.open(stage / "small.tar.xz", "w:xz") as tar:
        tar.add(work / "data.jsonl", arcname="data.jsonl")
        for r in records:
            truth = Path(r.video).with_suffix(".truth.json")
            if truth.is_file():
                tar.add(truth, arcname=f"scenes/{truth.name}")
    for r in records:  # hashed there: the feature cache is keyed by each video's bytes
        shutil.copy(r.video, stage / "scenes" / Path(r.video).name)

    # The frames, decoded here as video_features decodes them (the GPU machine has no ffmpeg);
    # kept in WORK, so packing again decodes nothing.
    names = [Path(r.video).name for r in records]
    frames_xz, frames_json = work / "gpu_frames.xz", work / "gpu_frames.json"
    if not (frames_json.is_file() and json.loads(frames_json.read_text())["names"] == names):
        frames = []
        side = frame_side(cfg.image_size)
        for k, r in enumerate(records, 1):
            frames.append(sample_frames(Path(r.video), cfg.n_frames, max_side=side))
            if k % 250 == 0:
                print(f"frames: {k}/{len(records)}", flush=True)
        shapes = {f.shape for f in frames}
        if len(shapes) != 1:
            raise SystemExit(f"expected one frame shape, got {sorted(shapes)}")
        frames_xz.write_bytes(lzma.compress(np.stack(frames).tobytes(), preset=6))
        frames_json.write_text(json.dumps({"shape": list(frames[0].shape), "names": names}))
    shutil.copy(frames_xz, stage / "frames.xz")
    shutil.copy(frames_json, stage / "frames.json")

    # The LLM: the GGUF and the tokenizer files; checked here against the transformers path.
    gguf_file = resolve_local_model("llm:smollm2-135m").require()
    folder = transformers_folder("llm:smollm2-135m")
    config = json.loads((folder / "config.json").read_text())
    ours = gguf_to_state_dict(
        gguf_file, config["num_attention_heads"], config["num_key_value_heads"]
    )
    from safetensors.torch import load_file

    ref = load_file(str(folder / "model.safetensors"))
    differ = [k for k in ref if k not in ours or not torch.equal(ref[k], ours[k])]
    if differ or set(ours) - set(ref):
        raise SystemExit(
            f"gguf_to_state_dict differs from transformers' conversion on {differ[:5]}"
        )
    shutil.copy(gguf_file, stage / "llm" / "model.gguf")
    for name in LLM_FILES:
        if (folder / name).is_file():
            shutil.copy(folder / name, stage / "llm" / name)
    shutil.copy(resolve("tags:efficientnet-lite0").require(), stage / "efficientnet-lite0.pth")
    (stage / "wheels").mkdir()
    for w in wheels.glob("*.whl"):
        shutil.copy(w, stage / "wheels" / w.name)

    blob = dest / "payload.tar"
    with tarfile.open(blob, "w") as tar:
        tar.add(stage, arcname="vg")
    shutil.rmtree(stage)
    manifest = split_parts(blob, dest, part_bytes)
    blob.unlink()
    print(json.dumps(manifest, indent=1))
    return manifest


# -- assemble (there) --------------------------------------------------------------------------


def assemble(stash: Path, dest: Path) -> int:
    """Check every part in `stash` against the manifest and unpack the payload into `dest`;
    exit status 3 (and which parts are missing) while some part has not arrived yet."""
    manifest = json.loads((stash / "manifest.json").read_text())
    missing = [p["name"] for p in manifest["parts"] if not (stash / p["name"]).is_file()]
    if missing:
        print(
            f"payload: waiting for {', '.join(missing)} (have: "
            f"{', '.join(sorted(f.name for f in stash.glob('part-*')))})"
        )
        return 3
    blob = stash / "payload.tar"
    with open(blob, "wb") as out:
        for p in manifest["parts"]:
            data = (stash / p["name"]).read_bytes()
            if hashlib.sha256(data).hexdigest() != p["sha256"]:
                print(f"payload: {p['name']} is damaged (sha256 differs from the manifest)")
                return 4
            out.write(data)
    if _sha256(blob) != manifest["sha256"]:
        print("payload: the assembled payload's sha256 differs from the manifest")
        return 4
    shutil.rmtree(dest / "vg", ignore_errors=True)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(blob) as tar:
        tar.extractall(dest, filter="data")
    blob.unlink()
    print(f"payload: {manifest['bytes'] / 2**20:.1f} MiB unpacked into {dest / 'vg'}")
    return 0


# -- run (there) -------------------------------------------------------------------------------


def _gpu_info(device: str) -> dict:
    import torch

    if not device.startswith("cuda"):
        return {"gpu": None, "torch": torch.__version__, "cpus": os.cpu_count()}
    p = torch.cuda.get_device_properties(0)
    return {
        "gpu": p.name,
        "gpu_memory_gib": round(p.total_memory / 2**30, 1),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


def _report_dict(rep: Any) -> dict:
    return {
        "model": rep.model,
        "overall": round(rep.overall.accuracy, 4),
        "per_type": {
            t: {"n": s.n, "accuracy": round(s.accuracy, 4), "ci95": [round(x, 3) for x in s.ci95]}
            for t, s in rep.per_type.items()
        },
    }


def _train(root: Path, name: str, cfg: Any, tcfg: Any, log: Any) -> dict:
    """Train one run from scratch on the GPU: steps/s, seconds and peak memory."""
    import torch

    from vidchat.embed_model.train import train

    run = root / "runs" / name
    shutil.rmtree(run, ignore_errors=True)
    gpu = tcfg.device.startswith("cuda")
    if gpu:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    res = train(
        root / "data.jsonl",
        run,
        cfg,
        tcfg,
        resume=False,
        log=lambda s, loss: log(f"{name} step {s}: loss {loss:.3f}") if s % 200 == 0 else None,
    )
    if gpu:
        torch.cuda.synchronize()
    return {
        "run": str(run),
        "config": cfg.to_dict(),
        "train_config": tcfg.to_dict(),
        "steps": res.steps,
        "attr_steps": res.attr_steps,
        "trainable_params": res.trainable_params,
        "seconds_all_stages": round(res.seconds, 1),
        "steps_per_s_incl_stage0": round(res.steps_per_s, 2),
        "wall_seconds_incl_loading": round(time.perf_counter() - t0, 1),
        "peak_gpu_memory_mib": round(torch.cuda.max_memory_allocated() / 2**20) if gpu else None,
        "peak_gpu_reserved_mib": round(torch.cuda.max_memory_reserved() / 2**20) if gpu else None,
        "final_loss": round(sum(res.losses[-20:]) / max(len(res.losses[-20:]), 1), 4),
    }


def _stage_speed(root: Path, name: str, cfg: Any, tcfg: Any, log: Any) -> dict:
    """Steps/s of the instruction stage alone (no stage 0), over ``tcfg.steps`` steps."""
    from dataclasses import replace

    info = _train(root, name, cfg, replace(tcfg, attr_steps=0), log)
    info["instruction_steps_per_s"] = round(
        info["steps"] / max(info["seconds_all_stages"], 1e-9), 2
    )
    return info


def run(
    root: Path,
    out: Path,
    budget_s: float,
    long_factor: int,
    device: str = "cuda",
    smoke: bool = False,
    factor: float = 0.0,
    types: set[str] | None = None,
) -> int:
    """Everything on the GPU machine, in order of priority, inside `budget_s` seconds.
    `smoke` cuts every schedule to a few steps (to try the whole script on a CPU). A `factor`
    skips the full preset and the calibration: one run of the CPU preset's model on its
    schedule x `factor`, and nothing else (a second visit to the machine). `types`: the
    question types answered (None: all)."""
    from dataclasses import replace

    import numpy as np
    import torch

    from bench.results_io import write_results
    from vidchat.apps.evaluate import evaluate_embed, mc_items
    from vidchat.embed_model.config import EmbedConfig, TrainConfig
    from vidchat.embed_model.encoder import FrozenEncoder, video_features

    start = time.perf_counter()
    results: dict[str, Any] = {"steps": []}
    gpu = device.startswith("cuda")

    def left() -> float:
        return budget_s - (time.perf_counter() - start)

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - start:6.1f} s] {msg}", flush=True)

    def step(name: str, info: dict) -> None:
        results["steps"].append({"step": name, "at_s": round(time.perf_counter() - start, 1)})
        results[name] = info
        write_results(out, results)  # after every step: a run stopped at its limit keeps them
        log(f"{name}: {json.dumps(info)[:400]}")

    def sync() -> None:
        if gpu:
            torch.cuda.synchronize()

    if gpu:
        torch.backends.cuda.matmul.allow_tf32 = True  # Hopper's fp32 matrix path
        torch.backends.cudnn.allow_tf32 = True
    results["machine"] = {**_gpu_info(device), "tf32": gpu, "budget_s": budget_s}
    write_results(out, results)

    # 1. data: the videos' paths here, the LLM folder, the features from the carried frames.
    with tarfile.open(root / "small.tar.xz") as tar:
        tar.extractall(root, filter="data")
    old = (root / "scene_dir.txt").read_text().strip()
    text = (root / "data.jsonl").read_text().replace(old + "/", str(root / "scenes") + "/")
    (root / "data.jsonl").write_text(text)
    t = time.perf_counter()
    folder = llm_folder(root / "llm" / "model.gguf", root / "llm", root / "llm-hf")
    llm_s = time.perf_counter() - t
    meta = json.loads((root / "frames.json").read_text())
    # bytearray: a writable buffer (torch warns on read-only numpy memory)
    frames = np.frombuffer(bytearray(lzma.decompress((root / "frames.xz").read_bytes())), np.uint8)
    frames = frames.reshape(len(meta["names"]), *meta["shape"])
    spec = f"efficientnet-lite0:{root / 'efficientnet-lite0.pth'}"
    base = EmbedConfig.cpu(encoder=spec, llm=str(folder))
    blind = replace(base, blind=True)
    enc = FrozenEncoder(spec, base.image_size, base.spatial_tokens, device=device).load()
    t = time.perf_counter()
    for name, f in zip(meta["names"], frames, strict=True):
        video_features(root / "scenes" / name, enc, base.n_frames, frames=f)
    sync()
    took = time.perf_counter() - t
    step(
        "setup",
        {
            "llm_folder_seconds": round(llm_s, 1),
            "videos": len(meta["names"]),
            "feature_seconds": round(took, 1),
            "frames_per_s": round(len(meta["names"]) * base.n_frames / took, 1),
        },
    )
    test = [it for it in mc_items(root / "data.jsonl", "test") if not types or it.qa.type in types]

    def evaluate(name: str) -> dict:
        t = time.perf_counter()
        rep = evaluate_embed(test, root / "runs" / name, device)
        return {**_report_dict(rep), "eval_seconds": round(time.perf_counter() - t, 1)}

    cpu_sched = TrainConfig.cpu(device=device)
    if smoke:
        cpu_sched = replace(cpu_sched, steps=4, attr_steps=4, align_steps=1, warmup_steps=1)

    def scaled(f: float) -> Any:
        return replace(
            cpu_sched,
            steps=round(cpu_sched.steps * f),
            attr_steps=round(cpu_sched.attr_steps * f),
            align_steps=round(cpu_sched.align_steps * f),
            warmup_steps=round(cpu_sched.warmup_steps * f),
            checkpoint_every=round(cpu_sched.checkpoint_every * f),
        )

    if factor:
        name = f"cpu_x{factor:g}"
        info = _train(root, name, base, scaled(factor), log)
        info["schedule_factor"] = factor
        info["test"] = evaluate(name)
        step(f"{name}_preset", info)
        return 0

    # 2. The full preset: throughput and memory on the whole LLM (a short schedule).
    full = EmbedConfig.full(encoder=spec, llm=str(folder))
    n = 3 if smoke else 60
    sched = TrainConfig.full(
        device=device, steps=n, align_steps=n // 3, warmup_steps=n // 6, checkpoint_every=1000
    )
    info = _stage_speed(root, "full_speed", full, sched, log)
    info["projected_minutes_for_full_schedule"] = round(
        TrainConfig.full().steps / max(info["instruction_steps_per_s"], 1e-9) / 60, 1
    )
    step("full_preset_speed", info)

    # 3. The CPU preset's speed per stage (a short calibration): the longest schedule that
    # fits comes first (the model trained well past 15 CPU-minutes, and its blind twin), then
    # the CPU schedule itself (the committed CPU run, repeated on the GPU) if time is left.
    n = 3 if smoke else 40
    cal_i = _train(
        root,
        "cal_instr",
        base,
        replace(cpu_sched, steps=n, attr_steps=0, align_steps=0, warmup_steps=1),
        log,
    )
    cal_a = _train(
        root,
        "cal_attr",
        base,
        replace(cpu_sched, steps=1, attr_steps=2 * n, align_steps=0, warmup_steps=1),
        log,
    )
    per_instr = cal_i["seconds_all_stages"] / n
    per_attr = cal_a["seconds_all_stages"] / (2 * n)  # one instruction step besides: noise
    per_question = 0.05  # a first guess, replaced by the measured one after the first run
    step(
        "cpu_preset_calibration",
        {
            "seconds_per_instruction_step": round(per_instr, 4),
            "seconds_per_stage0_step": round(per_attr, 4),
            "peak_gpu_memory_mib": max(
                cal_i["peak_gpu_memory_mib"] or 0, cal_a["peak_gpu_memory_mib"] or 0
            )
            or None,
            "cpu_schedule_seconds": round(
                cpu_sched.steps * per_instr + cpu_sched.attr_steps * per_attr, 1
            ),
        },
    )

    def cost(f: int) -> float:  # one run of the schedule x f, with loading and its answers
        return (
            f * (cpu_sched.steps * per_instr + cpu_sched.attr_steps * per_attr)
            + 10
            + (len(test) * per_question)
        )

    factor = long_factor
    while factor > 1 and 2 * cost(factor) > left() - 20:
        factor -= 1
    runs: list[tuple[str, Any, int]] = []
    if factor >= 2:
        runs += [(f"cpu_x{factor}", base, factor), (f"cpu_x{factor}_blind", blind, factor)]
    runs += [("cpu", base, 1), ("cpu_blind", blind, 1)]
    for name, cfg, f in runs:
        if cost(f) > left():
            step(f"{name}_skipped", {"why": f"{left():.0f} s left, about {cost(f):.0f} s needed"})
            continue
        info = _train(root, name, cfg, scaled(f), log)
        info["schedule_factor"] = f
        info["test"] = evaluate(name)
        per_question = info["test"]["eval_seconds"] / max(len(test), 1)
        step(f"{name}_preset", info)
    log(f"done, {left():.0f} s of the budget left")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pack", help="here: build the payload parts")
    a.add_argument("--work", default=str(Path.home() / ".cache" / "vidchat" / "embed_bench3"))
    a.add_argument("--dest", default=".gpu")
    a.add_argument("--wheels", default=".gpu-wheels", help="folder of the wheels in WHEELS")
    a.add_argument("--part-mib", type=int, default=PART_BYTES // 2**20)
    c = sub.add_parser("assemble", help="there: check the parts and unpack them")
    c.add_argument("--stash", default=str(STASH))
    c.add_argument("--dest", default="/tmp/vidchat-gpu")
    b = sub.add_parser("run", help="there: unpacked payload -> results")
    b.add_argument("--root", required=True, help="the unpacked payload (its vg/ folder)")
    b.add_argument("--out", default=str(RESULTS / "embed_gpu.json"))
    b.add_argument("--budget-s", type=float, default=420)
    b.add_argument("--long-factor", type=int, default=8)
    b.add_argument("--device", default="cuda")
    b.add_argument("--smoke", action="store_true", help="a few steps per schedule (a CPU try)")
    b.add_argument(
        "--factor", type=float, default=0.0, help="only the CPU preset's model, schedule x this"
    )
    b.add_argument("--types", default="", help="question types answered (comma list; all)")
    args = p.parse_args(argv)
    if args.cmd == "pack":
        pack(Path(args.work), Path(args.dest), Path(args.wheels), args.part_mib * 2**20)
        return 0
    if args.cmd == "assemble":
        return assemble(Path(args.stash), Path(args.dest))
    return run(
        Path(args.root),
        Path(args.out),
        args.budget_s,
        args.long_factor,
        args.device,
        args.smoke,
        args.factor,
        set(filter(None, args.types.split(","))) or None,
    )


if __name__ == "__main__":
    raise SystemExit(main())
