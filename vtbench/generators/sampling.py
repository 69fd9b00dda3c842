"""Sampling maths shared by the autoregressive generators, each with its reference formula.

- classifier-free guidance on logits: ``uncond + scale * (cond - uncond)`` (LlamaGen's and
  VAR's form; ``scale`` 1 is the conditional model alone);
- temperature: logits divided by ``max(temperature, 1e-5)``;
- top-k: keep the logits at least as large as the k-th largest;
- top-p (nucleus): keep the smallest set of most likely tokens whose probability reaches
  ``top_p`` (the token that crosses it is kept), at least one token;
- one draw per row from its own ``torch.Generator``, so sample *i* depends only on its own
  seed, not on the batch it was drawn in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


def guided_logits(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance: ``uncond + scale * (cond - uncond)``; (B, V) each."""
    return uncond + (cond - uncond) * scale


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """(B, V) logits with everything outside the top-k / top-p set at -inf (a new tensor).
    ``top_k`` 0 and ``top_p`` 1.0 keep every token."""
    logits = logits.clone()
    if top_k > 0:
        k = min(top_k, logits.shape[-1])
        kth = torch.topk(logits, k, dim=-1).values[..., -1:]
        logits[logits < kth] = float("-inf")
    if top_p < 1.0:
        ordered, order = torch.sort(logits, dim=-1, descending=True)
        cumulative = torch.softmax(ordered, dim=-1).cumsum(dim=-1)
        drop = cumulative > top_p
        drop[..., 1:] = drop[..., :-1].clone()  # keep the token that crosses top_p
        drop[..., 0] = False
        logits[drop.scatter(-1, order, drop)] = float("-inf")
    return logits


def sample_rows(logits: torch.Tensor, generators: Sequence[torch.Generator], temperature: float = 1.0, top_k: int = 0,
                top_p: float = 1.0) -> torch.Tensor:  # fmt: skip
    """One token per row of (B, V) ``logits``, row *b* drawn with ``generators[b]``: (B,) int64.
    The draw is an inverse-CDF lookup of one uniform number, so a row's token depends only
    on its logits and its own generator."""
    return sample_grid(logits[:, None], generators, temperature, top_k, top_p)[:, 0]


def sample_grid(logits: torch.Tensor, generators: Sequence[torch.Generator], temperature: float = 1.0, top_k: int = 0,
                top_p: float = 1.0) -> torch.Tensor:  # fmt: skip
    """(B, L, V) logits -> (B, L) tokens, row *b*'s L draws made with ``generators[b]`` (in
    position order), so a sample's tokens do not depend on the other rows of its batch."""
    batch, length, vocab = logits.shape
    probs = torch.softmax(filter_logits(logits.float().reshape(-1, vocab) / max(temperature, 1e-5), top_k, top_p), dim=-1)
    cumulative = probs.double().cumsum(dim=-1).view(batch, length, vocab)
    uniforms = torch.stack([torch.rand(length, generator=g, dtype=torch.float64) for g in generators]).to(cumulative.device)
    tokens = torch.searchsorted(cumulative, (uniforms * cumulative[..., -1]).unsqueeze(-1)).squeeze(-1)
    return tokens.clamp(max=vocab - 1)


@dataclass(frozen=True)
class ClassPlan:
    """Which class and seed sample *i* gets: ``per_class`` samples of each of ``num_classes``
    classes, class ``i % num_classes`` (so any prefix is balanced across classes), seed
    ``seed * 1_000_003 + i``. 50 x 1,000 is the ImageNet gFID protocol's 50,000 samples."""

    num_classes: int = 1000
    per_class: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        for name, least in (("num_classes", 1), ("per_class", 1), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be a whole number of at least {least}, got {value!r}")

    @property
    def num_samples(self) -> int:
        return self.num_classes * self.per_class

    def label(self, index: int) -> int:
        return index % self.num_classes

    def generator(self, index: int, device: torch.device | str = "cpu") -> torch.Generator:
        """A fresh random stream for sample ``index`` (on the CPU: streams are the same on every machine)."""
        return torch.Generator("cpu").manual_seed(self.seed * 1_000_003 + index)
