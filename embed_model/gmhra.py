"""GMHRA: global multi-head relation aggregation over time (after UniFormerV2 / VideoChat-Embed).

Per-frame image features carry no notion of time. Each GMHRA layer adds it in two steps, for
every spatial position independently:

1. a local temporal relation: a depthwise 1-D convolution over neighbouring frames (a dynamic
   position encoding, so each token knows what changed just before and after it), then
2. a global one: multi-head self-attention across all the frames, then an MLP.

Input ``[B, T, N, C_enc]`` -> output ``[B, T*N, D]`` frame tokens for the Q-Former.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["GMHRA", "GMHRALayer"]


class GMHRALayer(nn.Module):
    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__()
        self.dpe = nn.Conv1d(width, width, kernel_size=3, padding=1, groups=width)
        nn.init.zeros_(self.dpe.weight)  # starts as identity: the residual adds nothing yet
        nn.init.zeros_(self.dpe.bias)
        self.ln1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.ln2 = nn.LayerNorm(width)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, width)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, n, d = x.shape
        # Local relation: depthwise conv along T for each of the B*N positions.
        y = x.permute(0, 2, 3, 1).reshape(b * n, d, t)  # [B*N, D, T]
        x = x + self.dpe(y).reshape(b, n, d, t).permute(0, 3, 1, 2)  # [B, T, N, D]
        # Global relation: attention across all T frames, per position.
        z = x.permute(0, 2, 1, 3).reshape(b * n, t, d)  # [B*N, T, D]
        h = self.ln1(z)
        z = z + self.attn(h, h, h, need_weights=False)[0]
        z = z + self.mlp(self.ln2(z))
        return z.reshape(b, n, t, d).permute(0, 2, 1, 3)  # [B, T, N, D]


class GMHRA(nn.Module):
    """Projects encoder features to `width`, adds a learned time embedding, runs the layers."""

    def __init__(
        self,
        in_dim: int,
        width: int,
        heads: int,
        layers: int,
        max_frames: int,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.inp = nn.Linear(in_dim, width)
        self.time = nn.Parameter(torch.zeros(max_frames, width))
        nn.init.normal_(self.time, std=0.02)
        self.layers = nn.ModuleList(
            GMHRALayer(width, heads, mlp_ratio, dropout) for _ in range(layers)
        )
        self.ln = nn.LayerNorm(width)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        b, t, n, _ = feats.shape
        if t > self.time.shape[0]:
            raise ValueError(
                f"{t} frames given, the model was built for at most {self.time.shape[0]}"
            )
        x = self.inp(feats) + self.time[:t].view(1, t, 1, -1)  # [B, T, N, D]
        for layer in self.layers:
            x = layer(x)
        return self.ln(x).reshape(b, t * n, -1)  # [B, T*N, D]
