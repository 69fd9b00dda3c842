"""Transformer building blocks shared by the ViT tokenizers (BSQ-ViT, TiTok, DetailFlow, FlowMo).

The block is open_clip's pre-norm residual attention block; its attribute names
(``ln_1``, ``attn.in_proj_weight``, ``ln_2``, ``mlp.c_fc``, ``mlp.c_proj``) are the keys of
the published checkpoints. ``nn.MultiheadAttention`` runs batch-first here; that does not
change its parameters.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(width, 4 * width))
        self.mlp.add_module("gelu", nn.GELU())
        self.mlp.add_module("c_proj", nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, H/p * W/p, p*p*C): row-major patches, each patch's pixels in (row,
    column, channel) order, the channel fastest."""
    batch, channels, height, width = images.shape
    x = images.reshape(batch, channels, height // patch, patch, width // patch, patch)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(batch, -1, patch * patch * channels)


def unpatchify(patches: torch.Tensor, patch: int, rows: int, columns: int) -> torch.Tensor:
    """(B, rows*columns, p*p*C) -> (B, C, rows*p, columns*p); the inverse of :func:`patchify`."""
    x = patches.reshape(len(patches), rows, columns, patch, patch, -1)
    return x.permute(0, 5, 1, 3, 2, 4).reshape(len(patches), -1, rows * patch, columns * patch)


def layer_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    """LayerNorm over the last axis without parameters, computed in float32 (as autocast runs
    it) and returned in ``x``'s dtype."""
    return F.layer_norm(x.float(), x.shape[-1:], eps=eps).type_as(x)


def sinusoidal_embedding(t: torch.Tensor, scale: float, max_period: float, dim: int = 256) -> torch.Tensor:
    """(B,) times -> (B, dim) float32 [cos(scale t f), sin(scale t f)] (cosines first), with
    f_j = max_period^(-j / (dim/2)): the time embedding of Flux-style flow transformers."""
    half = dim // 2
    frequencies = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = scale * t.float()[:, None] * frequencies[None]
    return torch.cat([args.cos(), args.sin()], dim=-1)
