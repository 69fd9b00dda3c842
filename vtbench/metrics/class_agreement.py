"""Class agreement: does an ImageNet classifier see the same thing in the reconstruction?

Top-1: the reconstruction's top class equals the original's. Top-5: the original's top
class is among the reconstruction's five most likely. A semantic-preservation score that
runs offline with EfficientNet-Lite0's real ImageNet weights.
"""

from __future__ import annotations

import torch

from vtbench.metrics.base import MeanMetric, MetricBatch


def class_agreement(original_logits: torch.Tensor, recon_logits: torch.Tensor, k: int = 1) -> torch.Tensor:
    """(N, C) logits twice -> float64 (N,): 1 where the original's top class is in the reconstruction's top k."""
    reference = original_logits.argmax(dim=1, keepdim=True)
    top_k = recon_logits.topk(k, dim=1).indices
    return (top_k == reference).any(dim=1).to(torch.float64)


class ClassAgreement(MeanMetric):
    """Share of images whose ImageNet class survives reconstruction (top-k)."""

    higher_is_better = True
    unit = "fraction"
    feature_dims = {"logits": 1000}

    def __init__(self, k: int = 1, extractor: str = "efficientnet-lite0") -> None:
        super().__init__()
        self.k, self.extractor = k, extractor
        self.name = f"class-agreement-top{k}"
        self.description = f"Original's top-1 ImageNet class among the reconstruction's top {k} ({extractor})"

    def score(self, batch: MetricBatch) -> torch.Tensor:
        features = batch.features[self.extractor]
        return class_agreement(features["originals"]["logits"], features["reconstructions"]["logits"], self.k).cpu()
