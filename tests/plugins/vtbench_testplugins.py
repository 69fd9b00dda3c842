"""Tokenizers and a metric used by the tests, installed as a distribution with entry points.

They misbehave on purpose (slow, NaN, wrong shape) to test how vtbench copes.
"""

from __future__ import annotations

import os
import time

import torch

from vtbench.generators.base import Generator
from vtbench.metrics.base import MeanMetric, MetricBatch
from vtbench.tokenizers.base import Tokenizer, TokenizerInfo, Tokens


class _Pixels(Tokenizer):
    info = TokenizerInfo(family="pixel", quantizer="none", source="vtbench tests")

    def encode(self, images: torch.Tensor) -> Tokens:
        n, c, h, w = images.shape
        return Tokens(images.clone(), torch.full((n,), 8.0 * c * h * w, dtype=torch.float64), torch.full((n,), c * h * w), (h, w))

    def decode(self, tokens: Tokens) -> torch.Tensor:
        return tokens.data


class SlowIdentity(_Pixels):
    """Identity that sleeps VTBENCH_TEST_SLEEP seconds per batch (for kill-and-resume tests)."""

    def encode(self, images: torch.Tensor) -> Tokens:
        time.sleep(float(os.environ.get("VTBENCH_TEST_SLEEP", "0")))
        return super().encode(images)


class NoisyTokenizer(SlowIdentity):
    """Adds fixed-seed noise, so metrics are finite and resume must reproduce them exactly
    (sleeps VTBENCH_TEST_SLEEP seconds per batch, like SlowIdentity)."""

    def decode(self, tokens: Tokens) -> torch.Tensor:
        generator = torch.Generator().manual_seed(int(tokens.data.sum().item() * 1000) % (2**31))
        noise = torch.randn(tokens.data.shape, generator=generator) * 0.05
        return tokens.data + noise.to(tokens.data.device)


class NaNTokenizer(_Pixels):
    """Returns NaN for every image whose mean intensity is below 0.4."""

    def decode(self, tokens: Tokens) -> torch.Tensor:
        out = tokens.data.clone()
        dark = out.flatten(1).mean(dim=1) < 0.4
        out[dark] = float("nan")
        return out


class WrongShapeTokenizer(_Pixels):
    """Returns images of half the input size: a contract violation."""

    def decode(self, tokens: Tokens) -> torch.Tensor:
        return tokens.data[:, :, ::2, ::2]


class MeanAbsoluteError(MeanMetric):
    """Mean absolute pixel error (a plugin metric)."""

    name = "test-mae"
    higher_is_better = False

    def score(self, batch: MetricBatch) -> torch.Tensor:
        return (batch.reconstructions - batch.originals).abs().flatten(1).mean(dim=1).double()


class FailingMetric(MeanMetric):
    """Raises on the second batch it sees: a metric with a bug."""

    name = "test-fails"

    def __init__(self) -> None:
        super().__init__()
        self.batches = 0

    def score(self, batch: MetricBatch) -> torch.Tensor:
        self.batches += 1
        if self.batches == 2:
            raise ZeroDivisionError("a bug in the metric")
        return torch.zeros(len(batch.ids), dtype=torch.float64)


class NoiseGenerator(Generator):
    """Sample i is smooth noise seeded by i (48x48), sleeping VTBENCH_TEST_SLEEP per batch."""

    description = "deterministic test samples"

    def __init__(self, size: int = 48) -> None:
        self.size = size

    def samples(self, indices) -> torch.Tensor:
        time.sleep(float(os.environ.get("VTBENCH_TEST_SLEEP", "0")))
        images = []
        for index in indices:
            coarse = torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(int(index)))
            images.append(torch.nn.functional.interpolate(coarse, size=(self.size, self.size), mode="bilinear", align_corners=False)[0])
        return torch.stack(images)

    def options(self) -> dict:
        return {"size": self.size}
