"""What the tokens cost: bits per pixel and tokens per image, from the tokenizer's output."""

from __future__ import annotations

import torch

from vtbench.metrics.base import MeanMetric, MetricBatch


def bits_per_pixel(bits: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Storage bits of each image's tokens divided by its pixel count: (N,) -> (N,)."""
    return bits.to(torch.float64) / float(height * width)


class _TokenMetric(MeanMetric):
    kind = "cost"
    higher_is_better = False
    on_clips = "clips"  # tokens are per clip

    def update(self, batch: MetricBatch) -> torch.Tensor | None:
        if batch.tokens is None:
            raise ValueError(f"{self.name} needs tokens; this run has none (a generation run?)")
        return super().update(batch)


class BitsPerPixel(_TokenMetric):
    """Bits per pixel of the tokens (actual encoded bytes for codecs): each image's bits over
    its own pixels, averaged over images. The record's ``cost.bits_per_pixel`` is pooled
    (total bits / total pixels); the two agree when all images have one size."""

    name = "bpp"
    unit = "bit/px"
    description = "Bits per pixel of the tokens at the evaluation resolution, mean over images (clips: per frame; lower is cheaper)"

    def score(self, batch: MetricBatch) -> torch.Tensor:
        height, width = batch.originals.shape[-2:]
        return bits_per_pixel(batch.tokens.bits, height, width) / batch.frames_per_clip


class TokensPerImage(_TokenMetric):
    """Number of tokens per image (bytes for codecs); per clip for clips."""

    name = "tokens"
    unit = "tokens"
    description = "Tokens per image (encoded bytes for codecs, subpixels for pixel baselines)"

    def score(self, batch: MetricBatch) -> torch.Tensor:
        return batch.tokens.counts.to(torch.float64)


class TokensPerSecond(_TokenMetric):
    """Tokens per second of video: each clip's tokens over its duration (frames / fps)."""

    name = "tokens-per-second"
    unit = "tokens/s"
    needs_clips = True
    description = "Tokens per second of video (clips only; bytes for codecs)"

    def score(self, batch: MetricBatch) -> torch.Tensor:
        if batch.fps is None:
            raise ValueError("tokens-per-second needs each clip's frame rate; the dataset does not give it")
        return batch.tokens.counts.to(torch.float64) * torch.tensor(batch.fps, dtype=torch.float64) / batch.frames_per_clip
