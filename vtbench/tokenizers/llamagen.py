"""LlamaGen VQ tokenizers (FoundationVision/LlamaGen, arXiv 2406.06525), written here.

The module names reproduce the published checkpoints' state-dict keys
(``encoder.conv_blocks.{i}.res.{j}.norm1.weight``, ``quantize.embedding.weight`` ...):
a VQGAN-style conv encoder/decoder (GroupNorm 32, swish, single-head attention at the
deepest level and in the middle), 1x1 ``quant_conv``/``post_quant_conv`` to an 8-d code,
and a 16384-entry codebook searched after L2-normalising codes and codebook. Images go in
as [-1, 1]. ``vq_ds16_*`` has channel multipliers (1, 1, 2, 2, 4) (16x downsampling),
``vq_ds8_c2i`` (1, 2, 2, 4). The ``.pt`` files hold the weights under ``"model"``
(``"ema"`` / ``"state_dict"`` also accepted); the training-time ``quantize.codebook_used``
buffer is ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vtbench.tokenizers.base import TokenizerInfo, Tokens, nearest_codes
from vtbench.tokenizers.conv_blocks import AttnBlock, Downsample, ResnetBlock, Upsample, group_norm, residual_level, run_level
from vtbench.tokenizers.neural import (
    NetworkTokenizer,
    compute_dtype,
    find_checkpoint,
    load_exactly,
    local_path,
    repository_folder,
    submodel_tensors,
    unwrap_state_dict,
)

CHANNEL_MULTIPLIERS = {"ds16": (1, 1, 2, 2, 4), "ds8": (1, 2, 2, 4)}
IGNORED_KEYS = ("quantize.codebook_used",)


def _middle(channels: int, attention: bool = True) -> nn.ModuleList:
    blocks = [ResnetBlock(channels, channels), *([AttnBlock(channels)] if attention else []), ResnetBlock(channels, channels)]
    return nn.ModuleList(blocks)


class Encoder(nn.Module):
    """``attention``: single-head attention at the deepest level and in the middle (LlamaGen);
    without it the middle is two residual blocks (``mid.0``, ``mid.1``, as GigaTok's CNN)."""

    def __init__(self, multipliers: tuple[int, ...], ch: int = 128, z_channels: int = 256, blocks: int = 2,
                 attention: bool = True) -> None:  # fmt: skip
        super().__init__()
        self.conv_in = nn.Conv2d(3, ch, 3, padding=1)
        widths = [ch * m for m in (1, *multipliers)]
        self.conv_blocks = nn.ModuleList()
        for i in range(len(multipliers)):
            deepest = attention and i == len(multipliers) - 1
            level = residual_level(widths[i], widths[i + 1], blocks, AttnBlock if deepest else None, name="res")
            if i != len(multipliers) - 1:
                level.downsample = Downsample(widths[i + 1])
            self.conv_blocks.append(level)
        self.mid = _middle(widths[-1], attention)
        self.norm_out, self.conv_out = group_norm(widths[-1]), nn.Conv2d(widths[-1], z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.conv_blocks:
            h = run_level(level, h, name="res")
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        for block in self.mid:
            h = block(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    """Levels listed deepest first; each has ``blocks + 1`` residual blocks."""

    def __init__(self, multipliers: tuple[int, ...], ch: int = 128, z_channels: int = 256, blocks: int = 2) -> None:
        super().__init__()
        widths = [ch * m for m in reversed(multipliers)]
        self.conv_in = nn.Conv2d(z_channels, widths[0], 3, padding=1)
        self.mid = _middle(widths[0])
        self.conv_blocks = nn.ModuleList()
        channels = widths[0]
        for i, width in enumerate(widths):
            level = residual_level(channels, width, blocks + 1, AttnBlock if i == 0 else None, name="res")
            if i != len(widths) - 1:
                level.upsample = Upsample(width)
            self.conv_blocks.append(level)
            channels = width
        self.norm_out, self.conv_out = group_norm(channels), nn.Conv2d(channels, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(z)
        for block in self.mid:
            h = block(h)
        for level in self.conv_blocks:
            h = run_level(level, h, name="res")
            if hasattr(level, "upsample"):
                h = level.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class VectorQuantizer(nn.Module):
    def __init__(self, codebook_size: int = 16384, dim: int = 8) -> None:
        super().__init__()
        self.embedding = nn.Embedding(codebook_size, dim)

    def codebook(self) -> torch.Tensor:
        return F.normalize(self.embedding.weight, p=2, dim=-1)

    def ids(self, z: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) codes -> (N, h, w) ids of the nearest L2-normalised entries."""
        flat = F.normalize(z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]), p=2, dim=-1)
        return nearest_codes(flat, self.codebook()).reshape(z.shape[0], z.shape[2], z.shape[3])

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """(N, h, w) ids -> (N, C, h, w) normalised code vectors."""
        return self.codebook()[ids].permute(0, 3, 1, 2)


class LlamaGenVQModel(nn.Module):
    def __init__(self, variant: str = "ds16", codebook_size: int = 16384, codebook_dim: int = 8, ch: int = 128,
                 z_channels: int = 256) -> None:  # fmt: skip
        super().__init__()
        multipliers = CHANNEL_MULTIPLIERS[variant]
        self.encoder = Encoder(multipliers, ch, z_channels)
        self.decoder = Decoder(multipliers, ch, z_channels)
        self.quantize = VectorQuantizer(codebook_size, codebook_dim)
        self.quant_conv = nn.Conv2d(z_channels, codebook_dim, 1)
        self.post_quant_conv = nn.Conv2d(codebook_dim, z_channels, 1)


def checkpoint_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The model weights of a LlamaGen ``.pt`` (under ``ema``, ``model`` or ``state_dict``)."""
    return unwrap_state_dict(path, ("ema", "model", "state_dict"), "quantize.embedding.weight", "LlamaGen VQ", IGNORED_KEYS)


class LlamaGenVQ(NetworkTokenizer):
    """A LlamaGen VQ checkpoint: ``checkpoint`` (weights-store name), ``weights=PATH`` (a
    ``.pt``), or the same architecture inside a larger hub model: ``repo`` with the key
    ``prefix`` of the VQ (Janus-Pro: ``deepseek-ai/Janus-Pro-1B``, ``gen_vision_model.``)."""

    def __init__(self, variant: str = "ds16", checkpoint: str = "llamagen-vq-ds16-c2i", weights: str | None = None,
                 native_resolution: int = 256, dtype: str = "float32", repo: str | None = None, revision: str | None = None,
                 prefix: str | None = None) -> None:  # fmt: skip
        if variant not in CHANNEL_MULTIPLIERS:
            raise ValueError(f"LlamaGen variant {variant!r} is not one of {', '.join(CHANNEL_MULTIPLIERS)}")
        self.name, self.variant, self.checkpoint, self.dtype_name = f"llamagen-vq-{variant}", variant, checkpoint, dtype
        self.repo, self.revision, self.prefix = repo, revision, prefix
        self.dtype = compute_dtype(dtype)
        path = local_path(weights)
        if prefix and (repo or (path and path.is_dir())):
            folder = path or repository_folder(repo, revision)
            self.weights_path, self.weights_sha256 = folder, ""  # a folder of shards: no single digest
            state = {k: v.float() for k, v in submodel_tensors(folder, prefix, None if path else repo, revision).items()}
            state = {k: v for k, v in state.items() if k not in IGNORED_KEYS}
        else:
            self.weights_path, self.weights_sha256 = find_checkpoint(weights, checkpoint)
            state = checkpoint_state_dict(self.weights_path)
        codebook_size, codebook_dim = state["quantize.embedding.weight"].shape
        ch, z_channels = state["encoder.conv_in.weight"].shape[0], state["encoder.conv_out.weight"].shape[0]  # 128, 256 published
        self.model = LlamaGenVQModel(variant, codebook_size, codebook_dim, ch, z_channels)
        load_exactly(self.model, state, self.weights_path, f"LlamaGen VQ-{variant[2:]}")
        self.model.eval().requires_grad_(False).to(self.dtype)
        self.model.quantize.float()  # nearest codes in float32 whatever the network's dtype
        self.factor = 2 ** (len(CHANNEL_MULTIPLIERS[variant]) - 1)
        grid = native_resolution // self.factor
        inside = bool(self.prefix and self.repo and not path)  # the VQ of a larger model: its license is the model's (see the preset)
        self.info = TokenizerInfo(
            family="discrete", quantizer="vq", codebook_size=codebook_size, token_grid=(grid, grid), tokens_per_image=grid * grid,
            native_resolution=native_resolution, accepts_any_size=True, input_range=(-1.0, 1.0), license="" if inside else "MIT",
            source=f"hf://{self.repo} ({self.prefix}*)" if inside else str(self.weights_path), paper="arXiv:2406.06525",
            extra={"downsampling": self.factor, "codebook_dim": codebook_dim, "weights_sha256": self.weights_sha256,
                   "parameters": self.parameter_count()},
        )  # fmt: skip

    def options(self) -> dict[str, Any]:
        return {"variant": self.variant, "checkpoint": self.checkpoint, "weights": str(self.weights_path), "dtype": self.dtype_name,
                "repo": self.repo, "revision": self.revision, "prefix": self.prefix}  # fmt: skip

    def encode(self, images: torch.Tensor) -> Tokens:
        height, width = images.shape[-2:]
        if height % self.factor or width % self.factor:
            raise ValueError(f"LlamaGen VQ-{self.variant[2:]} needs sides divisible by {self.factor}, got {width}x{height}")
        ids = self.model.quantize.ids(self.model.quant_conv(self.model.encoder(self._input(images))).float())
        return Tokens.from_ids(ids, self.info.codebook_size, (height, width))

    def decode(self, tokens: Tokens) -> torch.Tensor:
        codes = self.model.quantize.lookup(tokens.data).to(self.dtype)
        return self._output(self.model.decoder(self.model.post_quant_conv(codes)))
