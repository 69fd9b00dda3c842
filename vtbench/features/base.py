"""The feature-extractor contract: uint8 images in, named feature tensors out.

One extractor instance is shared by every metric of a run that uses it, so each batch
goes through each network once (FID, KID, IS and precision/recall share Inception).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch

from vtbench.weights import Located


class FeatureExtractor(ABC):
    """Maps (N, 3, H, W) uint8 RGB images to ``{feature name: (N, D) float tensor}``."""

    name: str = "extractor"
    provides: tuple[str, ...] = ()
    weights: tuple[str, ...] = ()  # weights-store names this extractor loads
    description: str = ""
    version: str = "1"  # bumped when the architecture or preprocessing changes the features

    def __init__(self, located: dict[str, Located], device: torch.device) -> None:
        self.located, self.device = located, device

    @abstractmethod
    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """(N, 3, H, W) uint8 on ``device`` -> features (float32, on ``device``)."""

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "weights": [w.to_dict() for w in self.located.values()]}
