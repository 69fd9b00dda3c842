"""VAR's multi-scale residual VQVAE (FoundationVision/VAR, arXiv 2404.02905), written here.

One checkpoint (``vae_ch160v4096z32.pth``, a raw state dict) serves both published
settings: 10 scales ending at a 16x16 latent for 256-px images (680 tokens) or at 32x32
for 512 (2240 tokens). Encoding quantizes the residual scale by scale: area-downsample
what is left, take the nearest of 4096 codes (plain L2), bicubic-upsample the code map,
refine it with one of 4 shared 3x3 "Phi" convolutions, add it to the running estimate and
subtract it from the residual. Module names reproduce the checkpoint's keys
(``encoder.down.{i}.block.{j}``, ``encoder.mid.attn_1.qkv``, ``quantize.quant_resi.qresi_ls.{k}``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vtbench.safe_load import load_checkpoint
from vtbench.tokenizers.base import TokenizerInfo, Tokens, nearest_codes
from vtbench.tokenizers.conv_blocks import FusedAttnBlock, TamingDecoder, TamingEncoder
from vtbench.tokenizers.neural import NetworkTokenizer, compute_dtype, find_checkpoint, load_exactly

PATCH_NUMS = {256: (1, 2, 3, 4, 5, 6, 8, 10, 13, 16), 512: (1, 2, 3, 4, 6, 9, 13, 18, 24, 32)}
IGNORED_KEYS = ("quantize.ema_vocab_hit_SV",)
MULTIPLIERS = (1, 1, 2, 2, 4)


def phi_for_scales(scales: int, shared: int = 4) -> list[int]:
    """Which shared Phi convolution refines each scale: the tick nearest to si / (scales - 1),
    ticks = linspace(1/3/K, 1 - 1/3/K, K), in float64 exactly as upstream (its ties included)."""
    ticks = (
        np.linspace(1 / 3 / shared, 1 - 1 / 3 / shared, shared) if shared == 4 else np.linspace(1 / 2 / shared, 1 - 1 / 2 / shared, shared)
    )
    return [int(np.argmin(np.abs(ticks - si / (scales - 1)))) for si in range(scales)]


class Phi(nn.Conv2d):
    """h * (1 - r) + conv3x3(h) * r, with r = 0.5."""

    def __init__(self, channels: int, ratio: float = 0.5) -> None:
        super().__init__(channels, channels, 3, padding=1)
        self.ratio = abs(ratio)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h.mul(1 - self.ratio) + super().forward(h).mul_(self.ratio)


class MultiScaleQuantizer(nn.Module):
    def __init__(self, vocab_size: int = 4096, dim: int = 32, shared: int = 4) -> None:
        super().__init__()
        self.quant_resi = nn.Module()
        self.quant_resi.qresi_ls = nn.ModuleList([Phi(dim) for _ in range(shared)])
        self.embedding = nn.Embedding(vocab_size, dim)

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """(N, C, p, p) -> (N, p*p) ids of the nearest codes (squared L2)."""
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        return nearest_codes(flat, self.embedding.weight).reshape(z.shape[0], -1)

    def refine(self, ids: torch.Tensor, side: int, size: int, phi: int, last: bool) -> torch.Tensor:
        """One scale's ids (N, side*side) -> its contribution at the full latent size."""
        h = self.embedding(ids).transpose(1, 2).reshape(ids.shape[0], -1, side, side)
        if not last:
            h = F.interpolate(h, size=(size, size), mode="bicubic")
        return self.quant_resi.qresi_ls[phi](h)


class VarVQVAE(nn.Module):
    def __init__(self, vocab_size: int = 4096, z_channels: int = 32, ch: int = 160) -> None:
        super().__init__()
        attention = {"attention": FusedAttnBlock, "attention_levels": (len(MULTIPLIERS) - 1,)}  # the deepest level and the middle
        self.encoder = TamingEncoder(ch, MULTIPLIERS, z_channels, **attention)
        self.decoder = TamingDecoder(ch, MULTIPLIERS, z_channels, **attention)
        self.quantize = MultiScaleQuantizer(vocab_size, z_channels)
        self.quant_conv = nn.Conv2d(z_channels, z_channels, 3, padding=1)
        self.post_quant_conv = nn.Conv2d(z_channels, z_channels, 3, padding=1)


