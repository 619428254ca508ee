"""Low-rank adapters (LoRA) on the frozen LLM's kept decoder layers (`EmbedConfig.llm_lora_rank`).

Each ``nn.Linear`` of the attention and MLP blocks of every kept decoder layer gets a trainable
``B @ A`` update of rank r beside its frozen weight: ``y = W x + (alpha / r) * B (A x)``. ``B``
starts at zero, so a fresh adapter leaves the LLM exactly as it was; the frozen weights never
change. The adapters' weights live in the bridge (`LLMAdapters`, a module of `VideoChatEmbed`),
so they are saved in checkpoints and handed to the optimizer with the bridge, while the LLM
itself stays outside the module tree (never saved, never trained).

Why (bench/README.md, round 7): with one kept layer the frozen LLM cannot end an answer or
continue "the red ..." (after round 6's training the end-of-answer token cost 7.6 nats and the
words after "the" 10.2 on val), and the loss on those tokens, which the video tokens can only
reach through the one attention layer, swamped the answer word's. VideoChat2's third stage
tunes the LLM with LoRA; VideoChat-Embed keeps it frozen (a deviation, listed in
`embed_model.model`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from vidchat.kernel.errors import ConfigError

__all__ = ["LLMAdapters", "LoRA", "LoRALinear"]


class LoRA(nn.Module):
    """The trainable rank-r update of one frozen linear layer."""

    def __init__(self, in_features: int, out_features: int, rank: int, alpha: float):
        super().__init__()
        self.a = nn.Parameter(torch.empty(rank, in_features))
        self.b = nn.Parameter(torch.zeros(out_features, rank))
        nn.init.kaiming_uniform_(self.a, a=math.sqrt(5))  # as nn.Linear initialises a weight
        self.scale = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.a.t() @ self.b.t()) * self.scale


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus the update of a `LoRA` owned elsewhere (by `LLMAdapters`):
    the adapter is held outside this module's tree, so the LLM that contains this wrapper still
    has no trainable parameter of its own."""

    def __init__(self, base: nn.Linear, adapter: LoRA):
        super().__init__()
        self.base = base
        self._adapter = [adapter]

    @property
    def adapter(self) -> LoRA:
        return self._adapter[0]

    def set_adapter(self, adapter: LoRA) -> None:
        """Point this wrapper at another adapter (a second bridge built on the same LLM)."""
        self._adapter[0] = adapter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.adapter(x)


class LLMAdapters(nn.Module):
    """LoRA adapters for every linear layer of the attention and MLP blocks of `llm`'s kept
    decoder layers, installed into `llm` on construction (``adapters.<layer>_<path>`` in the
    state dict, e.g. ``0_self_attn_q_proj``)."""

    def __init__(self, llm: Any, rank: int, alpha: float):
        super().__init__()
        if rank < 1:
            raise ConfigError(f"LoRA rank must be >= 1, got {rank}")
        layers = getattr(llm.get_decoder(), "layers", None)
        if layers is None:
            raise ConfigError(
                f"llm_lora_rank needs an LLM with decoder layers (model.layers); "
                f"{type(llm).__name__} has none"
            )
        self.adapters = nn.ModuleDict()
        for k, layer in enumerate(layers):
            for block in ("self_attn", "mlp"):
                parent = getattr(layer, block, None)
                if parent is None:
                    raise ConfigError(
                        f"llm_lora_rank: decoder layer {k} of {type(llm).__name__} has no "
                        f"{block} (expected a Llama-style layer: self_attn and mlp)"
                    )
                for child, module in list(parent.named_children()):
                    base = module.base if isinstance(module, LoRALinear) else module
                    if not isinstance(base, nn.Linear):
                        continue
                    adapter = LoRA(base.in_features, base.out_features, rank, alpha).to(
                        base.weight.device
                    )
                    self.adapters[f"{k}_{block}_{child}"] = adapter
                    if isinstance(module, LoRALinear):  # the LLM is shared: rewire, never stack
                        module.set_adapter(adapter)
                    else:
                        setattr(parent, child, LoRALinear(base, adapter))
        if not len(self.adapters):
            raise ConfigError("llm_lora_rank: no linear layer found in the LLM's decoder layers")
