"""BSQ-ViT: binary spherical quantization with ViT encoder/decoder (arXiv 2406.07548), written here.

The image is cut into p x p patches (features ordered channel, row, column), embedded by
a bias-free linear layer, and run through a pre-norm ViT; a linear layer projects each
patch token to L dimensions (18 or 36), which are L2-normalised and quantized to their
signs, so each token is an L-bit code; the codes, scaled by 1/sqrt(L), go through the
decoder ViT, a tanh MLP and a linear layer back to patches. Images go in as [-1, 1];
reconstructions are clamped to it. Token ids put channel 0 at the most significant bit.

Checkpoints (from the authors' storage, not the hub) hold ``state_dict`` (keys prefixed
``module.``) and ``ema_state_dict`` (``module.module.``) beside pickled training objects;
those are read as inert placeholders (:mod:`vtbench.safe_load`), never constructed. ``ema=True``
(the default) uses the EMA weights, as the official loader does.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vtbench.safe_load import load_checkpoint
from vtbench.tokenizers.base import TokenizerInfo, Tokens, bits_to_ids, ids_to_signs
from vtbench.tokenizers.neural import NetworkTokenizer, compute_dtype, find_checkpoint, load_exactly
from vtbench.tokenizers.transformer_blocks import ResidualAttentionBlock


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(width, heads) for _ in range(layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x)
        return x


class ViTEncoder(nn.Module):
    def __init__(self, tokens: int, patch: int, width: int, layers: int, heads: int) -> None:
        super().__init__()
        self.conv1 = nn.Linear(3 * patch * patch, width, bias=False)
        self.positional_embedding = nn.Parameter(torch.zeros(tokens, width))
        self.ln_pre, self.transformer, self.ln_post = nn.LayerNorm(width), Transformer(width, layers, heads), nn.LayerNorm(width)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return self.ln_post(self.transformer(self.ln_pre(self.conv1(patches) + self.positional_embedding)))


class ViTDecoder(nn.Module):
    def __init__(self, tokens: int, patch: int, width: int, layers: int, heads: int) -> None:
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.zeros(tokens, width))
        self.ln_pre, self.transformer, self.ln_post = nn.LayerNorm(width), Transformer(width, layers, heads), nn.LayerNorm(width)
        self.ffn = nn.Sequential(nn.Linear(width, 4 * width), nn.Tanh())
        self.conv_out = nn.Linear(4 * width, 3 * patch * patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.ffn(self.ln_post(self.transformer(self.ln_pre(x + self.positional_embedding)))))


class BinarySphericalQuantizer(nn.Module):
    def __init__(self, bits: int) -> None:
        super().__init__()
        self.register_buffer("basis", 2 ** torch.arange(bits - 1, -1, -1, dtype=torch.int64))  # channel 0 = top bit


class BSQViTModel(nn.Module):
    def __init__(self, image_size: int = 256, patch: int = 8, width: int = 768, layers: int = 12, heads: int = 12, bits: int = 18) -> None:
        super().__init__()
        tokens = (image_size // patch) ** 2
        self.patch = patch
        self.encoder, self.decoder = ViTEncoder(tokens, patch, width, layers, heads), ViTDecoder(tokens, patch, width, layers, heads)
        self.quantize = BinarySphericalQuantizer(bits)
        self.quant_embed, self.post_quant_embed = nn.Linear(width, bits), nn.Linear(bits, width)

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, H/p * W/p, 3 * p * p), features ordered (channel, row, column)."""
        n, c, height, width = x.shape
        p = self.patch
        return x.reshape(n, c, height // p, p, width // p, p).permute(0, 2, 4, 1, 3, 5).reshape(n, -1, c * p * p)

    def unpatchify(self, patches: torch.Tensor, height: int, width: int) -> torch.Tensor:
        n, p = patches.shape[0], self.patch
        grid = patches.reshape(n, height // p, width // p, 3, p, p).permute(0, 3, 1, 4, 2, 5)
        return grid.reshape(n, 3, height, width)


def checkpoint_state_dict(path: Path, ema: bool) -> dict[str, torch.Tensor]:
    checkpoint = load_checkpoint(path)
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{path}: not a BSQ-ViT checkpoint (expected a dict with state_dict)")
    if ema and isinstance(checkpoint.get("ema_state_dict"), dict):
        state, prefix = checkpoint["ema_state_dict"], "module.module."
    else:
        state, prefix = checkpoint.get("state_dict", checkpoint), "module."
    state = {k.removeprefix(prefix).removeprefix("module."): v for k, v in state.items()}
    if "quant_embed.weight" not in state or "encoder.conv1.weight" not in state:
        raise ValueError(f"{path}: not a BSQ-ViT checkpoint (no quant_embed.weight / encoder.conv1.weight)")
    return {k: v for k, v in state.items() if k != "quantize.group_basis"}


class BSQViT(NetworkTokenizer):
    """A BSQ-ViT checkpoint (``checkpoint``: weights-store name, or ``weights=PATH``); the
    architecture is read from the weights, ``heads`` (not visible in shapes) is 12 as published."""

    def __init__(self, checkpoint: str = "bsq-vit-b18", weights: str | None = None, heads: int = 12, ema: bool = True,
                 dtype: str = "float32") -> None:  # fmt: skip
        self.name, self.checkpoint, self.ema, self.heads, self.dtype_name = checkpoint, checkpoint, bool(ema), int(heads), dtype
        self.dtype = compute_dtype(dtype)
        self.weights_path, self.weights_sha256 = find_checkpoint(weights, checkpoint)
        state = checkpoint_state_dict(self.weights_path, self.ema)
        width, patch_features = state["encoder.conv1.weight"].shape
        patch = math.isqrt(patch_features // 3)
        tokens = state["encoder.positional_embedding"].shape[0]
        self.image_size = math.isqrt(tokens) * patch
        bits = state["quant_embed.weight"].shape[0]
        layers = 1 + max(int(k.split(".")[3]) for k in state if k.startswith("encoder.transformer.resblocks."))
        self.model = BSQViTModel(self.image_size, patch, width, layers, self.heads, bits)
        load_exactly(self.model, state, self.weights_path, "BSQ-ViT")
        self.model.eval().requires_grad_(False).to(self.dtype)
        self.bits = bits
        grid = self.image_size // patch
        self.info = TokenizerInfo(
            family="discrete", quantizer="bsq", codebook_size=2**bits, token_grid=(grid, grid), tokens_per_image=tokens,
            native_resolution=self.image_size, accepts_any_size=False, input_range=(-1.0, 1.0), license="MIT",
            source=str(self.weights_path), paper="arXiv:2406.07548",
            extra={"patch": patch, "width": width, "layers": layers, "heads": self.heads, "bits_per_token": bits,
                   "bit_order": "channel 0 = MSB", "ema_weights": self.ema, "parameters": self.parameter_count(),
                   "weights_sha256": self.weights_sha256},
        )  # fmt: skip

    def options(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "weights": str(self.weights_path), "heads": self.heads, "ema": self.ema,
                "dtype": self.dtype_name}  # fmt: skip

    def encode(self, images: torch.Tensor) -> Tokens:
        n, _, height, width = images.shape
        if (height, width) != (self.image_size, self.image_size):
            raise ValueError(f"BSQ-ViT encodes {self.image_size}x{self.image_size} images (learned positions), got {width}x{height}")
        model = self.model
        h = F.normalize(model.quant_embed(model.encoder(model.patchify(self._input(images)))), dim=-1)
        ids = bits_to_ids(h > 0, dim=-1, lsb_first=False)  # (N, tokens), channel 0 = the top bit
        return Tokens.from_ids(ids, self.info.codebook_size, (height, width))

    def decode(self, tokens: Tokens) -> torch.Tensor:
        model, (height, width) = self.model, tokens.image_size
        codes = ids_to_signs(tokens.data, self.bits, dim=-1, lsb_first=False, dtype=self.dtype)
        patches = model.decoder(model.post_quant_embed(codes / math.sqrt(self.bits)))
        return self._output(model.unpatchify(patches, height, width).clamp(-1, 1))
