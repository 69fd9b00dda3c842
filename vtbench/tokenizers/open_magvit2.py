"""Open-MAGVIT2 lookup-free quantization tokenizers (TencentARC/SEED-Voken, arXiv 2409.04410).

A conv encoder (no attention, bias-free residual convolutions, strided-conv downsampling)
emits 18 channels; LFQ takes their signs, so each token is an 18-bit code (2^18 entries,
no codebook tensor at all). The decoder starts every level with an adaptive group norm
whose scale and shift come from the per-channel standard deviation and mean of the codes,
and upsamples by a convolution to 4C followed by depth-to-space (DCR order). Images go in
as [-1, 1]; reconstructions are clamped to it.

Two generations exist: the current ``*_L`` checkpoints (4 residual blocks per level,
adaptive norms, channel 0 = the least significant bit of the token id) and the first
``*_B`` ones (2 blocks, no adaptive norms, channel 0 = the most significant bit). The
layout is read from the checkpoint. Checkpoints hold ``{"state_dict": ...}`` with the raw
weights and their EMA copies (``model_ema.<name without dots>``); the published numbers
use the EMA copies, and so does ``ema=True`` (the default).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vtbench.safe_load import load_checkpoint
from vtbench.tokenizers.base import TokenizerInfo, Tokens, bits_to_ids, ids_to_signs
from vtbench.tokenizers.conv_blocks import group_norm
from vtbench.tokenizers.neural import NetworkTokenizer, compute_dtype, find_checkpoint, load_exactly


class ResBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = group_norm(in_channels), nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.norm2, self.conv2 = group_norm(out_channels), nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.silu(self.norm2(self.conv1(F.silu(self.norm1(x))))))
        return (self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x) + h


class AdaptiveGroupNorm(nn.Module):
    """GroupNorm without affine, scaled by gamma(std of the codes) and shifted by beta(mean)."""

    def __init__(self, code_channels: int, channels: int) -> None:
        super().__init__()
        self.gn = nn.GroupNorm(32, channels, eps=1e-6, affine=False)
        self.gamma, self.beta = nn.Linear(code_channels, channels), nn.Linear(code_channels, channels)

    def forward(self, x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        flat = codes.flatten(2)
        scale = self.gamma(torch.sqrt(flat.var(dim=-1, correction=1) + 1e-6))  # unbiased, as upstream computes it
        return scale[..., None, None] * self.gn(x) + self.beta(flat.mean(dim=-1))[..., None, None]


class DepthToSpaceUpsampler(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 4 * channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x)
        n, c4, height, width = h.shape
        c = c4 // 4  # DCR: out[c, 2y + i, 2x + j] = in[(2i + j) * C + c, y, x]
        return h.view(n, 2, 2, c, height, width).permute(0, 3, 4, 1, 5, 2).reshape(n, c, 2 * height, 2 * width)


def _level(channels_in: int, channels_out: int, blocks: int) -> nn.Module:
    level = nn.Module()
    level.block = nn.ModuleList([ResBlock(channels_in if j == 0 else channels_out, channels_out) for j in range(blocks)])
    return level


class Encoder(nn.Module):
    def __init__(self, ch: int, multipliers: tuple[int, ...], blocks: int, code_channels: int) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(3, ch, 3, padding=1, bias=False)
        widths = [ch * m for m in (1, *multipliers)]
        self.down = nn.ModuleList()
        for i in range(len(multipliers)):
            level = _level(widths[i], widths[i + 1], blocks)
            if i != len(multipliers) - 1:
                level.downsample = nn.Conv2d(widths[i + 1], widths[i + 1], 3, stride=2, padding=1)
            self.down.append(level)
        self.mid_block = nn.ModuleList([ResBlock(widths[-1], widths[-1]) for _ in range(blocks)])
        self.norm_out, self.conv_out = group_norm(widths[-1]), nn.Conv2d(widths[-1], code_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.down:
            for block in level.block:
                h = block(h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        for block in self.mid_block:
            h = block(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, ch: int, multipliers: tuple[int, ...], blocks: int, code_channels: int, adaptive: bool) -> None:
        super().__init__()
        top = ch * multipliers[-1]
        self.conv_in = nn.Conv2d(code_channels, top, 3, padding=1)
        self.mid_block = nn.ModuleList([ResBlock(top, top) for _ in range(blocks)])
        levels: list[nn.Module] = []
        norms: list[nn.Module] = []
        channels = top
        for i in reversed(range(len(multipliers))):
            norms.insert(0, AdaptiveGroupNorm(code_channels, channels))
            level = _level(channels, ch * multipliers[i], blocks)
            channels = ch * multipliers[i]
            if i != 0:
                level.upsample = DepthToSpaceUpsampler(channels)
            levels.insert(0, level)
        self.up = nn.ModuleList(levels)
        if adaptive:
            self.adaptive = nn.ModuleList(norms)
        self.norm_out, self.conv_out = group_norm(channels), nn.Conv2d(channels, 3, 3, padding=1)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(codes)
        for block in self.mid_block:
            h = block(h)
        for i in reversed(range(len(self.up))):
            if hasattr(self, "adaptive"):
                h = self.adaptive[i](h, codes)
            for block in self.up[i].block:
                h = block(h)
            if hasattr(self.up[i], "upsample"):
                h = self.up[i].upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class LFQAutoencoder(nn.Module):
    def __init__(self, ch: int = 128, multipliers: tuple[int, ...] = (1, 1, 2, 2, 4), blocks: int = 4, code_channels: int = 18,
                 adaptive: bool = True) -> None:  # fmt: skip
        super().__init__()
        self.encoder = Encoder(ch, multipliers, blocks, code_channels)
        self.decoder = Decoder(ch, multipliers, blocks, code_channels, adaptive)


def checkpoint_state_dict(path: Path, ema: bool) -> dict[str, torch.Tensor]:
    """Encoder/decoder weights of an Open-MAGVIT2 checkpoint; with ``ema`` their EMA copies."""
    checkpoint = load_checkpoint(path)
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or "encoder.conv_in.weight" not in state or "decoder.conv_out.weight" not in state:
        raise ValueError(f"{path}: not an Open-MAGVIT2 checkpoint (no encoder.conv_in.weight / decoder.conv_out.weight in state_dict)")
    raw = {k: v for k, v in state.items() if k.startswith(("encoder.", "decoder."))}
    if not ema:
        return raw
    return {k: state.get("model_ema." + k.replace(".", ""), v) for k, v in raw.items()}


def layout(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The architecture a state dict describes: width, multipliers, blocks, code channels, adaptive norms."""
    ch = state["encoder.conv_in.weight"].shape[0]
    levels = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("encoder.down."))
    widths = [state[f"encoder.down.{i}.block.0.conv1.weight"].shape[0] for i in range(levels)]
    blocks = 1 + max(int(k.split(".")[4]) for k in state if k.startswith("encoder.down.0.block."))
    return {"ch": ch, "multipliers": tuple(w // ch for w in widths), "blocks": blocks,
            "code_channels": state["encoder.conv_out.weight"].shape[0], "adaptive": "decoder.adaptive.0.gamma.weight" in state}  # fmt: skip


class OpenMagvit2(NetworkTokenizer):
    """An Open-MAGVIT2 LFQ checkpoint (``checkpoint``: weights-store name, or ``weights=PATH``)."""

    def __init__(self, checkpoint: str = "open-magvit2-256-l", weights: str | None = None, native_resolution: int = 256,
                 ema: bool = True, dtype: str = "float32") -> None:  # fmt: skip
        self.name, self.checkpoint, self.ema, self.dtype_name = checkpoint, checkpoint, bool(ema), dtype
        self.dtype = compute_dtype(dtype)
        self.weights_path, self.weights_sha256 = find_checkpoint(weights, checkpoint)
        state = checkpoint_state_dict(self.weights_path, self.ema)
        self.layout = layout(state)
        self.model = LFQAutoencoder(**self.layout)
        load_exactly(self.model, state, self.weights_path, "Open-MAGVIT2")
        self.model.eval().requires_grad_(False).to(self.dtype)
        bits = self.layout["code_channels"]
        self.factor = 2 ** (len(self.layout["multipliers"]) - 1)
        self.lsb_first = self.layout["adaptive"]  # the current generation; the first one put channel 0 at the top bit
        grid = native_resolution // self.factor
        self.info = TokenizerInfo(
            family="discrete", quantizer="lfq", codebook_size=2**bits, token_grid=(grid, grid), tokens_per_image=grid * grid,
            native_resolution=native_resolution, input_range=(-1.0, 1.0), license="Apache-2.0", source=str(self.weights_path),
            paper="arXiv:2409.04410",
            extra={**self.layout, "bits_per_token": bits, "bit_order": "channel 0 = LSB" if self.lsb_first else "channel 0 = MSB",
                   "ema_weights": self.ema, "parameters": self.parameter_count(),
                   "weights_sha256": self.weights_sha256},
        )  # fmt: skip

    def options(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "weights": str(self.weights_path), "ema": self.ema, "dtype": self.dtype_name}

    def encode(self, images: torch.Tensor) -> Tokens:
        height, width = images.shape[-2:]
        if height % self.factor or width % self.factor:
            raise ValueError(f"Open-MAGVIT2 needs sides divisible by {self.factor}, got {width}x{height}")
        z = self.model.encoder(self._input(images))
        ids = bits_to_ids(z > 0, dim=1, lsb_first=self.lsb_first)
        return Tokens.from_ids(ids, self.info.codebook_size, (height, width))

    def decode(self, tokens: Tokens) -> torch.Tensor:
        codes = ids_to_signs(tokens.data, self.layout["code_channels"], dim=1, lsb_first=self.lsb_first, dtype=self.dtype)
        return self._output(self.model.decoder(codes).clamp(-1, 1))
