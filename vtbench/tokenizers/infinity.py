"""Infinity's bitwise multi-scale tokenizer (FoundationVision/Infinity, arXiv 2412.04431).

A taming-style conv encoder without attention (channel multipliers (1, 2, 4, 4, 4), 16x
downsampling) emits d channels (d = 16, 24, 32 or 64); a multi-scale binary spherical
quantizer then codes the latent as a pyramid of token maps, as VAR does but with bits: at
each scale of the schedule (side 1, 2, 4, 6, 8, 12, 16 for a 16x16 latent; 20, 24, 32
and 40, 48, 64 more for 512 and 1024 px) the residual is area-downsampled, L2-normalised
and its signs kept (a code of ±1/sqrt(d) per channel), the code is upsampled back
(trilinear, as a one-frame volume) and subtracted from the residual. There is no codebook
and no convolution around the quantizer; the decoder (3 residual blocks per level, nearest
upsampling) reads the sum of the scales' codes. A token is one d-bit code; as an id the
bits are read with channel 0 as the highest bit (for d = 64 the id is those 64 bits as a
signed integer). Images go in as [-1, 1]; reconstructions are clamped to it.

Checkpoints (``infinity_vae_d*.pth``) hold the weights under ``vae`` (beside optimizer and
discriminator state, which is not read); their convolutions and norms may be saved wrapped
(``conv_in.conv.weight``, ``norm1.norm.weight``) or plain, and the quantizer's ``lfq.mask``
buffers are dropped.
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vtbench.safe_load import load_checkpoint
from vtbench.tokenizers.base import TokenizerInfo, Tokens, bits_to_ids
from vtbench.tokenizers.conv_blocks import TamingDecoder, TamingEncoder
from vtbench.tokenizers.neural import NetworkTokenizer, compute_dtype, find_checkpoint, load_exactly

SCALES = {16: (1, 2, 4, 6, 8, 12, 16), 32: (1, 2, 4, 6, 8, 12, 16, 20, 24, 32), 64: (1, 2, 4, 6, 8, 12, 16, 20, 24, 32, 40, 48, 64)}
DROPPED = ("quantizer.lfq.mask", "quantize.lfq.mask")


class BitwiseVAE(nn.Module):
    def __init__(self, bits: int = 32, ch: int = 128, multipliers: tuple[int, ...] = (1, 2, 4, 4, 4), blocks: int = 2) -> None:
        super().__init__()
        self.encoder = TamingEncoder(ch, multipliers, bits, blocks, middle_attention=False)
        self.decoder = TamingDecoder(ch, multipliers, bits, blocks, middle_attention=False)


def _volume(x: torch.Tensor, side: tuple[int, int], mode: str) -> torch.Tensor:
    """Resize (B, C, h, w) to ``side`` as a one-frame volume, as the release does."""
    return F.interpolate(x[:, :, None], size=(1, *side), mode=mode)[:, :, 0]


def quantize(latent: torch.Tensor, scales: tuple[int, ...]) -> list[torch.Tensor]:
    """(B, d, H, W) float32 latent -> one bool bit map (B, s, s, d) per scale (side s)."""
    d, height, width = latent.shape[1], latent.shape[2], latent.shape[3]
    residual, bits = latent, []
    for side in scales:
        full = (side, side) == (height, width)
        part = residual if full else _volume(residual, (side, side), "area")
        code = torch.where(F.normalize(part, dim=1) > 0, 1.0, -1.0) / math.sqrt(d)
        bits.append((code > 0).permute(0, 2, 3, 1))
        residual = residual - (code if full else _volume(code, (height, width), "trilinear"))
    return bits


def dequantize(bits: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
    """The bit maps of every scale -> the summed code (B, d, H, W) the decoder reads."""
    total = None
    for plane in bits:
        d = plane.shape[-1]
        code = (plane.permute(0, 3, 1, 2).float() * 2 - 1) / math.sqrt(d)
        code = code if tuple(code.shape[-2:]) == size else _volume(code, size, "trilinear")
        total = code if total is None else total + code
    assert total is not None
    return total


def plain_keys(state: dict[str, torch.Tensor], expected: set[str]) -> dict[str, torch.Tensor]:
    """Keys saved with the release's conv/norm wrappers (``X.conv.weight``, ``X.norm.bias``)
    mapped to the plain module names, where the plain name is one the model has."""
    out = {}
    for key, value in state.items():
        if key in DROPPED:
            continue
        plain = re.sub(r"\.(conv|norm)\.(weight|bias)$", r".\2", key)
        out[plain if key not in expected and plain in expected else key] = value
    return out


class InfinityBSQ(NetworkTokenizer):
    """An Infinity bitwise VAE checkpoint (``checkpoint``: weights-store name, or ``weights=PATH``)."""

    def __init__(self, checkpoint: str = "infinity-vae-d32", weights: str | None = None, native_resolution: int = 256,
                 dtype: str = "float32") -> None:  # fmt: skip
        self.name, self.checkpoint, self.dtype_name = checkpoint, checkpoint, dtype
        self.dtype = compute_dtype(dtype)
        self.weights_path, self.weights_sha256 = find_checkpoint(weights, checkpoint)
        stored = load_checkpoint(self.weights_path)
        state = stored.get("vae", stored) if isinstance(stored, dict) else None
        if not isinstance(state, dict):
            raise ValueError(f"{self.weights_path}: not an Infinity VAE checkpoint (no 'vae' state dict)")
        state = {k.removeprefix("module."): v for k, v in state.items()}
        conv_in = state.get("encoder.conv_in.conv.weight", state.get("encoder.conv_in.weight"))
        conv_out = state.get("encoder.conv_out.conv.weight", state.get("encoder.conv_out.weight"))
        if conv_in is None or conv_out is None:
            raise ValueError(f"{self.weights_path}: not an Infinity VAE checkpoint (no encoder.conv_in / encoder.conv_out weights)")
        ch, bits = conv_in.shape[0], conv_out.shape[0]
        levels = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("encoder.down."))
        first_convs = [state.get(f"encoder.down.{i}.block.0.conv1.conv.weight", state.get(f"encoder.down.{i}.block.0.conv1.weight"))
                       for i in range(levels)]  # fmt: skip
        blocks = 1 + max(int(k.split(".")[4]) for k in state if k.startswith("encoder.down.0.block."))
        self.layout = {"bits": bits, "ch": ch, "multipliers": tuple(int(w.shape[0]) // ch for w in first_convs), "blocks": blocks}
        self.model = BitwiseVAE(**self.layout)
        load_exactly(self.model, plain_keys(state, set(self.model.state_dict())), self.weights_path, "Infinity bitwise VAE")
        self.model.eval().requires_grad_(False).to(self.dtype)
        self.factor = 2 ** (len(self.layout["multipliers"]) - 1)
        latent = native_resolution // self.factor
        if latent not in SCALES:
            raise ValueError(f"Infinity's scale schedules are for latents of {', '.join(map(str, SCALES))}, not {latent}")
        sizes = tuple(s * s for s in SCALES[latent])
        self.info = TokenizerInfo(
            family="discrete", quantizer="bsq (multi-scale, bitwise)", codebook_size=2**bits, token_grid=(sum(sizes),),
            tokens_per_image=sum(sizes), native_resolution=native_resolution, accepts_any_size=False, input_range=(-1.0, 1.0),
            license="MIT", source=str(self.weights_path), paper="arXiv:2412.04431",
            extra={**self.layout, "bits_per_token": bits, "bit_order": "channel 0 = MSB", "scales": list(SCALES[latent]),
                   "schedules": {f"{k * self.factor}px": list(v) for k, v in SCALES.items()}, "parameters": self.parameter_count(),
                   "weights_sha256": self.weights_sha256},
        )  # fmt: skip

    def options(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "weights": str(self.weights_path), "dtype": self.dtype_name}

    def _scales(self, height: int, width: int) -> tuple[int, ...]:
        latent = height // self.factor
        if height != width or height % self.factor or latent not in SCALES:
            sides = ", ".join(f"{k * self.factor}x{k * self.factor}" for k in SCALES)
            raise ValueError(f"Infinity's bitwise VAE has scale schedules for {sides} images only, got {width}x{height}")
        return SCALES[latent]

    def encode(self, images: torch.Tensor) -> Tokens:
        height, width = images.shape[-2:]
        scales = self._scales(height, width)
        with torch.autocast(images.device.type, enabled=False):  # the quantizer runs in float32, as upstream
            bits = quantize(self.model.encoder(self._input(images)).float(), scales)
        flat = torch.cat([plane.reshape(len(images), -1, plane.shape[-1]) for plane in bits], dim=1)  # (B, tokens, d)
        ids = bits_to_ids(flat, dim=-1, lsb_first=False)  # channel 0 = the top bit (64-bit codes wrap)
        return Tokens.from_ids(ids, 2 ** flat.shape[-1], (height, width), data=bits, level_sizes=tuple(s * s for s in scales))

    def decode(self, tokens: Tokens) -> torch.Tensor:
        height, width = tokens.image_size
        codes = dequantize(tokens.data, (height // self.factor, width // self.factor)).to(self.dtype)
        return self._output(self.model.decoder(codes).clamp(-1, 1))
