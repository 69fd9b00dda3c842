"""Structural similarity (Wang et al. 2004) with an 11x11 Gaussian window, sigma 1.5."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vtbench.metrics.base import MeanMetric, MetricBatch

K1, K2 = 0.01, 0.03


def gaussian_kernel_1d(sigma: float = 1.5, truncate: float = 3.5, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Normalised 1-D Gaussian taps; radius ``int(truncate * sigma + 0.5)`` as scipy.ndimage."""
    radius = int(truncate * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    taps = torch.exp(-0.5 * (x / sigma) ** 2)
    return (taps / taps.sum()).to(dtype)


def ssim(preds: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, sigma: float = 1.5, per_channel: bool = False) -> torch.Tensor:
    """Per-image mean SSIM, averaged over channels: (N, C, H, W) -> float64 (N,).

    Matches ``skimage.metrics.structural_similarity(..., gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, data_range=..., channel_axis=-1)``: the SSIM
    map is computed where the whole window fits (skimage's border crop) and averaged.
    Images must be at least as large as the window (11 px for sigma 1.5).
    """
    if preds.shape != target.shape:
        raise ValueError(f"ssim: shapes differ: {tuple(preds.shape)} vs {tuple(target.shape)}")
    dtype = torch.float32 if preds.dtype != torch.float64 else torch.float64
    taps = gaussian_kernel_1d(sigma, dtype=dtype).to(preds.device)
    size = taps.numel()
    n, channels, height, width = preds.shape
    if height < size or width < size:
        raise ValueError(f"ssim: image {height}x{width} is smaller than the {size}x{size} window")
    x = preds.to(dtype).reshape(n * channels, 1, height, width)
    y = target.to(dtype).reshape(n * channels, 1, height, width)
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # (NC, 5, H, W)
    filtered = F.conv2d(stack, taps.view(1, 1, 1, size).expand(5, 1, 1, size), groups=5)
    filtered = F.conv2d(filtered, taps.view(1, 1, size, 1).expand(5, 1, size, 1), groups=5)
    mu_x, mu_y, xx, yy, xy = filtered.to(torch.float64).unbind(dim=1)
    var_x, var_y, cov = xx - mu_x * mu_x, yy - mu_y * mu_y, xy - mu_x * mu_y
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    per_channel_mean = ssim_map.flatten(1).mean(dim=1).view(n, channels)
    return per_channel_mean if per_channel else per_channel_mean.mean(dim=1)


class SSIM(MeanMetric):
    """SSIM (Gaussian window 11, sigma 1.5), mean over channels then images."""

    name = "ssim"
    higher_is_better = True
    description = "Structural similarity, Gaussian 11x11 window (sigma 1.5), scikit-image compatible"

    def score(self, batch: MetricBatch) -> torch.Tensor:
        return ssim(batch.reconstructions, batch.originals)
