"""Metrics of clips: TokenBench's whole-clip PSNR and temporal consistency (flicker).

Per-frame PSNR, SSIM and LPIPS need nothing here: on a batch of clips every image metric scores
each frame, and the runner averages the frames of each clip (see ``Metric.on_clips``).
"""

from __future__ import annotations

import torch

from vtbench.metrics.base import MeanMetric, MetricBatch
from vtbench.metrics.frechet import FrechetDistance
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


I3D_SIZE = 224


def i3d_input(clips: torch.Tensor, size: int = I3D_SIZE) -> torch.Tensor:
    """Clips as the I3D detector takes them (TokenBench's rFVD preparation): (N, T, 3, H, W) in
    [0, 1] -> (N, 3, T, size, size) in [-1, 1]; each frame's short side resized to ``size``
    (bilinear, half-pixel centres, no antialiasing), then the centre ``size`` x ``size`` crop."""
    n, t, c, height, width = clips.shape
    scale = size / min(height, width)
    resized = (max(size, round(height * scale)), max(size, round(width * scale)))
    frames = torch.nn.functional.interpolate(clips.flatten(0, 1), size=resized, mode="bilinear", align_corners=False)
    top, left = (resized[0] - size) // 2, (resized[1] - size) // 2
    frames = frames[..., top : top + size, left : left + size]
    return frames.reshape(n, t, c, size, size).transpose(1, 2).mul(2).sub(1)


class FVD(FrechetDistance):
    """Fréchet Video Distance (rFVD): the Fréchet distance between the I3D features (400-d
    Kinetics logits, ``return_features=True``) of the original and the reconstructed clips."""

    on_clips = "clips"
    needs_clips = True
    required_weights = ("i3d-torchscript",)
    higher_is_better = False

    def __init__(self) -> None:
        super().__init__(extractor="i3d-torchscript", feature="logits", dim=400, name="fvd")
        self.extractor = None  # its own network, fed whole clips (the shared extractors take images)
        self.feature_dims = {}
        self.reference_keys = None
        self.description = "Fréchet Video Distance of I3D features, reconstructed vs original clips (lower is better)"
        self.detector: torch.jit.ScriptModule | None = None

    def prepare(self, located: dict, device: torch.device) -> None:
        # The common I3D file is TorchScript: loaded with torch.jit (TorchScript's own loader,
        # not pickle), from the weights store, its SHA-256 in the record.
        import warnings

        self.device = device
        with warnings.catch_warnings():  # torch marks torch.jit deprecated; the published detector is TorchScript
            warnings.simplefilter("ignore", FutureWarning)
            self.detector = torch.jit.load(str(located["i3d-torchscript"].path), map_location=device).eval()

    def update(self, batch: MetricBatch) -> None:
        if self.detector is None:
            raise ValueError("fvd: the I3D detector is not loaded (prepare was not called)")
        t = batch.frames_per_clip
        for side, frames in (("originals", batch.originals), ("reconstructions", batch.reconstructions)):
            clips = i3d_input(as_clips(frames, t).to(self.device))
            with torch.inference_mode():
                features = self.detector(clips, rescale=False, resize=False, return_features=True).to(torch.float64).cpu()
            setattr(self, f"{side}_n", getattr(self, f"{side}_n") + features.shape[0])
            setattr(self, f"{side}_sum", getattr(self, f"{side}_sum") + features.sum(dim=0))
            setattr(self, f"{side}_outer", getattr(self, f"{side}_outer") + features.T @ features)
        return None

    def parameters(self) -> dict:
        return {**super().parameters(), "detector": "I3D (Kinetics-400), rescale=False, resize=False, return_features=True",
                "input": f"short side {I3D_SIZE} bilinear, centre crop {I3D_SIZE}, [-1, 1], (N, 3, T, H, W)"}  # fmt: skip

    def warnings(self) -> list[str]:
        if self.count < self.dim:
            return [f"{self.count} clips < feature dimension {self.dim}: the covariance is rank-deficient and fvd is strongly "
                    "biased by the clip count; compare only runs with equal clip counts"]  # fmt: skip
        return []
