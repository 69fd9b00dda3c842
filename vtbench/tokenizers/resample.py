"""The resample baseline: downscale by a factor, store 8-bit pixels, upscale back."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from PIL import Image

from vtbench.images import FILTERS
from vtbench.tokenizers.base import Tokenizer, TokenizerInfo, Tokens, from_uint8_hwc, to_uint8_hwc

_POOL = ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1))


class ResampleTokenizer(Tokenizer):
    """Downscale by ``factor`` with ``filter`` (Pillow, antialiased), keep uint8, upscale back."""

    def __init__(self, factor: int = 4, filter: str = "bicubic") -> None:
        if int(factor) < 1:
            raise ValueError(f"resample factor must be >= 1, got {factor}")
        if filter not in FILTERS:
            raise ValueError(f"resample filter {filter!r} is not one of {', '.join(FILTERS)}")
        self.factor, self.filter = int(factor), filter
        self.name = f"resample-x{self.factor}"
        self.info = TokenizerInfo(
            family="pixel",
            quantizer="uint8",
            codebook_size=256,
            source=f"Pillow {Image.__version__}",
            extra={"filter": filter, "factor": self.factor},
        )

    def options(self) -> dict[str, Any]:
        return {"factor": self.factor, "filter": self.filter}

    def _small_size(self, height: int, width: int) -> tuple[int, int]:
        return max(1, round(width / self.factor)), max(1, round(height / self.factor))

    def encode(self, images: torch.Tensor) -> Tokens:
        height, width = images.shape[2], images.shape[3]
        small_size = self._small_size(height, width)

        def down(array: np.ndarray) -> np.ndarray:
            return np.asarray(Image.fromarray(array, "RGB").resize(small_size, FILTERS[self.filter]))

        small = torch.from_numpy(np.stack(list(_POOL.map(down, to_uint8_hwc(images)))))
        per_image = small[0].numel()
        n = images.shape[0]
        return Tokens(
            data=small,
            bits=torch.full((n,), 8.0 * per_image, dtype=torch.float64),
            counts=torch.full((n,), per_image, dtype=torch.int64),
            image_size=(height, width),
            indices=small,
            codebook_size=256,
        )

    def decode(self, tokens: Tokens) -> torch.Tensor:
        height, width = tokens.image_size

        def up(array: np.ndarray) -> np.ndarray:
            return np.asarray(Image.fromarray(array, "RGB").resize((width, height), FILTERS[self.filter]))

        return from_uint8_hwc(list(_POOL.map(up, list(tokens.data.numpy()))), self.device)
