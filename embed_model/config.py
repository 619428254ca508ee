"""Configuration of the embed model and of its training, as dataclasses saved in checkpoints.

Three presets:

- `EmbedConfig.tiny()` trains in a unit test (a few spatial tokens per frame, thin layers);
- `EmbedConfig.cpu()` trains on 2 CPU cores within 15 minutes (`TrainConfig.cpu()`: 600
  attribute steps, then 20 alignment and 680 instruction steps; CPU-seconds measured in
  bench/results/embed.json): every spatial token (7x7, the 112 px scenes read at 224 px) of 8
  frames with each token's change since the previous frame, the first decoder layer of the
  shipped SmolLM2-135M as the frozen LLM with rank-8 LoRA adapters on it, the instruction
  read by the Q-Former, the video tokens right before the answer, the auxiliary attribute loss
  and the question's answer on the video tokens (deviations: `embed_model.model`);
- `EmbedConfig.full()` is the configuration for a GPU, after VideoChat-Embed's proportions (32
  queries, a deeper and wider Q-Former, 8 frames at 224 px, the whole frozen LLM)::

    EmbedConfig.full(encoder="hf:/models/eva-vit-g", llm="/models/vicuna-7b")  # on a GPU
    TrainConfig(steps=20_000, batch_size=8, grad_accum=4, lr=1e-4, device="cuda")
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from vidchat.kernel.errors import ConfigError

__all__ = [
    "AUX_FROM",
    "MOTION_FEATURES",
    "VIDEO_AT",
    "EmbedConfig",
    "TrainConfig",
    "config_from_dict",
]

VIDEO_AT = ("prompt", "answer")
AUX_FROM = ("queries", "gmhra")
MOTION_FEATURES = ("", "diff", "centred", "both")
"""What GMHRA adds to each token besides its frame's features (`EmbedConfig.motion`): ``diff``
the change of the same position's features since the previous frame (zero at the first
frame), ``centred`` the token minus the clip's mean at that position, ``both``."""


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
    llm_layers: int = 0
    """keep only the first `llm_layers` decoder layers of the frozen LLM (0: all of them)."""
    llm_lora_rank: int = 0
    """rank of LoRA adapters on the attention and MLP projections of every kept decoder layer
    of the frozen LLM (0: none, the LLM stays as shipped; `vidchat.embed_model.lora`). The
    LLM's own weights stay frozen either way. Not in VideoChat-Embed (see `embed_model.model`)."""
    llm_lora_alpha: float = 16.0
    """LoRA's scale numerator: the update is multiplied by ``llm_lora_alpha / llm_lora_rank``."""
    width: int = 256
    heads: int = 4
    gmhra_layers: int = 1
    gmhra_queries: int = 1
    motion: str = ""
    """motion signals GMHRA adds to every token (`vidchat.embed_model.gmhra.MOTION_FEATURES`:
    ``diff``, consecutive frames' differences at the token's position; ``centred``, the token
    minus its position's clip mean; ``both``; empty: none, as in UniFormerV2)."""
    """learnable global queries of GMHRA (UniFormerV2 uses one)."""
    qformer_layers: int = 2
    qformer_cross_every: int = 2
    """cross-attention to the video tokens in every n-th Q-Former layer (BLIP-2: 2)."""
    qformer_text: bool = False
    """the instruction and question join the queries' self-attention (InstructBLIP); off in
    VideoChat-Embed, where the queries never see the question."""
    n_queries: int = 32
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    max_text_tokens: int = 192
    """longest instruction + question, in LLM tokens (longer ones keep their end)."""
    max_answer_tokens: int = 96
    video_at: str = "prompt"
    """where the video tokens enter the LLM's sequence: ``prompt`` (VideoChat-Embed: the user
    turn starts with them, the question follows) or ``answer`` (after the question, as the last
    tokens before the answer; for a truncated LLM, see the deviations in `embed_model.model`)."""

    feature_norm: bool = False
    """standardise every encoder channel with its mean and spread over the training videos
    (statistics saved with the weights), so the channels' shared component (background: a
    shape covers a few percent of a token's area) does not drown what differs between videos.
    Tried on the scenes, it did not make the bridge read the video (bench/results/embed_r4.json,
    ``pilots``); off in the presets."""
    blind: bool = False
    """the trained blind baseline: every video is replaced by blank frames, in training and in
    answering, so the model learns the same questions with nothing to see (what it reaches is
    what the questions and answer priors alone give this architecture and data)."""

    aux_weight: float = 0.0
    """weight of the auxiliary attribute loss (0: off, no head is built): a linear head reads
    the video tokens and predicts the scene's object attributes from the generator's truth
    (`vidchat.embed_model.scenes.ATTRIBUTE_HEADS`), so the tokens must carry what the video
    shows whatever the question; videos without a truth record get no auxiliary loss. Not in
    VideoChat-Embed (see the deviations in `embed_model.model`)."""
    aux_answer: bool = False
    """the auxiliary head also predicts the answer to the example's own question, among
    `vidchat.embed_model.scenes.ANSWER_CLASSES` (visual questions of generated scenes only):
    the Q-Former, which reads the question, must put what it asks about into the video tokens
    (the slot it names: "What shape is the red object?"), not only every object's attributes.
    Needs `aux_weight` > 0. Not in VideoChat-Embed (see `embed_model.model`)."""
    aux_from: str = "queries"
    """what the auxiliary head reads: ``queries`` (the Q-Former's output tokens, before the
    projection into the LLM: the video tokens themselves) or ``gmhra`` (GMHRA's global queries
    and its mean token, before the Q-Former)."""

    def __post_init__(self) -> None:
        if self.motion not in MOTION_FEATURES:
            raise ConfigError(f"motion must be one of {MOTION_FEATURES}, got {self.motion!r}")
        if self.aux_from not in AUX_FROM:
            raise ConfigError(f"aux_from must be one of {AUX_FROM}, got {self.aux_from!r}")
        if self.aux_answer and not self.aux_weight:
            raise ConfigError("aux_answer needs aux_weight > 0 (it is a head of that loss)")
        if self.aux_weight < 0:
            raise ConfigError(f"aux_weight must be >= 0, got {self.aux_weight}")
        if self.video_at not in VIDEO_AT:
            raise ConfigError(f"video_at must be one of {VIDEO_AT}, got {self.video_at!r}")
        if self.width % self.heads:
            raise ConfigError(f"width {self.width} must be divisible by heads {self.heads}")
        for name in (
            "image_size",
            "n_frames",
            "width",
            "heads",
            "n_queries",
            "qformer_layers",
            "qformer_cross_every",
            "gmhra_queries",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.llm_lora_rank < 0 or self.llm_lora_alpha <= 0:
            raise ConfigError(
                f"llm_lora_rank must be >= 0 and llm_lora_alpha > 0, got {self.llm_lora_rank} "
                f"and {self.llm_lora_alpha}"
            )
        if self.gmhra_layers < 0 or self.spatial_tokens < 0 or self.llm_layers < 0:
            raise ConfigError("gmhra_layers, spatial_tokens and llm_layers must be >= 0")

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
    def cpu(cls, **overrides: Any) -> EmbedConfig:
        """Trains for real in about 15 minutes on 2 CPU cores (with `TrainConfig.cpu()`)."""
        base = dict(
            image_size=224,  # the 112 px scenes upscaled: 7x7 tokens a frame, not 3x3
            n_frames=8,
            spatial_tokens=0,
            llm="llm:smollm2-135m",
            llm_layers=1,
            width=128,
            heads=4,
            gmhra_layers=2,
            gmhra_queries=1,
            qformer_layers=4,
            qformer_cross_every=2,
            qformer_text=True,
            n_queries=8,
            mlp_ratio=2.0,
            max_text_tokens=64,
            max_answer_tokens=48,
            video_at="answer",
            aux_weight=1.0,
            motion="diff",
            aux_answer=True,
            llm_lora_rank=8,  # round 7: the one kept layer learns to say and end the answer
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
    """train on multiple-choice items only."""
    open_only: bool = False
    """train on open-ended items only (the embed path scores options as open answers)."""
    align_steps: int = 0
    """stage 1: the first `align_steps` steps train on descriptions only (video-text
    alignment); the rest (stage 2) on the questions (instruction tuning)."""
    align_lr: float | None = None
    """stage 1's peak learning rate (None: `lr`)."""
    attr_steps: int = 0
    """stage 0, before the `steps` above: `attr_steps` steps of the auxiliary attribute loss
    alone (needs `EmbedConfig.aux_weight` > 0). The frozen LLM is not run, so a step costs
    the bridge only (a few percent of an instruction step): the video tokens learn to carry
    every object's attributes before any answer is asked of them."""
    attr_batch_size: int = 64
    answer_head_in_answers: bool = True
    """keep the question-conditioned answer head's loss (`EmbedConfig.aux_answer`) on during
    stages 1-2; False: it trains in stage 0 only, and the LLM's answer loss alone shapes the
    last video token afterwards (the attribute heads stay on)."""
    attr_lr: float | None = None
    """stage 0's peak learning rate (None: `lr`)."""

    def __post_init__(self) -> None:
        if self.attr_steps < 0:
            raise ConfigError(f"attr_steps must be >= 0, got {self.attr_steps}")
        for name in ("steps", "batch_size", "grad_accum", "checkpoint_every", "attr_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.align_steps < self.steps:
            raise ConfigError(
                f"align_steps must be in 0..steps-1 ({self.steps - 1}), got {self.align_steps}"
            )
        if self.mc_only and self.open_only:
            raise ConfigError("mc_only and open_only exclude each other")

    @classmethod
    def cpu(cls, **overrides: Any) -> TrainConfig:
        """The CPU preset's schedule: stage 0, 600 steps of the attribute and answer heads
        alone (batch 32, no LLM; round 5 ran 200 on 3x3 tokens), then 20 alignment steps and
        680 instruction steps (the CPU-seconds are in bench/results/embed.json, ``train``).
        Round 4 ran 2,000 answer steps without the attribute loss (693 CPU-seconds,
        bench/results/embed_r4.json) and stayed at chance on new videos; with the attribute
        loss the video tokens carry the scene after stage 0. Round 6 ran 300 answer steps:
        without LoRA on the LLM layer more did not help. Round 7 (LoRA, `EmbedConfig.cpu()`):
        700 answer steps against 300, val on 2 seeds (bench/results/embed_probe_r7.jsonl),
        direction 0.577 vs 0.438, count 0.895 vs 0.835, size 0.860 vs 0.825, the others within
        0.04; stage 0 costs ~370 CPU-seconds and an answer step ~0.5, so this fits the 15
        minutes. (An alignment step costs several instruction steps: its answers are
        ~40-token descriptions, and the LLM's 49k-word output layer runs on every answer
        token.)"""
        base = dict(
            steps=700,
            attr_steps=600,
            attr_batch_size=32,
            align_steps=20,
            batch_size=16,
            lr=2e-3,
            align_lr=2e-3,
            warmup_steps=10,
            weight_decay=0.01,
            checkpoint_every=10,
            open_only=True,
        )
        return cls(**{**base, **overrides})

    @classmethod
    def full(cls, **overrides: Any) -> TrainConfig:
        """The GPU preset's schedule: 1,000 alignment steps, then 4,000 instruction steps,
        batch 32. Measured on an H200 with `EmbedConfig.full()` on SmolLM2-135M: 4.11 steps/s
        and 6.8 GiB, so about 20 minutes for the schedule (bench/results/embed_gpu.json: its
        speed only, the schedule was not run to the end)."""
        base = dict(
            steps=5000,
            align_steps=1000,
            batch_size=32,
            lr=1e-4,
            align_lr=1e-4,
            warmup_steps=200,
            checkpoint_every=250,
            open_only=True,
        )
        return cls(**{**base, **overrides})

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
