"""Gradients: synthetic colour ramps, made in memory (no files, no download)."""

from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image

from vtbench.datasets.base import Dataset, Sample


class Gradients(Dataset):
    """``count`` images of ``size`` x ``size`` pixels: a horizontal red ramp, a vertical
    green ramp and a constant blue level that differs per image."""

    description = "Synthetic colour ramps made in memory (example plugin)"

    def __init__(self, count: int = 4, size: int = 64) -> None:  # `-d gradients:count=8`
        if count < 1 or size < 2:
            raise ValueError(f"count must be >= 1 and size >= 2, got count={count}, size={size}")
        self.count, self.size = count, size
        self.name = "gradients"

    @property
    def ids(self) -> list[str]:
        return [f"ramp-{i:03d}" for i in range(self.count)]

    def load(self, index: int) -> Sample:
        ramp = np.linspace(0, 255, self.size).round().astype(np.uint8)
        pixels = np.empty((self.size, self.size, 3), dtype=np.uint8)
        pixels[..., 0] = ramp[None, :]
        pixels[..., 1] = ramp[:, None]
        pixels[..., 2] = (index * 37) % 256
        digest = hashlib.sha256(pixels.tobytes()).hexdigest()  # identifies the content in records and caches
        return Sample(self.ids[index], Image.fromarray(pixels, "RGB"), digest)

    def describe(self) -> dict:
        return {**super().describe(), "size": self.size}