def checkpoint_state_dict(path: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(path)
    if isinstance(state, dict) and "quantize.embedding.weight" not in state:
        state = next((state[k] for k in ("model", "state_dict", "vae") if isinstance(state.get(k), dict)), state)
    if not isinstance(state, dict) or "quantize.quant_resi.qresi_ls.0.weight" not in state:
        raise ValueError(f"{path}: not a VAR VQVAE state dict (no quantize.quant_resi.qresi_ls.0.weight)")
    return {k: v for k, v in state.items() if k not in IGNORED_KEYS}


class VarTokenizer(NetworkTokenizer):
    """VAR's VQVAE at 256 (680 tokens in 10 scales) or 512 (2240 tokens)."""

    def __init__(self, resolution: int = 256, checkpoint: str = "var-vqvae", weights: str | None = None, dtype: str = "float32") -> None:
        if resolution not in PATCH_NUMS:
            raise ValueError(f"VAR VQVAE resolution {resolution} is not one of {', '.join(map(str, PATCH_NUMS))}")
        self.name, self.resolution, self.checkpoint, self.dtype_name = f"var-vqvae-{resolution}", resolution, checkpoint, dtype
        self.dtype = compute_dtype(dtype)
        self.weights_path, self.weights_sha256 = find_checkpoint(weights, checkpoint)
        state = checkpoint_state_dict(self.weights_path)
        vocab_size, z_channels = state["quantize.embedding.weight"].shape
        self.model = VarVQVAE(vocab_size, z_channels, ch=state["encoder.conv_in.weight"].shape[0])
        load_exactly(self.model, state, self.weights_path, "VAR VQVAE")
        self.model.eval().requires_grad_(False).to(self.dtype)
        self.patch_nums = PATCH_NUMS[resolution]
        self.phi = phi_for_scales(len(self.patch_nums), len(self.model.quantize.quant_resi.qresi_ls))
        tokens = sum(p * p for p in self.patch_nums)
        self.info = TokenizerInfo(
            family="discrete", quantizer="multiscale-residual-vq", codebook_size=vocab_size, token_grid=self.patch_nums,
            tokens_per_image=tokens, native_resolution=resolution, accepts_any_size=False, input_range=(-1.0, 1.0), license="MIT",
            source=str(self.weights_path), paper="arXiv:2404.02905",
            extra={"scales": list(self.patch_nums), "phi_per_scale": self.phi, "parameters": self.parameter_count(),
                   "weights_sha256": self.weights_sha256},
        )  # fmt: skip

    def options(self) -> dict[str, Any]:
        return {"resolution": self.resolution, "checkpoint": self.checkpoint, "weights": str(self.weights_path), "dtype": self.dtype_name}

    def encode(self, images: torch.Tensor) -> Tokens:
        n, _, height, width = images.shape
        if (height, width) != (self.resolution, self.resolution):
            raise ValueError(f"VAR VQVAE-{self.resolution} encodes {self.resolution}x{self.resolution} images, got {width}x{height}")
        quantize, last = self.model.quantize, len(self.patch_nums) - 1
        residual = self.model.quant_conv(self.model.encoder(self._input(images)))
        size = residual.shape[-1]
        ids = []
        for si, side in enumerate(self.patch_nums):
            z = residual if si == last else F.interpolate(residual, size=(side, side), mode="area")
            scale_ids = quantize.nearest(z)
            residual = residual - quantize.refine(scale_ids, side, size, self.phi[si], si == last)
            ids.append(scale_ids)
        levels = tuple(side * side for side in self.patch_nums)
        return Tokens.from_ids(torch.cat(ids, dim=1), self.info.codebook_size, (height, width), level_sizes=levels)

    def decode(self, tokens: Tokens) -> torch.Tensor:
        quantize, last, size = self.model.quantize, len(self.patch_nums) - 1, self.patch_nums[-1]
        scales = tokens.data.split([side * side for side in self.patch_nums], dim=1)
        parts = enumerate(zip(scales, self.patch_nums, strict=True))
        estimate = sum(quantize.refine(ids, side, size, self.phi[si], si == last) for si, (ids, side) in parts)
        return self._output(self.model.decoder(self.model.post_quant_conv(estimate)).clamp(-1, 1))
