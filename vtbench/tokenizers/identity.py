"""The identity tokenizer: 8-bit RGB pixels as tokens; the upper bound of every metric."""

from __future__ import annotations

import torch

from vtbench.tokenizers.base import Tokenizer, TokenizerInfo, Tokens


class IdentityTokenizer(Tokenizer):
    """Pixels as tokens (3 bytes per pixel): the upper bound for every metric."""

    name = "identity"
    info = TokenizerInfo(family="pixel", quantizer="uint8", codebook_size=256, source="vtbench", exact_levels=True)

    def encode(self, images: torch.Tensor) -> Tokens:
        n, channels, height, width = images.shape
        pixels = images.mul(255).round_().to(torch.uint8)  # inputs are in [0, 1] by contract
        per_image = channels * height * width
        return Tokens(
            data=pixels,
            bits=torch.full((n,), 8.0 * per_image, dtype=torch.float64),
            counts=torch.full((n,), per_image, dtype=torch.int64),
            image_size=(height, width),
            indices=pixels,
            codebook_size=256,
        )

    def decode(self, tokens: Tokens) -> torch.Tensor:
        return tokens.data.to(torch.float32) / 255.0
