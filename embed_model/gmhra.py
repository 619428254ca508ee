"""GMHRA: global multi-head relation aggregation (after UniFormerV2, as used by VideoChat-Embed).

The frozen image encoder sees one frame at a time; GMHRA adds the video. Its input is every
spatial token of every sampled frame, ``[B, T, N, C_enc]`` (N = h*w positions of the encoder's
feature map). Each layer does what UniFormerV2's global block does:

1. **local spatio-temporal relation** (dynamic position encoding): a depthwise 3-D convolution
   over (time, height, width) added to the tokens, so each token knows what moved around it
   in the neighbouring frames (zero-initialized: it starts as the identity);
2. **global relation aggregation**: a set of learnable queries (one in UniFormerV2) attends,
   through multi-head cross-attention, to all T*N tokens at once, then an MLP; the queries are
   carried from layer to layer.

Learned time and space embeddings are added first, so "where" and "when" survive the
aggregation. The output is the aggregated queries followed by the (position-encoded) tokens,
``[B, G + T*N, D]``, which the Q-Former reads: the global queries carry the video-level
relations, the tokens keep the detail.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vidchat.embed_model.config import MOTION_FEATURES

__all__ = ["GMHRA", "GMHRALayer", "motion_inputs"]


def motion_inputs(feats: torch.Tensor, how: str) -> list[torch.Tensor]:
    """The motion signals of ``feats [B, T, N, C]`` named by `how` (each ``[B, T, N, C]``).

    A frozen image encoder sees one frame at a time, so its tokens say what is where, never
    what moved. The difference of consecutive frames at one position is non-zero exactly where
    something arrived or left, and its sign says which: the direction of a move is the place
    it left and the place it reached, and the first mover is the first frame with a change."""
    if how not in MOTION_FEATURES:
        raise ValueError(f"motion must be one of {MOTION_FEATURES}, got {how!r}")
    out = []
    if how in ("diff", "both"):
        out.append(torch.cat([torch.zeros_like(feats[:, :1]), feats[:, 1:] - feats[:, :-1]], 1))
    if how in ("centred", "both"):
        out.append(feats - feats.mean(1, keepdim=True))
    return out


class GMHRALayer(nn.Module):
    """Depthwise 3-D conv on the tokens, then the queries cross-attend to them."""

    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__()
        self.dpe = nn.Conv3d(width, width, kernel_size=3, padding=1, groups=width)
        nn.init.zeros_(self.dpe.weight)  # starts as identity: the residual adds nothing yet
        assert self.dpe.bias is not None  # Conv3d(bias=True), the default
        nn.init.zeros_(self.dpe.bias)
        self.ln_q = nn.LayerNorm(width)
        self.ln_kv = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.ln_mlp = nn.LayerNorm(width)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, width)
        )

    def forward(
        self, x: torch.Tensor, q: torch.Tensor, grid: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x ``[B, T, N, D]`` tokens, q ``[B, G, D]`` queries -> both updated."""
        b, t, n, d = x.shape
        h, w = grid
        y = x.permute(0, 3, 1, 2).reshape(b, d, t, h, w)  # [B, D, T, h, w]
        x = x + self.dpe(y).reshape(b, d, t, n).permute(0, 2, 3, 1)  # [B, T, N, D]
        kv = self.ln_kv(x.reshape(b, t * n, d))
        q = q + self.attn(self.ln_q(q), kv, kv, need_weights=False)[0]
        q = q + self.mlp(self.ln_mlp(q))
        return x, q


def _grid(n: int) -> tuple[int, int]:
    """The (h, w) of N tokens: square when N is a square, else one row (a 1-D layout)."""
    side = math.isqrt(n)
    return (side, side) if side * side == n else (1, n)


class GMHRA(nn.Module):
    """Projects encoder tokens to `width`, adds time and space embeddings, runs the layers.

    ``[B, T, N, C_enc]`` -> ``[B, G + T*N, D]`` (G = `queries` learnable global queries).
    """

    def __init__(
        self,
        in_dim: int,
        width: int,
        heads: int,
        layers: int,
        max_frames: int,
        n_tokens: int,
        queries: int = 1,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        motion: str = "",
    ):
        super().__init__()
        self.inp = nn.Linear(in_dim, width)
        self.motion = motion
        # One projection per motion signal (`motion_inputs`), added to the frame's own.
        self.motion_proj = nn.ModuleList(
            nn.Linear(in_dim, width) for _ in motion_inputs(torch.zeros(1, 1, 1, 1), motion)
        )
        self.time = nn.Parameter(torch.randn(max_frames, width) * 0.02)
        self.space = nn.Parameter(torch.randn(n_tokens, width) * 0.02)
        self.query = nn.Parameter(torch.randn(queries, width) * 0.02)
        self.layers = nn.ModuleList(
            GMHRALayer(width, heads, mlp_ratio, dropout) for _ in range(layers)
        )
        self.ln = nn.LayerNorm(width)
        self.ln_q = nn.LayerNorm(width)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        b, t, n, _ = feats.shape
        if t > self.time.shape[0]:
            raise ValueError(
                f"{t} frames given, the model was built for at most {self.time.shape[0]}"
            )
        if n != self.space.shape[0]:
            raise ValueError(
                f"{n} tokens per frame given, the model was built for {self.space.shape[0]}"
            )
        x = self.inp(feats) + self.time[:t].view(1, t, 1, -1) + self.space.view(1, 1, n, -1)
        for proj, signal in zip(self.motion_proj, motion_inputs(feats, self.motion), strict=True):
            x = x + proj(signal)
        q = self.query.unsqueeze(0).expand(b, -1, -1)  # [B, G, D]
        grid = _grid(n)
        for layer in self.layers:
            x, q = layer(x, q, grid)
        return torch.cat([self.ln_q(q), self.ln(x.reshape(b, t * n, -1))], dim=1)
