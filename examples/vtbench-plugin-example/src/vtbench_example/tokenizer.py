"""Posterize: a uniform scalar quantizer with 2**bits levels per RGB channel."""

from __future__ import annotations

import torch

from vtbench.tokenizers.base import Tokenizer, TokenizerInfo, Tokens


class Posterize(Tokenizer):
    """Uniform scalar quantizer: 2**bits levels per RGB channel, 3 * bits bits per pixel."""

    description = "Uniform scalar quantizer with 2**bits levels per channel (example plugin)"  # `vtbench list`
    tags = {"family": "discrete", "quantizer": "scalar"}  # `vtbench list --family`, `vtbench show`

    def __init__(self, bits: int = 4) -> None:  # `-t NAME:bits=3` becomes Posterize(bits=3)
        if not 1 <= bits <= 8:
            raise ValueError(f"bits must be in 1..8, got {bits}")
        self.bits = bits
        self.info = TokenizerInfo(family="discrete", quantizer="scalar", codebook_size=2**bits, source="vtbench-plugin-example")

    def options(self) -> dict:
        return {"bits": self.bits}  # written into every record

    def encode(self, images: torch.Tensor) -> Tokens:
        n, channels, height, width = images.shape
        levels = 2**self.bits
        ids = (images.clamp(0, 1) * levels).floor().clamp(max=levels - 1).to(torch.int64)
        per_image = channels * height * width
        return Tokens(
            data=ids,
            bits=torch.full((n,), float(self.bits * per_image), dtype=torch.float64),
            counts=torch.full((n,), per_image),
            image_size=(height, width),
            indices=ids,
        )

    def decode(self, tokens: Tokens) -> torch.Tensor:
        return (tokens.data.to(torch.float32) + 0.5) / 2**self.bits


class Posterize4Bit(Posterize):
    """The preset users type as ``posterize-4bit``: 4 bits per channel (12 bits per pixel)."""

    description = "Posterize to 4 bits per channel, 12 bits per pixel (example plugin)"
