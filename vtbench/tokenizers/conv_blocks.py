"""Convolutional building blocks shared by the VQGAN-lineage tokenizers (LlamaGen, VAR,
Chameleon), and taming-transformers' encoder and decoder.

Attribute names follow the taming-transformers / LDM lineage the published checkpoints
use (``norm1``, ``conv1``, ``nin_shortcut``, ``q``/``k``/``v``/``proj_out`` or a fused
``qkv``, ``downsample.conv``, ``upsample.conv``), so state dicts load key for key.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with 32 groups and eps 1e-6, as the whole VQGAN lineage uses."""
    return nn.GroupNorm(32, channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = group_norm(in_channels), nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2, self.conv2 = group_norm(out_channels), nn.Conv2d(out_channels, out_channels, 3, padding=1)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over the H*W positions, 1x1 convolutions for q, k, v, out."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = group_norm(channels)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(channels, channels, 1) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        n, c, height, width = h.shape
        q, k, v = (layer(h).reshape(n, c, height * width).transpose(1, 2) for layer in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]
        return x + self.proj_out(out.transpose(1, 2).reshape(n, c, height, width))


class Downsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # right and bottom only


class Upsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class FusedAttnBlock(nn.Module):
    """Single-head self-attention with one 1x1 ``qkv`` convolution (C -> 3C), as VAR has."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, height, width = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, c, height * width).transpose(2, 3).unbind(1)
        out = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]
        return x + self.proj_out(out.transpose(1, 2).reshape(n, c, height, width))


def residual_level(channels_in: int, channels_out: int, blocks: int, attention: type[nn.Module] | None, name: str = "block") -> nn.Module:
    """One resolution level: ``blocks`` residual blocks under ``name`` (``block`` in taming,
    ``res`` in LlamaGen), each followed by an attention block when ``attention`` is given."""
    level = nn.Module()
    level.add_module(name, nn.ModuleList([ResnetBlock(channels_in if j == 0 else channels_out, channels_out) for j in range(blocks)]))
    level.attn = nn.ModuleList([attention(channels_out) for _ in range(blocks)] if attention else [])
    return level


def run_level(level: nn.Module, h: torch.Tensor, name: str = "block") -> torch.Tensor:
    for j, block in enumerate(getattr(level, name)):
        h = block(h)
        if len(level.attn):
            h = level.attn[j](h)
    return h


def _middle(channels: int, attention: type[nn.Module] | None) -> nn.Module:
    mid = nn.Module()
    mid.block_1 = ResnetBlock(channels, channels)
    if attention is not None:
        mid.attn_1 = attention(channels)
    mid.block_2 = ResnetBlock(channels, channels)
    return mid


def _run_middle(mid: nn.Module, h: torch.Tensor) -> torch.Tensor:
    h = mid.block_1(h)
    return mid.block_2(mid.attn_1(h) if hasattr(mid, "attn_1") else h)


class TamingEncoder(nn.Module):
    """taming-transformers' encoder: ``down.{i}.block.{j}`` / ``attn.{j}`` / ``downsample``,
    ``mid.block_1`` / ``attn_1`` / ``block_2``; attention blocks at ``attention_levels`` and,
    unless ``middle_attention`` is off, in the middle."""

    def __init__(self, ch: int, multipliers: tuple[int, ...], z_channels: int, blocks: int = 2,
                 attention: type[nn.Module] = AttnBlock, attention_levels: tuple[int, ...] = (),
                 middle_attention: bool = True) -> None:  # fmt: skip
        super().__init__()
        widths = [ch * m for m in (1, *multipliers)]
        self.conv_in = nn.Conv2d(3, ch, 3, padding=1)
        self.down = nn.ModuleList()
        for i in range(len(multipliers)):
            level = residual_level(widths[i], widths[i + 1], blocks, attention if i in attention_levels else None)
            if i != len(multipliers) - 1:
                level.downsample = Downsample(widths[i + 1])
            self.down.append(level)
        self.mid = _middle(widths[-1], attention if middle_attention else None)
        self.norm_out, self.conv_out = group_norm(widths[-1]), nn.Conv2d(widths[-1], z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.down:
            h = run_level(level, h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        return self.conv_out(F.silu(self.norm_out(_run_middle(self.mid, h))))


class TamingDecoder(nn.Module):
    """taming-transformers' decoder: ``up[i]`` is level i (run deepest first), with
    ``blocks + 1`` residual blocks each and an ``upsample`` above level 0."""

    def __init__(self, ch: int, multipliers: tuple[int, ...], z_channels: int, blocks: int = 2,
                 attention: type[nn.Module] = AttnBlock, attention_levels: tuple[int, ...] = (),
                 middle_attention: bool = True) -> None:  # fmt: skip
        super().__init__()
        top = ch * multipliers[-1]
        self.conv_in = nn.Conv2d(z_channels, top, 3, padding=1)
        self.mid = _middle(top, attention if middle_attention else None)
        levels: list[nn.Module] = []
        channels = top
        for i in reversed(range(len(multipliers))):
            level = residual_level(channels, ch * multipliers[i], blocks + 1, attention if i in attention_levels else None)
            channels = ch * multipliers[i]
            if i != 0:
                level.upsample = Upsample(channels)
            levels.insert(0, level)
        self.up = nn.ModuleList(levels)
        self.norm_out, self.conv_out = group_norm(channels), nn.Conv2d(channels, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = _run_middle(self.mid, self.conv_in(z))
        for level in reversed(self.up):
            h = run_level(level, h)
            if hasattr(level, "upsample"):
                h = level.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))
