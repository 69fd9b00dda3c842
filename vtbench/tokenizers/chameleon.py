"""Chameleon / Anole image tokenizer (Meta's Chameleon, arXiv 2405.09818), written here.

A taming-transformers VQGAN: encoder and decoder with channel multipliers (1, 1, 2, 2, 4)
(16x downsampling), attention only in the middle, 1x1 ``quant_conv``/``post_quant_conv``
to a 256-d code, and 8192 codes searched by plain squared L2. At 512 px an image is
32 x 32 = 1024 tokens. transformers ships only the encoder; the decoder is here, so the
tokenizer can reconstruct. The checkpoint (``tokenizer/vqgan.ckpt``, identical in Meta's
release and GAIR's Anole) holds ``{"state_dict": ...}``; only the model's keys are read.
Images go in as [-1, 1]; reconstructions are clamped to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from vtbench.safe_load import load_checkpoint
from vtbench.tokenizers.base import TokenizerInfo, Tokens, nearest_codes
from vtbench.tokenizers.conv_blocks import TamingDecoder, TamingEncoder
from vtbench.tokenizers.neural import Codebook, NetworkTokenizer, compute_dtype, find_checkpoint, load_exactly

MULTIPLIERS = (1, 1, 2, 2, 4)
MODEL_PREFIXES = ("encoder.", "decoder.", "quantize.", "quant_conv.", "post_quant_conv.")


class ChameleonVQGAN(nn.Module):
    def __init__(self, codes: int = 8192, embed_dim: int = 256, z_channels: int = 256, ch: int = 128) -> None:
        super().__init__()
        self.encoder = TamingEncoder(ch, MULTIPLIERS, z_channels)
        self.decoder = TamingDecoder(ch, MULTIPLIERS, z_channels)
        self.quantize = Codebook(codes, embed_dim)
        self.quant_conv = nn.Conv2d(z_channels, embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(embed_dim, z_channels, 1)


def checkpoint_state_dict(path: Path) -> dict[str, torch.Tensor]:
    checkpoint = load_checkpoint(path)
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or "quantize.embedding.weight" not in state or "decoder.conv_out.weight" not in state:
        raise ValueError(f"{path}: not a Chameleon VQGAN checkpoint (no quantize.embedding.weight / decoder.conv_out.weight)")
    return {k: v for k, v in state.items() if k.startswith(MODEL_PREFIXES)}


class ChameleonTokenizer(NetworkTokenizer):
    """The Chameleon/Anole VQGAN (``checkpoint``: weights-store name, or ``weights=PATH``)."""

    def __init__(self, checkpoint: str = "chameleon-vqgan", weights: str | None = None, native_resolution: int = 512,
                 dtype: str = "float32") -> None:  # fmt: skip
        self.name, self.checkpoint, self.dtype_name = "chameleon-vqgan", checkpoint, dtype
        self.dtype = compute_dtype(dtype)
        self.weights_path, self.weights_sha256 = find_checkpoint(weights, checkpoint)
        state = checkpoint_state_dict(self.weights_path)
        codes, embed_dim = state["quantize.embedding.weight"].shape
        z_channels, ch = state["quant_conv.weight"].shape[1], state["encoder.conv_in.weight"].shape[0]
        self.model = ChameleonVQGAN(codes, embed_dim, z_channels, ch)
        load_exactly(self.model, state, self.weights_path, "Chameleon VQGAN")
        self.model.eval().requires_grad_(False).to(self.dtype)
        self.factor = 2 ** (len(MULTIPLIERS) - 1)
        grid = native_resolution // self.factor
        self.info = TokenizerInfo(
            family="discrete", quantizer="vq", codebook_size=codes, token_grid=(grid, grid), tokens_per_image=grid * grid,
            native_resolution=native_resolution, input_range=(-1.0, 1.0), license="Chameleon Research License",
            source=str(self.weights_path), paper="arXiv:2405.09818",
            extra={"downsampling": self.factor, "codebook_dim": embed_dim, "parameters": self.parameter_count(),
                   "weights_sha256": self.weights_sha256},
        )  # fmt: skip

    def options(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "weights": str(self.weights_path), "dtype": self.dtype_name}

    def encode(self, images: torch.Tensor) -> Tokens:
        n, _, height, width = images.shape
        if height % self.factor or width % self.factor:
            raise ValueError(f"Chameleon VQGAN needs sides divisible by {self.factor}, got {width}x{height}")
        z = self.model.quant_conv(self.model.encoder(self._input(images))).float()
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])  # distances in float32 whatever the compute dtype
        codebook = self.model.quantize.embedding.weight.float()
        ids = nearest_codes(flat, codebook).reshape(n, z.shape[2], z.shape[3])
        return Tokens.from_ids(ids, self.info.codebook_size, (height, width))

    def decode(self, tokens: Tokens) -> torch.Tensor:
        codes = self.model.quantize.embedding(tokens.data).permute(0, 3, 1, 2)
        return self._output(self.model.decoder(self.model.post_quant_conv(codes)).clamp(-1, 1))
