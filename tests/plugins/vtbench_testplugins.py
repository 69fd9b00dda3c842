"""Tokenizers and a metric used by the tests, installed as a distribution with entry points.

They misbehave on purpose (slow, NaN, wrong shape) to test how vtbench copes.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import torch

from vtbench.generators.base import Generator
from vtbench.metrics.base import MeanMetric, MetricBatch
from vtbench.tokenizers.base import Tokenizer, TokenizerInfo, Tokens


def _test_hooks(component: object) -> None:
    """What the tests ask of a batch, read from the environment at each call (batches counted
    per instance, from 1): ``VTBENCH_TEST_SLEEP`` seconds of sleep; ``VTBENCH_TEST_INTERRUPT_AT=N``
    a Ctrl-C (SIGINT to this process) while batch N is made; ``VTBENCH_TEST_HOLD=FILE`` at batch
    ``VTBENCH_TEST_HOLD_AT`` (default 1): write FILE.held, then wait until FILE exists."""
    batch = component.__dict__.get("_test_batches", 0) + 1
    component.__dict__["_test_batches"] = batch
    time.sleep(float(os.environ.get("VTBENCH_TEST_SLEEP", "0")))
    if os.environ.get("VTBENCH_TEST_INTERRUPT_AT") == str(batch):
        signal.raise_signal(signal.SIGINT)
    hold = os.environ.get("VTBENCH_TEST_HOLD")
    if hold and os.environ.get("VTBENCH_TEST_HOLD_AT", "1") == str(batch):
        Path(hold + ".held").write_text(str(os.getpid()))
        deadline = time.monotonic() + 300
        while not Path(hold).exists() and time.monotonic() < deadline:
            time.sleep(0.02)


class _Pixels(Tokenizer):
    info = TokenizerInfo(family="pixel", quantizer="none", source="vtbench tests")

    def encode(self, images: torch.Tensor) -> Tokens:
        n, c, h, w = images.shape
        return Tokens(images.clone(), torch.full((n,), 8.0 * c * h * w, dtype=torch.float64), torch.full((n,), c * h * w), (h, w))

    def decode(self, tokens: Tokens) -> torch.Tensor:
        return tokens.data


class SlowIdentity(_Pixels):
    """Identity that sleeps, stops or holds at a batch when the tests ask (for kill-and-resume tests)."""

    def encode(self, images: torch.Tensor) -> Tokens:
        _test_hooks(self)
        return super().encode(images)


class NoisyTokenizer(SlowIdentity):
    """Adds fixed-seed noise, so metrics are finite and resume must reproduce them exactly
    (sleeps, stops or holds when asked, like SlowIdentity)."""

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
    """Sample i is smooth noise seeded by i (48x48); sleeps, stops or holds when asked, like SlowIdentity."""

    description = "deterministic test samples"

    def __init__(self, size: int = 48) -> None:
        self.size = size

    def samples(self, indices) -> torch.Tensor:
        _test_hooks(self)
        images = []
        for index in indices:
            coarse = torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(int(index)))
            images.append(torch.nn.functional.interpolate(coarse, size=(self.size, self.size), mode="bilinear", align_corners=False)[0])
        return torch.stack(images)

    def options(self) -> dict:
        return {"size": self.size}
