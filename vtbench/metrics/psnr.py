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


PSNR_CEILING_DB = 100.0


class PSNR(MeanMetric):
    """PSNR in dB on [0, 1] images (data range 1), mean over images.

    A lossless image has infinite PSNR; its per-image value is the ceiling (100 dB, like
    VMAF's 60 dB cap for 8-bit PSNR, but above any lossy 8-bit image up to 512x512: one level
    off in one pixel of a 256x256 RGB image is 101 dB), so the mean and its interval stay
    finite and a lossless tokenizer does not outrank the rest by infinity. The details count
    the lossless images. Values above the ceiling are reported as the ceiling.
    """

    name = "psnr"
    higher_is_better = True
    unit = "dB"
    description = f"Peak signal-to-noise ratio in dB, mean over images (per image at most {PSNR_CEILING_DB:g} dB: lossless images)"

    def __init__(self, ceiling_db: float = PSNR_CEILING_DB) -> None:
        super().__init__()
        self.ceiling_db = float(ceiling_db)
        self.add_state("at_ceiling", torch.zeros((), dtype=torch.int64), "sum")

    def score(self, batch: MetricBatch) -> torch.Tensor:
        values = psnr(batch.reconstructions, batch.originals)
        capped = values >= self.ceiling_db
        self.at_ceiling = self.at_ceiling + int(capped.sum())
        return torch.where(capped, torch.full_like(values, self.ceiling_db), values)

    def parameters(self) -> dict:
        return {"data_range": 1.0, "ceiling_db": self.ceiling_db, "mse": "over C, H, W of each image, summed in float64"}

    def details(self) -> dict:
        return {"images_at_ceiling": int(self.at_ceiling)} if int(self.at_ceiling) else {}
