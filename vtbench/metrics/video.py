"""Metrics of clips: TokenBench's whole-clip PSNR and temporal consistency (flicker).

Per-frame PSNR, SSIM and LPIPS need nothing here: on a batch of clips every image metric scores
each frame, and the runner averages the frames of each clip (see ``Metric.on_clips``).
"""

from __future__ import annotations

import torch

from vtbench.metrics.base import MeanMetric, MetricBatch
from vtbench.metrics.psnr import PSNR, psnr


def as_clips(frames: torch.Tensor, frames_per_clip: int) -> torch.Tensor:
    """(N*T, C, H, W) frames in clip order -> (N, T, C, H, W)."""
    return frames.reshape(-1, frames_per_clip, *frames.shape[1:])


def clip_psnr(reconstructions: torch.Tensor, originals: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-clip PSNR in dB from the MSE over every frame, channel and pixel of the clip (as
    TokenBench scores a whole video, not a mean of per-frame PSNRs).

    reconstructions, originals: (N, T, C, H, W). Returns float64 (N,); ``inf`` for equal clips.
    """
    return psnr(reconstructions.transpose(1, 2).flatten(2, 3), originals.transpose(1, 2).flatten(2, 3), data_range)


def frame_difference_error(reconstructions: torch.Tensor, originals: torch.Tensor) -> torch.Tensor:
    """Per clip, the RMS difference between the reconstruction's frame-to-frame changes and the
    original's, in 8-bit levels: ``sqrt(mean((y[t+1] - y[t] - (x[t+1] - x[t]))^2)) * 255`` over
    t, C, H, W. 0 when the reconstruction changes exactly as the original does; a reconstruction
    that flickers where the original is still, or stands still where it moves, scores high.

    reconstructions, originals: (N, T, C, H, W) in [0, 1], T >= 2. Returns float64 (N,).
    """
    if reconstructions.shape[1] < 2:
        raise ValueError(f"temporal error needs clips of at least 2 frames, got {reconstructions.shape[1]}")
    change = reconstructions.diff(dim=1).double() - originals.diff(dim=1).double()
    return change.square().flatten(1).mean(dim=1).sqrt() * 255.0


class ClipPSNR(PSNR):
    """TokenBench's PSNR: per clip over all its frames at once, mean over clips (capped like ``psnr``)."""

    name = "video-psnr"
    on_clips = "clips"
    description = "PSNR in dB over each whole clip (TokenBench's video PSNR), mean over clips (images: as psnr)"

    def score(self, batch: MetricBatch) -> torch.Tensor:
        t = batch.frames_per_clip
        values = clip_psnr(as_clips(batch.reconstructions, t), as_clips(batch.originals, t))
        capped = values >= self.ceiling_db
        self.at_ceiling = self.at_ceiling + int(capped.sum())
        return torch.where(capped, torch.full_like(values, self.ceiling_db), values)

    def parameters(self) -> dict:
        return {**super().parameters(), "mse": "over T, C, H, W of each clip, summed in float64"}


class Flicker(MeanMetric):
    """Temporal error: :func:`frame_difference_error` per clip, mean over clips."""

    name = "flicker"
    higher_is_better = False
    unit = "levels"
    on_clips = "clips"
    needs_clips = True
    description = "RMS error of the frame-to-frame changes, in 8-bit levels (clips; lower: less flicker)"

    def score(self, batch: MetricBatch) -> torch.Tensor:
        t = batch.frames_per_clip
        return frame_difference_error(as_clips(batch.reconstructions, t), as_clips(batch.originals, t))

    def parameters(self) -> dict:
        return {"difference": "consecutive frames", "error": "RMS over t, C, H, W, in 8-bit levels (x255)"}
