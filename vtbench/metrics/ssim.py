"""Structural similarity (Wang et al. 2004) with an 11x11 Gaussian window, sigma 1.5."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vtbench.metrics.base import MeanMetric, MetricBatch

K1, K2 = 0.01, 0.03
SSIM_PARAMETERS = {
    "window": "gaussian", "sigma": 1.5, "window_size": 11, "k1": K1, "k2": K2, "data_range": 1.0,
    "covariance": "population (use_sample_covariance=False)", "border": "valid window positions only (scikit-image's crop)",
    "channels": "per channel, then averaged",
}  # fmt: skip


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
    Images must be at least as large as the window (11 px for sigma 1.5). Large images
    are processed in chunks of planes or horizontal strips, so memory stays bounded.
    """
    per_plane, _ = ssim_and_contrast(preds, target, data_range, sigma)
    return per_plane if per_channel else per_plane.mean(dim=1)


def ssim_and_contrast(
    preds: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, sigma: float = 1.5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SSIM and mean contrast-structure term ``(2 cov + C2) / (var_x + var_y + C2)`` of
    each image plane over the valid window positions: (N, C, H, W) -> two float64 (N, C)."""
    if preds.shape != target.shape:
        raise ValueError(f"ssim: shapes differ: {tuple(preds.shape)} vs {tuple(target.shape)}")
    dtype = torch.float32 if preds.dtype != torch.float64 else torch.float64
    taps = gaussian_kernel_1d(sigma, dtype=dtype).to(preds.device)
    size = taps.numel()
    n, channels, height, width = preds.shape
    if height < size or width < size:
        raise ValueError(f"ssim: image {height}x{width} is smaller than the {size}x{size} window")
    x = preds.reshape(n * channels, height, width)
    y = target.reshape(n * channels, height, width)
    out_h, out_w = height - size + 1, width - size + 1
    sums = torch.zeros(2, n * channels, dtype=torch.float64, device=preds.device)
    on_cpu = preds.device.type == "cpu"
    planes_at_once = (_CPU_CACHE_PIXELS if on_cpu else _MAX_PIXELS_AT_ONCE * 16) // (height * width)
    if planes_at_once >= 1 or height * width <= _MAX_PIXELS_AT_ONCE:  # whole planes, a few at a time
        planes_at_once = max(1, planes_at_once)
        for first in range(0, n * channels, planes_at_once):
            chunk = slice(first, first + planes_at_once)
            sums[:, chunk] = _ssim_map_sums(x[chunk].to(dtype), y[chunk].to(dtype), taps, data_range)
    else:  # one plane in horizontal strips
        rows = max(1, _MAX_PIXELS_AT_ONCE // width - size + 1)
        for plane in range(n * channels):
            for top in range(0, out_h, rows):
                strip = slice(top, min(top + rows, out_h) + size - 1)
                sums[:, plane] += _ssim_map_sums(
                    x[plane : plane + 1, strip].to(dtype), y[plane : plane + 1, strip].to(dtype), taps, data_range
                )[:, 0]
    means = sums / (out_h * out_w)
    return means[0].view(n, channels), means[1].view(n, channels)


_MAX_PIXELS_AT_ONCE = 2**20  # bounds the ~6 float32 buffers of this size that SSIM needs
_CPU_CACHE_PIXELS = 2**16  # on CPU, planes are filtered a few at a time so their buffers stay in cache


def gaussian_filter_valid(images: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Separable filtering of the last two axes, where the whole window fits: (..., H, W) ->
    (..., H - k + 1, W - k + 1). On CPU as k shifted multiply-adds per axis, columns first
    (depthwise convolutions are slow there); elsewhere as two depthwise convolutions."""
    size = taps.numel()
    height, width = images.shape[-2] - size + 1, images.shape[-1] - size + 1
    if images.device.type != "cpu":
        flat = images.reshape(-1, 1, *images.shape[-2:])
        filtered = F.conv2d(F.conv2d(flat, taps.view(1, 1, 1, size)), taps.view(1, 1, size, 1))
        return filtered.view(*images.shape[:-2], height, width)
    weights = taps.tolist()
    columns = images[..., :height, :] * weights[0]
    for shift in range(1, size):
        columns.add_(images[..., shift : shift + height, :], alpha=weights[shift])
    out = columns[..., :width] * weights[0]
    for shift in range(1, size):
        out.add_(columns[..., shift : shift + width], alpha=weights[shift])
    return out


def _ssim_map_sums(x: torch.Tensor, y: torch.Tensor, taps: torch.Tensor, data_range: float) -> torch.Tensor:
    """Sums of the valid SSIM map and contrast map of each plane: (P, H, W) twice -> float64 (2, P)."""
    stack = torch.stack([x, y, x * x, y * y, x * y], dim=1)  # (P, 5, H, W)
    mu_x, mu_y, xx, yy, xy = gaussian_filter_valid(stack, taps).unbind(dim=1)
    del stack
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    mu_xy = mu_x * mu_y
    mu_xx, mu_yy = mu_x.square_(), mu_y.square_()
    variances = xx.sub_(mu_xx).add_(yy.sub_(mu_yy)).add_(c2)  # var_x + var_y + C2
    contrast = xy.sub_(mu_xy).mul_(2).add_(c2).div_(variances)  # (2 cov + C2) / (var_x + var_y + C2)
    luminance = mu_xy.mul_(2).add_(c1).div_(mu_xx.add_(mu_yy).add_(c1))  # (2 mu_x mu_y + C1) / (mu_x² + mu_y² + C1)
    contrast_sums = contrast.flatten(1).sum(dim=1, dtype=torch.float64)
    return torch.stack([luminance.mul_(contrast).flatten(1).sum(dim=1, dtype=torch.float64), contrast_sums])


class SSIM(MeanMetric):
    """SSIM (Gaussian window 11, sigma 1.5), mean over channels then images."""

    name = "ssim"
    higher_is_better = True
    description = "Structural similarity, Gaussian 11x11 window (sigma 1.5), scikit-image compatible"
    min_size = 11

    def score(self, batch: MetricBatch) -> torch.Tensor:
        return ssim(batch.reconstructions, batch.originals)

    def parameters(self) -> dict:
        return SSIM_PARAMETERS
