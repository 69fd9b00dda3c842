"""Multi-scale SSIM (Wang, Simoncelli, Bovik 2003): five scales, 2x2 average pooling."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vtbench.metrics.base import MeanMetric, MetricBatch
from vtbench.metrics.ssim import ssim_and_contrast

BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def ms_ssim(preds: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, betas: tuple[float, ...] = BETAS) -> torch.Tensor:
    """Per-image MS-SSIM: (N, C, H, W) -> float64 (N,).

    At each scale but the coarsest, the contrast-structure term is averaged over channels
    and valid window positions; at the coarsest, SSIM is averaged over the whole image with
    reflect padding (torchmetrics' convention). Each is clamped at 0 (``normalize="relu"``),
    raised to its beta, and the five are multiplied. Equals ``torchmetrics``
    ``multiscale_structural_similarity_index_measure(..., data_range=1.0)``. Needs sides
    of at least 176 px.
    """
    factors = []
    x, y = preds, target
    radius = 5  # the 11-tap window
    for scale in range(len(betas)):
        if scale < len(betas) - 1:
            value = ssim_and_contrast(x, y, data_range)[1]
        else:
            padding = (radius, radius, radius, radius)
            value = ssim_and_contrast(F.pad(x, padding, mode="reflect"), F.pad(y, padding, mode="reflect"), data_range)[0]
        factors.append(value.mean(dim=1).clamp(min=0) ** betas[scale])
        x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return torch.stack(factors).prod(dim=0)


class MSSSIM(MeanMetric):
    """Multi-scale SSIM (5 scales), mean over images."""

    name = "ms-ssim"
    higher_is_better = True
    description = "Multi-scale SSIM, 5 scales (torchmetrics-compatible)"
    min_size = 176

    def parameters(self) -> dict:
        from vtbench.metrics.ssim import SSIM_PARAMETERS

        return {**SSIM_PARAMETERS, "scales": len(BETAS), "betas": list(BETAS), "downsampling": "2x2 average pooling",
                "normalize": "relu", "coarsest_scale": "SSIM with reflect padding (torchmetrics)"}  # fmt: skip

    def score(self, batch: MetricBatch) -> torch.Tensor:
        return ms_ssim(batch.reconstructions, batch.originals)
