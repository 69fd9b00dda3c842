"""Codebook statistics of discrete tokenizers: usage, entropy and perplexity of the ids.

Ids are counted sparsely (a sorted list of the ids seen and their counts), so codebooks of
2^18 to 2^64 entries cost memory in proportion to the ids actually used, never to the
codebook size. For binary codebooks (a power-of-two size, ``log2(size)`` <= 63 bits: LFQ,
BSQ) the details add per-bit statistics: how often each bit is 1 and its entropy; for
multi-scale / residual quantizers (VAR) they add usage and entropy per level.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from vtbench.metrics.base import Metric, MetricBatch

MAX_BITS_FOR_BIT_STATISTICS = 63  # ids are int64


def code_histogram(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Any-shaped integer ids -> (distinct ids ascending, their counts), int64 on the CPU."""
    distinct, counts = torch.unique(ids.detach().reshape(-1).to(torch.int64).cpu(), return_counts=True)
    return distinct, counts


def merge_histograms(
    ids_a: torch.Tensor, counts_a: torch.Tensor, ids_b: torch.Tensor, counts_b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two sparse histograms -> one (ids ascending, counts). Ids may be rows (M, k): n-grams."""
    if not len(ids_b):
        return ids_a, counts_a
    distinct, inverse = torch.unique(torch.cat([ids_a, ids_b.to(ids_a.dtype)]), dim=0, return_inverse=True)
    counts = torch.zeros(len(distinct), dtype=torch.int64).scatter_add_(0, inverse, torch.cat([counts_a, counts_b]))
    return distinct, counts


def entropy_bits(counts: torch.Tensor) -> float:
    """Shannon entropy (bits) of the distribution given by ``counts``."""
    total = counts.sum().double()
    if total == 0:
        return float("nan")
    p = counts.double() / total
    return float(-(p * torch.log2(p)).sum())


def bit_statistics(ids: torch.Tensor, counts: torch.Tensor, n_bits: int) -> dict[str, list[float]]:
    """Per bit of a binary code (bit 0 = least significant): P(bit = 1) and its entropy."""
    shifts = torch.arange(n_bits, dtype=torch.int64)
    bits = (ids[:, None] >> shifts) & 1  # (distinct, n_bits)
    ones = (bits * counts[:, None]).sum(dim=0).double() / counts.sum().double()
    p = ones.clamp(1e-12, 1 - 1e-12)
    entropy = -(p * torch.log2(p) + (1 - p) * torch.log2(1 - p))
    return {"p_one": [round(float(v), 6) for v in ones], "entropy_bits": [round(float(v), 6) for v in entropy]}


class CodebookStatistic(Metric):
    """``usage`` (fraction of the codebook used), ``entropy`` (bits per token) or
    ``perplexity`` (2^entropy: the effective number of codes) over the whole run."""

    kind = "cost"
    aggregation = "pooled over all tokens"

    def __init__(self, statistic: str = "usage") -> None:
        super().__init__()
        if statistic not in ("usage", "entropy", "perplexity"):
            raise ValueError(f"codebook statistic {statistic!r} is not one of usage, entropy, perplexity")
        self.statistic = statistic
        self.name = f"codebook-{statistic}"
        self.unit = {"usage": "fraction", "entropy": "bit/token", "perplexity": "codes"}[statistic]
        self.add_state("ids", torch.zeros(0, dtype=torch.int64), "cat")
        self.add_state("id_counts", torch.zeros(0, dtype=torch.int64), "cat")
        self.add_state("n", torch.zeros((), dtype=torch.int64), "sum")
        self.add_state("without_codes", torch.zeros((), dtype=torch.int64), "sum")
        self.add_state("size", torch.zeros((), dtype=torch.int64), "max")
        self.add_state("level_keys", torch.zeros(0, dtype=torch.int64), "cat")  # level * codebook_size + id
        self.add_state("level_counts", torch.zeros(0, dtype=torch.int64), "cat")
        self.add_state("levels", torch.zeros(0, dtype=torch.int64), "max")  # ids per image in each level

    def update(self, batch: MetricBatch) -> None:
        tokens = batch.tokens
        if tokens is None or tokens.indices is None:
            self.without_codes = self.without_codes + len(batch.ids)
            return None
        ids, counts = code_histogram(tokens.indices)
        self.ids, self.id_counts = merge_histograms(self.ids, self.id_counts, ids, counts)
        self.n = self.n + len(batch.ids)
        if tokens.codebook_size:
            self.size = torch.maximum(self.size, torch.tensor(min(tokens.codebook_size, 2**63 - 1)))
        sizes = tokens.level_sizes
        if sizes and tokens.codebook_size and tokens.codebook_size * len(sizes) < 2**62:
            level = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes)).expand(len(batch.ids), -1)
            keys, counts = code_histogram(level * tokens.codebook_size + tokens.indices.reshape(len(batch.ids), -1).cpu())
            self.level_keys, self.level_counts = merge_histograms(self.level_keys, self.level_counts, keys, counts)
            self.levels = torch.tensor(sizes, dtype=torch.int64)
        return None

    def merge_state(self, other: Metric) -> None:
        assert isinstance(other, CodebookStatistic)
        self.ids, self.id_counts = merge_histograms(self.ids, self.id_counts, other.ids, other.id_counts)
        self.n, self.without_codes = self.n + other.n, self.without_codes + other.without_codes
        self.size = torch.maximum(self.size, other.size)
        self.level_keys, self.level_counts = merge_histograms(self.level_keys, self.level_counts, other.level_keys, other.level_counts)
        self.levels = self.levels if len(self.levels) else other.levels

    def compute(self) -> float:
        if not len(self.ids):
            return float("nan")
        if self.statistic == "usage":
            return len(self.ids) / int(self.size) if int(self.size) else float("nan")
        entropy = entropy_bits(self.id_counts)
        return entropy if self.statistic == "entropy" else 2.0**entropy

    def details(self) -> dict[str, Any]:
        if not len(self.ids):
            return {}
        size = int(self.size) or None
        entropy = entropy_bits(self.id_counts)
        details: dict[str, Any] = {
            "codebook_size": size,
            "codes_used": len(self.ids),
            "tokens_counted": int(self.id_counts.sum()),
            "entropy_bits": entropy,
            "max_entropy_bits": math.log2(size) if size else None,
            "perplexity": 2.0**entropy,
        }
        if size and size & (size - 1) == 0 and 1 < size.bit_length() - 1 <= MAX_BITS_FOR_BIT_STATISTICS:
            details["per_bit"] = bit_statistics(self.ids, self.id_counts, size.bit_length() - 1)
        if len(self.level_keys) and size:
            details["per_level"] = self._per_level(size)
        return details

    def _per_level(self, size: int) -> list[dict[str, Any]]:
        level_of = self.level_keys // size
        rows = []
        for level, ids_per_image in enumerate(self.levels.tolist()):
            counts = self.level_counts[level_of == level]
            rows.append({"level": level, "ids_per_image": ids_per_image, "codes_used": len(counts), "usage": len(counts) / size,
                         "entropy_bits": entropy_bits(counts), "perplexity": 2.0 ** entropy_bits(counts)})  # fmt: skip
        return rows

    def warnings(self) -> list[str]:
        missing = int(self.without_codes)
        if not missing:
            return []
        return [f"{missing} images had no discrete codes (a continuous tokenizer or a codec): not counted"]
