"""Q-Former: a fixed number of learned queries that read the video's frame tokens.

Each layer: the queries attend to each other (self-attention), then to the frame tokens
(cross-attention), then an MLP; pre-LayerNorm residual blocks. Whatever the number of frames,
the LLM receives exactly `n_queries` video tokens.

``[B, L, D]`` frame tokens -> ``[B, Q, D]`` query outputs.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["QFormer", "QFormerLayer"]


class QFormerLayer(nn.Module):
    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__()
        self.ln_self = nn.LayerNorm(width)
        self.self_attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.ln_q = nn.LayerNorm(width)
        self.ln_kv = nn.LayerNorm(width)
        self.cross_attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.ln_mlp = nn.LayerNorm(width)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, width)
        )

    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        h = self.ln_self(q)
        q = q + self.self_attn(h, h, h, need_weights=False)[0]
        k = self.ln_kv(kv)
        q = q + self.cross_attn(self.ln_q(q), k, k, need_weights=False)[0]
        return q + self.mlp(self.ln_mlp(q))


class QFormer(nn.Module):
    """`n_queries` learned queries, `layers` deep, `width` wide."""

    def __init__(
        self,
        n_queries: int,
        width: int,
        heads: int,
        layers: int,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.queries = nn.Parameter(torch.randn(n_queries, width) * 0.02)
        self.layers = nn.ModuleList(
            QFormerLayer(width, heads, mlp_ratio, dropout) for _ in range(layers)
        )
        self.ln = nn.LayerNorm(width)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        q = self.queries.unsqueeze(0).expand(tokens.shape[0], -1, -1)  # [B, Q, D]
        for layer in self.layers:
            q = layer(q, tokens)
        return self.ln(q)
