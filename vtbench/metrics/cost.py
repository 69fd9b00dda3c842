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
    description = "Bits per pixel of the tokens at the evaluation resolution, mean over images (lower is cheaper)"

    def score(self, batch: MetricBatch) -> torch.Tensor:
        height, width = batch.originals.shape[-2:]
        return bits_per_pixel(batch.tokens.bits, height, width)


class TokensPerImage(_TokenMetric):
    """Number of tokens per image (bytes for codecs)."""

    name = "tokens"
    unit = "tokens"
    description = "Tokens per image (encoded bytes for codecs, subpixels for pixel baselines)"

    def score(self, batch: MetricBatch) -> torch.Tensor:
        return batch.tokens.counts.to(torch.float64)
