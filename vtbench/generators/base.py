"""The generator contract: images for a list of conditions and seeds.

Generated images leave ``generate`` as float32 (N, 3, H, W) in [0, 1], like tokenizer
output, so generation metrics share the reconstruction code path.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any

import torch


class Generator(ABC):
    """Produces images for (condition, seed) pairs, in batches."""

    name: str = "generator"
    description: str = ""

    @abstractmethod
    def generate(
        self, conditions: Sequence[Any] | None = None, seeds: Sequence[int] | None = None, batch_size: int = 32
    ) -> Iterator[torch.Tensor]:
        """Yield batches (B, 3, H, W) float in [0, 1]; ``conditions``/``seeds`` pair up."""

    @property
    def num_samples(self) -> int | None:
        """How many images the generator will yield when that is fixed (sample readers)."""
        return None

    def options(self) -> dict[str, Any]:
        return {}
