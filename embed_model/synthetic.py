"""Synthetic videos whose record is known exactly: coloured squares that enter, move across a
dark background and leave. Each comes with its ground-truth `VideoContext` (ids, times, boxes),
so instruction data made from it is correct by construction, and a model trained on it can be
checked without any perception model in the loop. Used by the tests and the benchmark, with
`build_tiny_llm` (a random-weight LLM that loads like a real one)."""

from __future__ import annotations

import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

from vidchat.kernel.errors import InputError
from vidchat.kernel.record import ObjectTrack, Provenance, TrackPoint, VideoContext

__all__ = ["Square", "build_tiny_llm", "make_squares_video", "random_scene"]

_COLORS = {"red": "0xE02020", "green": "0x20C020", "blue": "0x3040F0", "yellow": "0xF0E020"}


@dataclass(frozen=True)
class Square:
    """A square of `size` px moving in a straight line from (x0, y0) to (x1, y1) between
    `start` and `end` seconds (top-left corner, pixels)."""

    color: str
    start: float
    end: float
    x0: float
    y0: float
    x1: float
    y1: float
    size: int = 24

    def at(self, t: float) -> tuple[float, float]:
        f = (t - self.start) / max(self.end - self.start, 1e-6)
        return self.x0 + f * (self.x1 - self.x0), self.y0 + f * (self.y1 - self.y0)


def make_squares_video(
    dest: str | Path,
    squares: list[Square],
    seconds: float = 4.0,
    size: tuple[int, int] = (160, 120),
    fps: int = 10,
) -> tuple[Path, VideoContext]:
    """Write the video with ffmpeg and return it with its exact record."""
    from vidchat.kernel.video import probe

    path = Path(dest)
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    args = ["ffmpeg", "-nostdin", "-y", "-loglevel", "error"]
    args += ["-f", "lavfi", "-i", f"color=c=0x101010:s={w}x{h}:r={fps}:d={seconds}"]
    chain, last = [], "0:v"
    for k, s in enumerate(squares, 1):
        if s.color not in _COLORS:
            raise InputError(f"square colour {s.color!r}: expected one of {', '.join(_COLORS)}")
        args += ["-f", "lavfi", "-i", f"color=c={_COLORS[s.color]}:s={s.size}x{s.size}:r={fps}"]
        span = max(s.end - s.start, 1e-6)
        x = f"{s.x0}+(t-{s.start})/{span}*({s.x1 - s.x0})"
        y = f"{s.y0}+(t-{s.start})/{span}*({s.y1 - s.y0})"
        out = f"v{k}"
        chain.append(
            f"[{last}][{k}:v]overlay=x='{x}':y='{y}':shortest=1:"
            f"enable='between(t,{s.start},{s.end})'[{out}]"
        )
        last = out
    args += ["-filter_complex", ";".join(chain) or "null", "-map", f"[{last}]"] if chain else []
    args += ["-t", str(seconds), "-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast"]
    args.append(str(path))
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise InputError(f"ffmpeg could not write {path}: {proc.stderr.strip()[-300:]}")
    objects = []
    for k, s in enumerate(sorted(squares, key=lambda q: q.start), 1):
        points = []
        t = s.start
        while t <= s.end + 1e-9:
            left, top = s.at(t)
            box = (left, top, left + s.size, top + s.size)
            points.append(TrackPoint(t=round(t, 3), box=box, score=1.0))
            t += 0.5
        objects.append(
            ObjectTrack(
                id=f"square#{k}",
                label="square",
                first_seen=s.start,
                last_seen=s.end,
                source="synthetic",
                confidence=1.0,
                trajectory=points,
                attributes={"color": s.color},
            )
        )
    ctx = VideoContext(
        video=probe(path),
        profile="synthetic",
        objects=objects,
        provenance=[Provenance(name="synthetic", version="1", status="ok", items=len(objects))],
    )
    return path, ctx.sort()


def random_scene(
    dest: str | Path, seed: int, seconds: float = 4.0, size: tuple[int, int] = (160, 120)
) -> tuple[Path, VideoContext]:
    """1-3 squares with random colours, times and straight paths (reproducible by `seed`)."""
    rng = random.Random(seed)
    w, h = size
    squares = []
    for _ in range(rng.randint(1, 3)):
        a = round(rng.uniform(0, seconds * 0.5), 1)
        b = round(rng.uniform(a + 1.0, seconds - 0.1), 1)
        squares.append(
            Square(
                color=rng.choice(sorted(_COLORS)),
                start=a,
                end=b,
                x0=rng.uniform(0, w - 24),
                y0=rng.uniform(0, h - 24),
                x1=rng.uniform(0, w - 24),
                y1=rng.uniform(0, h - 24),
            )
        )
    return make_squares_video(dest, squares, seconds, size)


def build_tiny_llm(dest: str | Path) -> Path:
    """A 2-layer Llama with random weights and the shipped SmolLM2 tokenizer (and its chat
    template), saved as a transformers folder at `dest`: a frozen LLM for tests and the
    benchmark that loads through the same path as a real one."""
    from vidchat.kernel.llm_config import LLMConfig
    from vidchat.llm.local import import_transformers, transformers_folder

    transformers = import_transformers()
    import torch

    source = transformers_folder(LLMConfig(model="llm:smollm2-135m"))
    tok = transformers.AutoTokenizer.from_pretrained(source, local_files_only=True)
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    # Embeddings large enough that hidden states can make peaked logits (the default 0.02 keeps
    # every logit near zero, so no prefix could lower the loss much).
    config.initializer_range = 0.5
    model = transformers.LlamaForCausalLM(config)
    model.save_pretrained(dest)
    tok.save_pretrained(dest)
    return Path(dest)
