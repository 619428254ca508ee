"""Q-Former: a fixed number of learned queries that read the video's tokens (after BLIP-2).

As in BLIP-2, every layer has self-attention and an MLP, and cross-attention to the video tokens
comes in every other layer (``cross_every=2``; BLIP-2's ``cross_attention_freq``). Pre-LayerNorm
residual blocks. Whatever the number of frames, the LLM receives exactly `n_queries` tokens.

Optionally (InstructBLIP), text tokens — the instruction and question — join the queries in
self-attention, so the queries can pick what the question asks about; the text tokens have
their own MLP and never cross-attend to the video. Only the query outputs leave the Q-Former.

``[B, L, D]`` video tokens (+ ``[B, S, D]`` text, with a padding mask) -> ``[B, Q, D]``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["QFormer", "QFormerLayer"]


def _mlp(width: int, mlp_ratio: float, dropout: float) -> nn.Sequential:
    hidden = int(width * mlp_ratio)
    return nn.Sequential(
        nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, width)
    )


class QFormerLayer(nn.Module):
    def __init__(
        self,
        width: int,
        heads: int,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        cross: bool = True,
        text: bool = False,
    ):
        super().__init__()
        self.ln_self = nn.LayerNorm(width)
        self.self_attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.cross = cross
        if cross:
            self.ln_q = nn.LayerNorm(width)
            self.ln_kv = nn.LayerNorm(width)
            self.cross_attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.ln_mlp = nn.LayerNorm(width)
        self.mlp = _mlp(width, mlp_ratio, dropout)
        if text:
            self.ln_text = nn.LayerNorm(width)
            self.mlp_text = _mlp(width, mlp_ratio, dropout)

    def forward(
        self,
        q: torch.Tensor,
        kv: torch.Tensor,
        text: torch.Tensor | None = None,
        text_pad: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        nq = q.shape[1]
        if text is not None:
            x = torch.cat([q, text], dim=1)  # queries and text share self-attention
            pad = None
            if text_pad is not None:
                keep_q = torch.zeros(q.shape[0], nq, dtype=torch.bool, device=q.device)
                pad = torch.cat([keep_q, text_pad], dim=1)
            h = self.ln_self(x)
            x = x + self.self_attn(h, h, h, key_padding_mask=pad, need_weights=False)[0]
            q, text = x[:, :nq], x[:, nq:]
            text = text + self.mlp_text(self.ln_text(text))
        else:
            h = self.ln_self(q)
            q = q + self.self_attn(h, h, h, need_weights=False)[0]
        if self.cross:
            k = self.ln_kv(kv)
            q = q + self.cross_attn(self.ln_q(q), k, k, need_weights=False)[0]
        q = q + self.mlp(self.ln_mlp(q))
        return q, text


class QFormer(nn.Module):
    """`n_queries` learned queries, `layers` deep, `width` wide, cross-attention to the video
    in layers 0, `cross_every`, 2*`cross_every`, …; `text` lets the question join in."""

    def __init__(
        self,
        n_queries: int,
        width: int,
        heads: int,
        layers: int,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        cross_every: int = 2,
        text: bool = False,
    ):
        super().__init__()
        self.queries = nn.Parameter(torch.randn(n_queries, width) * 0.02)
        self.layers = nn.ModuleList(
            QFormerLayer(width, heads, mlp_ratio, dropout, cross=k % cross_every == 0, text=text)
            for k in range(layers)
        )
        self.ln = nn.LayerNorm(width)

    def forward(
        self,
        tokens: torch.Tensor,
        text: torch.Tensor | None = None,
        text_pad: torch.Tensor | None = None,
    ) -> torch.Tensor:
        q = self.queries.unsqueeze(0).expand(tokens.shape[0], -1, -1)  # [B, Q, D]
        for layer in self.layers:
            q, text = layer(q, tokens, text, text_pad)
        return self.ln(q)
