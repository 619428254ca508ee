"""Configuration of the embed model and of its training, as dataclasses saved in checkpoints.

Two presets: `EmbedConfig.tiny()` trains on a laptop CPU in a test (a few spatial tokens per
frame, one thin GMHRA layer, a one-layer Q-Former with 8 queries), and `EmbedConfig.full()` is
the configuration for a GPU, after VideoChat-Embed's proportions (32 queries, a deeper and wider
Q-Former, 8 frames at 224 px)::

    EmbedConfig.full(encoder="hf:/models/eva-vit-g", llm="/models/vicuna-7b")  # on a GPU
    TrainConfig(steps=20_000, batch_size=8, grad_accum=4, lr=1e-4, device="cuda")
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from orchestrator.errors import ConfigError

__all__ = ["EmbedConfig", "TrainConfig", "config_from_dict"]


@dataclass
class EmbedConfig:
    """The model: frozen encoder -> GMHRA -> Q-Former -> projection -> frozen LLM."""

    encoder: str = "tags:efficientnet-lite0"
    """``tags:efficientnet-lite0`` (shipped), ``efficientnet-lite0:PATH.pth``, ``timm:NAME``,
    ``timm:NAME:PATH`` or ``hf:PATH_OR_ID`` (a transformers image model)."""
    image_size: int = 224
    n_frames: int = 8
    spatial_tokens: int = 4
    """frame feature maps are pooled to spatial_tokens x spatial_tokens tokens (0: keep all)."""
    llm: str = "llm:smollm2-135m"
    """a shipped LLM name, a GGUF file or a transformers folder (kept frozen)."""
    width: int = 256
    heads: int = 4
    gmhra_layers: int = 1
    qformer_layers: int = 2
    n_queries: int = 32
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    max_text_tokens: int = 192
    """longest instruction + question, in LLM tokens (longer ones keep their end)."""
    max_answer_tokens: int = 96

    def __post_init__(self) -> None:
        if self.width % self.heads:
            raise ConfigError(f"width {self.width} must be divisible by heads {self.heads}")
        for name in ("image_size", "n_frames", "width", "heads", "n_queries", "qformer_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.gmhra_layers < 0 or self.spatial_tokens < 0:
            raise ConfigError("gmhra_layers and spatial_tokens must be >= 0")

    @classmethod
    def tiny(cls, **overrides: Any) -> EmbedConfig:
        """Trains on CPU in a minute or two (used by the tests and the benchmark)."""
        base = dict(
            image_size=96,
            n_frames=4,
            spatial_tokens=2,
            width=64,
            heads=4,
            gmhra_layers=1,
            qformer_layers=1,
            n_queries=8,
            mlp_ratio=2.0,
            max_text_tokens=96,
            max_answer_tokens=24,
        )
        return cls(**{**base, **overrides})

    @classmethod
    def full(cls, **overrides: Any) -> EmbedConfig:
        """The GPU configuration (VideoChat-Embed-like proportions)."""
        base = dict(
            image_size=224,
            n_frames=8,
            spatial_tokens=0,
            width=768,
            heads=12,
            gmhra_layers=2,
            qformer_layers=6,
            n_queries=32,
            mlp_ratio=4.0,
            dropout=0.1,
            max_text_tokens=256,
            max_answer_tokens=256,
        )
        return cls(**{**base, **overrides})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainConfig:
    """Instruction tuning: AdamW on the trainable parts, gradient accumulation, checkpoints."""

    steps: int = 1000
    """optimizer steps (each accumulates `grad_accum` batches)."""
    batch_size: int = 4
    grad_accum: int = 1
    lr: float = 1e-4
    weight_decay: float = 0.05
    warmup_steps: int = 50
    grad_clip: float = 1.0
    checkpoint_every: int = 200
    seed: int = 0
    device: str = "cpu"
    split: str = "train"
    mc_only: bool = False
    """train on multiple-choice items only (what the comparison harness scores)."""

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "grad_accum", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a config dataclass from a checkpoint, naming unknown keys instead of guessing."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"{cls.__name__} in checkpoint has unknown key(s) {', '.join(unknown)} "
            f"(expected some of: {', '.join(sorted(known))})"
        )
    return cls(**data)
