"""The generator contract: sample ``i`` of a run is a fixed function of ``i``.

A run asks for samples by index (:meth:`Generator.samples`), so the images are the same
whatever the batch size, the process that makes them or the point a run resumes from.
Images leave as float32 (N, 3, H, W) in [0, 1], like tokenizer output. A generator whose
samples already exist as files can instead expose them as a dataset (``as_dataset``),
which the engine then loads in DataLoader workers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any

import torch


class Generator(ABC):
    """Produces sample images by index."""

    name: str = "generator"
    description: str = ""

    @abstractmethod
    def samples(self, indices: Sequence[int]) -> torch.Tensor:
        """Samples ``indices`` of the run's sample plan: (B, 3, H, W) float in [0, 1]."""

    def generate(self, batch_size: int = 32) -> Iterator[torch.Tensor]:
        """Every sample in order, ``batch_size`` at a time (needs ``num_samples``)."""
        if self.num_samples is None:
            raise ValueError(f"generator {self.name!r} has no fixed sample count; ask for samples by index")
        for start in range(0, self.num_samples, batch_size):
            yield self.samples(range(start, min(start + batch_size, self.num_samples)))

    @property
    def num_samples(self) -> int | None:
        """How many images the generator will yield when that is fixed (sample readers)."""
        return None

    def options(self) -> dict[str, Any]:
        return {}

    # A generator with networks also defines ``to(device)``: the engine calls it with the run's
    # device before asking for samples.
