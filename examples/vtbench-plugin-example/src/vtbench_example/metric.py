"""Mean absolute error in 8-bit levels: a per-image metric averaged over images."""

from __future__ import annotations

import torch

from vtbench.metrics.base import MeanMetric, MetricBatch


class MeanAbsoluteError(MeanMetric):
    """Mean |reconstruction - original| over pixels and channels, in 8-bit levels (0-255)."""

    name = "mean-abs-error"
    description = "Mean absolute error in 8-bit levels (example plugin)"
    higher_is_better = False
    unit = "levels"

    def score(self, batch: MetricBatch) -> torch.Tensor:
        """(N,) float64: one value per image of the batch."""
        difference = (batch.reconstructions.double() - batch.originals.double()).abs()
        return 255.0 * difference.flatten(1).mean(dim=1)
