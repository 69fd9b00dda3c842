"""What the tokenizers with sampling decoders (FlowMo, FlexTok) share: their sampler options,
checked, and noise that depends on an image, never on the batch it is decoded in."""

from __future__ import annotations

import hashlib
import math

import torch


def check_sampler_options(family: str, steps: int, guidance: float, seed: int) -> None:
    """Refuse, naming the option, steps < 1, a non-integer seed, or a guidance scale that is not positive."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"{family} steps={steps!r}: expected a whole number >= 1")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"{family} seed={seed!r}: expected a whole number")
    if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or not math.isfinite(guidance) or guidance <= 0:
        raise ValueError(f"{family} guidance={guidance!r}: expected a positive number (1 turns guidance off)")


def seeded_normal(seed: int, key: bytes, shape: tuple[int, ...]) -> torch.Tensor:
    """Standard normal noise of ``shape`` from a CPU generator seeded with ``seed`` and ``key``
    (an image's ids or pixels as bytes): the same on every device and in every batch."""
    digest = hashlib.sha256(seed.to_bytes(8, "little", signed=True) + key).digest()
    return torch.randn(shape, generator=torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1)))
