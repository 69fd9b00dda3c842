"""IBQ: Index Backpropagation Quantization (TencentARC/SEED-Voken, arXiv 2412.02692).

A taming-transformers VQGAN (channel multipliers (1, 1, 2, 2, 4), 4 residual blocks per
encoder level and 5 per decoder level, attention at the deepest level and in the middle,
1x1 ``quant_conv``/``post_quant_conv`` around a 256-d code) whose quantizer picks the code
with the largest dot product z . e (a softmax over those logits in training; its argmax at
inference), not the nearest one, with codebooks of 1,024 to 262,144 entries. At 256 px an
image is 16 x 16 = 256 tokens. Images go in as [-1, 1]; reconstructions are clamped to it.

Checkpoints hold ``{"state_dict": ...}`` with the raw weights and EMA copies of every one
(``model_ema.<name without dots>``); the published numbers are the EMA weights' (the
evaluation runs in the EMA scope), so ``ema=True`` (the default) loads those and requires
every one of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from vtbench.safe_load import load_checkpoint
from vtbench.tokenizers.base import TokenizerInfo, Tokens
from vtbench.tokenizers.conv_blocks import TamingDecoder, TamingEncoder
from vtbench.tokenizers.neural import Codebook, NetworkTokenizer, compute_dtype, find_checkpoint, load_exactly

MULTIPLIERS = (1, 1, 2, 2, 4)
MODEL_PREFIXES = ("encoder.", "decoder.", "quantize.", "quant_conv.", "post_quant_conv.")
SCORE_CHUNK = 2**24  # code scores computed at most this many (vectors x codes) at a time


class IBQVQGAN(nn.Module):
    def __init__(self, codes: int = 16384, embed_dim: int = 256, z_channels: int = 256, ch: int = 128, blocks: int = 4) -> None:
        super().__init__()
        deepest = (len(MULTIPLIERS) - 1,)
        self.encoder = TamingEncoder(ch, MULTIPLIERS, z_channels, blocks, attention_levels=deepest)
        self.decoder = TamingDecoder(ch, MULTIPLIERS, z_channels, blocks, attention_levels=deepest)
        self.quantize = Codebook(codes, embed_dim)
        self.quant_conv = nn.Conv2d(z_channels, embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(embed_dim, z_channels, 1)


def checkpoint_state_dict(path: Path, ema: bool) -> dict[str, torch.Tensor]:
    """The model's weights in an IBQ checkpoint; with ``ema`` their EMA copies (all required)."""
    checkpoint = load_checkpoint(path)
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or "quantize.embedding.weight" not in state or "decoder.conv_out.weight" not in state:
        raise ValueError(f"{path}: not an IBQ checkpoint (no quantize.embedding.weight / decoder.conv_out.weight in state_dict)")
    raw = {k: v for k, v in state.items() if k.startswith(MODEL_PREFIXES)}
    if not ema:
        return raw
    missing = [k for k in raw if "model_ema." + k.replace(".", "") not in state]
    if missing:
        raise ValueError(f"{path}: no EMA copy of {len(missing)} weights (e.g. {missing[0]}); pass ema=false to use the raw weights")
    return {k: state["model_ema." + k.replace(".", "")] for k in raw}


def largest_dot_product(vectors: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(M, C) vectors, (K, C) codes -> (M,) index of each vector's largest z . e (ties to the
    lowest index), in float32 and in chunks, so 262,144 codes need no (M, K) tensor at once."""
    vectors, codebook = vectors.float(), codebook.float()
    step = max(1, SCORE_CHUNK // max(1, len(codebook)))
    return torch.cat([(chunk @ codebook.T).argmax(dim=1) for chunk in vectors.split(step)])


class IBQ(NetworkTokenizer):
    """An IBQ checkpoint (``checkpoint``: weights-store name, or ``weights=PATH``)."""

    def __init__(self, checkpoint: str = "ibq-16384", weights: str | None = None, native_resolution: int = 256, ema: bool = True,
                 dtype: str = "float32") -> None:  # fmt: skip
        self.name, self.checkpoint, self.ema, self.dtype_name = checkpoint, checkpoint, bool(ema), dtype
        self.dtype = compute_dtype(dtype)
        self.weights_path, self.weights_sha256 = find_checkpoint(weights, checkpoint)
        state = checkpoint_state_dict(self.weights_path, self.ema)
        codes, embed_dim = state["quantize.embedding.weight"].shape
        z_channels, ch = state["quant_conv.weight"].shape[1], state["encoder.conv_in.weight"].shape[0]
        blocks = 1 + max(int(k.split(".")[4]) for k in state if k.startswith("encoder.down.0.block."))
        self.model = IBQVQGAN(codes, embed_dim, z_channels, ch, blocks)
        load_exactly(self.model, state, self.weights_path, "IBQ")
        self.model.eval().requires_grad_(False).to(self.dtype)
        self.model.quantize.float()  # scores and codes in float32: bf16 would flip near-tied choices
        self.factor = 2 ** (len(MULTIPLIERS) - 1)
        grid = native_resolution // self.factor
        self.info = TokenizerInfo(
            family="discrete", quantizer="vq (dot-product argmax)", codebook_size=codes, token_grid=(grid, grid),
            tokens_per_image=grid * grid, native_resolution=native_resolution, input_range=(-1.0, 1.0), license="Apache-2.0",
            source=str(self.weights_path), paper="arXiv:2412.02692",
            extra={"downsampling": self.factor, "codebook_dim": embed_dim, "blocks": blocks, "ema_weights": self.ema,
                   "parameters": self.parameter_count(), "weights_sha256": self.weights_sha256},
        )  # fmt: skip

    def options(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "weights": str(self.weights_path), "ema": self.ema, "dtype": self.dtype_name}

    def encode(self, images: torch.Tensor) -> Tokens:
        n, _, height, width = images.shape
        if height % self.factor or width % self.factor:
            raise ValueError(f"IBQ needs sides divisible by {self.factor}, got {width}x{height}")
        z = self.model.quant_conv(self.model.encoder(self._input(images)))
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        ids = largest_dot_product(flat, self.model.quantize.embedding.weight).reshape(n, z.shape[2], z.shape[3])
        return Tokens.from_ids(ids, self.info.codebook_size, (height, width))

    def decode(self, tokens: Tokens) -> torch.Tensor:
        codes = self.model.quantize.embedding(tokens.data).permute(0, 3, 1, 2).to(self.dtype)
        return self._output(self.model.decoder(self.model.post_quant_conv(codes)).clamp(-1, 1))
