"""Peak signal-to-noise ratio."""

from __future__ import annotations

import torch

from vtbench.metrics.base import MeanMetric, MetricBatch


def psnr(preds: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-image PSNR in dB: ``10 log10(data_range^2 / MSE)``, MSE over C, H, W summed in float64.

    preds, target: (N, C, H, W). Returns float64 (N,); ``inf`` where the images are equal.

    >>> x = torch.zeros(1, 3, 8, 8)
    >>> round(float(psnr(x + 0.1, x)), 4)
    20.0
    """
    if preds.shape != target.shape:
        raise ValueError(f"psnr: shapes differ: {tuple(preds.shape)} vs {tuple(target.shape)}")
    squared_error = (preds - target).square_() if preds.dtype != torch.float64 else (preds - target).square()
    flat = squared_error.flatten(1)
    mse = flat.sum(dim=1, dtype=torch.float64) / flat.shape[1]
    return 10.0 * torch.log10(data_range**2 / mse)


class PSNR(MeanMetric):
    """PSNR in dB on [0, 1] images (data range 1), mean over images."""

    name = "psnr"
    higher_is_better = True
    unit = "dB"
    description = "Peak signal-to-noise ratio in dB, mean over images (inf for identical images)"

    def score(self, batch: MetricBatch) -> torch.Tensor:
        return psnr(batch.reconstructions, batch.originals)
