"""Frequency response: how much of the original's spectrum survives, band by band.

Each image's luminance (BT.601 weights, mean removed, 2-D Hann window) is Fourier
transformed; power is summed in radial bands of normalised frequency (cycles per pixel,
16 bands from 0 to Nyquist 0.5, so any image size works), in float64 over the dataset:

- ``power_ratio[b] = P_recon[b] / P_orig[b]``: the power transfer (1 = kept, < 1 = blurred,
  > 1 = added detail);
- ``fidelity[b] = 1 - P_error[b] / P_orig[b]``: 1 when the error has no power there, 0 or
  below when the error is as strong as the signal (hallucinated texture scores low here
  even when its power is right);
- ``cutoff``: the highest band (upper edge, cycles/pixel) up to which fidelity stays >= 0.5;
- ``hf-fidelity``: fidelity over all bands above 0.25 cycles/pixel together (the table number).
"""

from __future__ import annotations

from typing import Any

import torch

from vtbench.metrics.base import Metric, MetricBatch

BANDS = 16
NYQUIST = 0.5
HIGH_FREQUENCY = 0.25  # cycles/pixel: where hf-fidelity starts
CUTOFF_FIDELITY = 0.5
LUMA = (0.299, 0.587, 0.114)


def band_powers(images: torch.Tensor, bands: int = BANDS) -> torch.Tensor:
    """(N, 3, H, W) in [0, 1] -> (N, bands) float64 power per radial frequency band."""
    n, _, height, width = images.shape
    luma = torch.tensor(LUMA, dtype=torch.float64, device=images.device).view(1, 3, 1, 1)
    grey = (images.double() * luma).sum(dim=1)
    grey = grey - grey.mean(dim=(-2, -1), keepdim=True)
    window = torch.outer(torch.hann_window(height, periodic=False, dtype=torch.float64, device=images.device),
                         torch.hann_window(width, periodic=False, dtype=torch.float64, device=images.device))  # fmt: skip
    power = torch.fft.rfft2(grey * window).abs().square()
    fy = torch.fft.fftfreq(height, dtype=torch.float64, device=images.device).abs().view(-1, 1)
    fx = torch.fft.rfftfreq(width, dtype=torch.float64, device=images.device).view(1, -1)
    radius = torch.sqrt(fy**2 + fx**2)
    weight = torch.ones_like(radius)
    weight[:, 1 : (width - 1) // 2 + 1] = 2  # rfft2 keeps half the columns: count mirrored ones twice
    band = (radius / (NYQUIST / bands)).floor().long()
    inside = band < bands
    index = band[inside]
    flat = (power * weight)[:, inside]
    out = torch.zeros(n, bands, dtype=torch.float64, device=images.device)
    return out.index_add_(1, index, flat).cpu()


def fidelity_curve(original: torch.Tensor, error: torch.Tensor) -> torch.Tensor:
    return 1 - error / original.clamp(min=1e-30)


def cutoff_frequency(fidelity: torch.Tensor, threshold: float = CUTOFF_FIDELITY) -> float:
    """Upper edge (cycles/pixel) of the last band before fidelity first drops below ``threshold``."""
    below = (fidelity < threshold).nonzero()
    last_kept = int(below[0]) if len(below) else len(fidelity)
    return last_kept * NYQUIST / len(fidelity)


def high_frequency_fidelity(original: torch.Tensor, error: torch.Tensor) -> float:
    first = int(HIGH_FREQUENCY / (NYQUIST / original.shape[-1]))
    return float(1 - error[..., first:].sum(-1) / original[..., first:].sum(-1).clamp(min=1e-30))


class FrequencyResponse(Metric):
    """``hf-fidelity`` (default) or ``frequency-cutoff``, with the per-band curves in details."""

    kind = "quality"
    higher_is_better = True
    aggregation = "pooled spectra"

    def __init__(self, output: str = "hf-fidelity") -> None:
        super().__init__()
        if output not in ("hf-fidelity", "frequency-cutoff"):
            raise ValueError(f"frequency response output {output!r}")
        self.output = self.name = output
        self.unit = "" if output == "hf-fidelity" else "cycles/pixel"
        self.description = (
            "1 - error power / original power above 0.25 cycles/pixel"
            if output == "hf-fidelity"
            else "highest frequency (cycles/pixel) up to which fidelity >= 0.5"
        )
        for side in ("original", "reconstruction", "error"):
            self.add_state(f"{side}_power", torch.zeros(BANDS, dtype=torch.float64), "sum")
        self.add_state("n", torch.zeros((), dtype=torch.int64), "sum")

    def update(self, batch: MetricBatch) -> torch.Tensor:
        original = band_powers(batch.originals)
        reconstruction = band_powers(batch.reconstructions)
        error = band_powers(batch.reconstructions - batch.originals)
        self.original_power = self.original_power + original.sum(0)
        self.reconstruction_power = self.reconstruction_power + reconstruction.sum(0)
        self.error_power = self.error_power + error.sum(0)
        self.n = self.n + len(original)
        if self.output == "hf-fidelity":
            return torch.tensor([high_frequency_fidelity(o, e) for o, e in zip(original, error, strict=True)], dtype=torch.float64)
        return torch.tensor([cutoff_frequency(fidelity_curve(o, e)) for o, e in zip(original, error, strict=True)], dtype=torch.float64)

    def compute(self) -> float:
        if not int(self.n):
            return float("nan")
        if self.output == "hf-fidelity":
            return high_frequency_fidelity(self.original_power, self.error_power)
        return cutoff_frequency(fidelity_curve(self.original_power, self.error_power))

    def details(self) -> dict[str, Any]:
        if not int(self.n):
            return {}
        width = NYQUIST / BANDS
        return {
            "band_centres": [round((b + 0.5) * width, 5) for b in range(BANDS)],
            "power_ratio": (self.reconstruction_power / self.original_power.clamp(min=1e-30)).tolist(),
            "fidelity": fidelity_curve(self.original_power, self.error_power).tolist(),
            "cutoff": cutoff_frequency(fidelity_curve(self.original_power, self.error_power)),
            "unit": "cycles/pixel",
        }
