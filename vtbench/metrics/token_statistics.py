"""How predictable and how stable a discrete tokenizer's codes are: what an autoregressive
generator trained on them has to model.

- ``code-entropy-n1`` .. ``-n3``: the conditional entropy (bits per token) of a code given
  its n - 1 predecessors in raster order of the id tensor (row-major over the token grid;
  within each scale for multi-scale tokenizers), pooled over the run. Estimator: the plug-in
  entropies of the n-gram and of its (n - 1)-gram context, H(X | C) = H(C, X) - H(C), each
  with the Miller–Madow correction (m - 1) / (2 N ln 2) bits for m occupied bins and N
  n-grams; the plug-in value is in the details. Positions with fewer than n - 1
  predecessors are not counted. Lower: easier to predict (read it beside the reconstruction
  quality: a constant code is perfectly predictable and useless). The details add the
  per-position entropy for 1-D tokenizers and the per-scale entropy for multi-scale ones.
- ``token-consistency-shift``, ``-flip``, ``-jpeg``: per image, the fraction of ids unchanged
  when the input is shifted by one pixel (right, edge replicated), mirrored horizontally
  (ids compared at mirrored positions of the token grid, whose width is dim 2 of (N, h, w, ...)), or re-compressed as JPEG
  (quality 90, 4:4:4) before encoding.
- ``reencode-stability``: per image, the fraction of ids that survive encode -> decode ->
  encode; the details give the id agreement with the first encoding and the PSNR against
  the original after each of k round trips (the drift that compounds in AR sampling).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from vtbench.metrics.base import MeanMetric, Metric, MetricBatch
from vtbench.metrics.codebook import entropy_bits, merge_histograms

MAX_ORDER = 3


def _grouped(rows: torch.Tensor, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum ``counts`` over identical ``rows`` (M, k) -> (distinct rows, summed counts)."""
    if rows.shape[1] == 0:
        return rows[:1], counts.sum().reshape(1)
    return merge_histograms(rows[:0], counts[:0], rows, counts)


def conditional_entropy(rows: torch.Tensor, counts: torch.Tensor) -> dict[str, float]:
    """n-gram ``rows`` (M, n), the last column the predicted code, with their ``counts`` ->
    plug-in and Miller–Madow conditional entropies (bits) and the counts behind them."""
    total = int(counts.sum())
    if not total:
        return {"plug_in_bits": math.nan, "miller_madow_bits": math.nan, "ngrams": 0, "distinct_ngrams": 0, "distinct_contexts": 0}
    joint_rows, joint_counts = _grouped(rows, counts)
    _, context_counts = _grouped(joint_rows[:, :-1], joint_counts)
    plug_in = entropy_bits(joint_counts) - entropy_bits(context_counts)
    correction = (len(joint_counts) - len(context_counts)) / (2 * total * math.log(2))
    return {"plug_in_bits": max(plug_in, 0.0), "miller_madow_bits": max(plug_in + correction, 0.0), "ngrams": total,
            "distinct_ngrams": len(joint_counts), "distinct_contexts": len(context_counts)}  # fmt: skip


def ngrams(ids: torch.Tensor, order: int, level_sizes: tuple[int, ...] | None = None) -> torch.Tensor:
    """Raster-order n-grams of each image's ids: (N, ...) -> (M, 1 + order) rows of
    (level, predecessors..., code), taken within each scale for multi-scale ids."""
    flat = ids.reshape(len(ids), -1).to(torch.int64).cpu()
    sizes = level_sizes or (flat.shape[1],)
    rows, start = [], 0
    for level, size in enumerate(sizes):
        sequence = flat[:, start : start + size]
        start += size
        if size < order:
            continue
        windows = sequence.unfold(1, order, 1).reshape(-1, order)  # (N * (size - order + 1), order)
        rows.append(torch.cat([torch.full((len(windows), 1), level, dtype=torch.int64), windows], dim=1))
    return torch.cat(rows) if rows else torch.zeros(0, 1 + order, dtype=torch.int64)


class CodeEntropy(Metric):
    """Conditional entropy of a code given its ``order - 1`` raster predecessors (bits/token)."""

    kind = "cost"
    higher_is_better = False
    unit = "bit/token"
    aggregation = "pooled over all tokens"

    def __init__(self, order: int = 1) -> None:
        super().__init__()
        if not 1 <= int(order) <= MAX_ORDER:
            raise ValueError(f"code entropy order must be 1 to {MAX_ORDER}, got {order}")
        self.order = int(order)
        self.name = f"code-entropy-n{self.order}"
        self.add_state("rows", torch.zeros(0, 1 + self.order, dtype=torch.int64), "cat")
        self.add_state("row_counts", torch.zeros(0, dtype=torch.int64), "cat")
        self.add_state("positions", torch.zeros(0, 2, dtype=torch.int64), "cat")  # (position, id) for 1-D ids
        self.add_state("position_counts", torch.zeros(0, dtype=torch.int64), "cat")
        self.add_state("n", torch.zeros((), dtype=torch.int64), "sum")
        self.add_state("without_codes", torch.zeros((), dtype=torch.int64), "sum")

    def parameters(self) -> dict[str, Any]:
        return {"order": self.order, "context": f"{self.order - 1} raster-order predecessors", "estimator": "plug-in + Miller-Madow"}

    def update(self, batch: MetricBatch) -> None:
        tokens = batch.tokens
        if tokens is None or tokens.indices is None:
            self.without_codes = self.without_codes + len(batch.ids)
            return None
        rows = ngrams(tokens.indices, self.order, tokens.level_sizes)
        self.rows, self.row_counts = merge_histograms(self.rows, self.row_counts, rows, torch.ones(len(rows), dtype=torch.int64))
        if tokens.indices.dim() == 2 and not tokens.level_sizes and self.order == 1:  # a 1-D tokenizer: each position's entropy
            ids = tokens.indices.to(torch.int64).cpu()
            pairs = torch.stack([torch.arange(ids.shape[1]).expand_as(ids), ids], dim=-1).reshape(-1, 2)
            self.positions, self.position_counts = merge_histograms(
                self.positions, self.position_counts, pairs, torch.ones(len(pairs), dtype=torch.int64)
            )
        self.n = self.n + len(batch.ids)
        return None

    def merge_state(self, other: Metric) -> None:
        assert isinstance(other, CodeEntropy)
        self.rows, self.row_counts = merge_histograms(self.rows, self.row_counts, other.rows, other.row_counts)
        self.positions, self.position_counts = merge_histograms(self.positions, self.position_counts, other.positions,
                                                                other.position_counts)  # fmt: skip
        self.n, self.without_codes = self.n + other.n, self.without_codes + other.without_codes

    def _overall(self) -> dict[str, float]:
        return conditional_entropy(self.rows[:, 1:], self.row_counts)  # the level column marginalised out

    def compute(self) -> float:
        return self._overall()["miller_madow_bits"] if len(self.rows) else float("nan")

    def details(self) -> dict[str, Any]:
        if not len(self.rows):
            return {}
        details: dict[str, Any] = dict(self._overall())
        levels = self.rows[:, 0].unique().tolist()
        if len(levels) > 1:
            details["per_scale"] = [{"scale": level, **conditional_entropy(self.rows[self.rows[:, 0] == level][:, 1:],
                                                                          self.row_counts[self.rows[:, 0] == level])}
                                    for level in levels]  # fmt: skip
        if len(self.positions):
            per_position = []
            for position in self.positions[:, 0].unique().tolist():
                chosen = self.positions[:, 0] == position
                per_position.append(round(entropy_bits(self.position_counts[chosen]), 6))
            details["per_position_entropy_bits"] = per_position
        return details

    def warnings(self) -> list[str]:
        out = []
        if int(self.without_codes):
            out.append(f"{int(self.without_codes)} images had no discrete codes (a continuous tokenizer or a codec): not counted")
        overall = self._overall() if len(self.rows) else None
        if overall and overall["distinct_ngrams"] > overall["ngrams"] / 4:
            out.append(f"{overall['distinct_ngrams']} distinct {self.order}-grams in {overall['ngrams']}: undersampled, the estimate is "
                       "biased low even with the Miller-Madow correction; use more images")  # fmt: skip
        return out


def _ids(tokens: Any) -> torch.Tensor:
    return tokens.indices.reshape(len(tokens.indices), -1).to(torch.int64).cpu()


def _jpeg(images: torch.Tensor, quality: int = 90) -> torch.Tensor:
    """``images`` re-compressed by the JPEG codec tokenizer (4:4:4), on their device."""
    from vtbench.tokenizers.codec import JPEGTokenizer

    recompressed, _ = JPEGTokenizer(quality, "4:4:4").to(images.device).reconstruct(images)
    return recompressed


class TokenConsistency(MeanMetric):
    """Per image, the fraction of ids unchanged under a small change of the input."""

    kind = "cost"
    unit = "fraction"
    on_clips = "no"  # re-encodes single images
    TRANSFORMS = ("shift", "flip", "jpeg")

    def __init__(self, transform: str = "shift") -> None:
        super().__init__()
        if transform not in self.TRANSFORMS:
            raise ValueError(f"token consistency transform {transform!r} is not one of {', '.join(self.TRANSFORMS)}")
        self.transform = transform
        self.name = f"token-consistency-{transform}"
        self.add_state("undefined", torch.zeros((), dtype=torch.int64), "sum")

    def parameters(self) -> dict[str, Any]:
        return {"shift": {"shift": "1 pixel right, edge replicated"}, "flip": {"flip": "horizontal, ids compared at mirrored positions"},
                "jpeg": {"jpeg": "quality 90, 4:4:4, Pillow"}}[self.transform]  # fmt: skip

    def score(self, batch: MetricBatch) -> torch.Tensor:
        tokens, tokenizer = batch.tokens, batch.tokenizer
        if tokens is None or tokens.indices is None or tokenizer is None or tuple(tokens.image_size) != tuple(batch.originals.shape[-2:]):
            self.undefined = self.undefined + len(batch.ids)
            return torch.full((len(batch.ids),), float("nan"), dtype=torch.float64)
        images = batch.originals
        if self.transform == "shift":
            changed = torch.cat([images[..., :1], images[..., :-1]], dim=-1)
        elif self.transform == "flip":
            changed = images.flip(-1)
        else:
            changed = _jpeg(images)
        with torch.inference_mode():
            other = tokenizer.encode(changed).indices
        if self.transform == "flip":
            if tokens.indices.dim() < 3 or tokens.level_sizes:  # mirrored positions need a 2-D grid (N, h, w, ...)
                self.undefined = self.undefined + len(batch.ids)
                return torch.full((len(batch.ids),), float("nan"), dtype=torch.float64)
            other = other.flip(2)
        return (_ids(tokens) == other.reshape(len(other), -1).to(torch.int64).cpu()).to(torch.float64).mean(dim=1)

    def compute(self) -> float:
        return super().compute() if int(self.n) > int(self.undefined) else float("nan")

    def warnings(self) -> list[str]:
        if int(self.undefined):
            return [f"{int(self.undefined)} images: undefined (no discrete ids, tokenizer input not the evaluation image (pad/tile), or "
                    "for flip no 2-D token grid)"]  # fmt: skip
        return []


class ReencodeStability(MeanMetric):
    """Per image, the fraction of ids that survive encode -> decode -> encode."""

    kind = "cost"
    unit = "fraction"
    name = "reencode-stability"
    on_clips = "no"  # re-encodes single images

    def __init__(self, round_trips: int = 3) -> None:
        super().__init__()
        self.round_trips = int(round_trips)
        if self.round_trips < 1:
            raise ValueError(f"reencode-stability needs round_trips >= 1, got {round_trips}")
        self.add_state("agreement_sums", torch.zeros(self.round_trips, dtype=torch.float64), "sum")
        self.add_state("psnr_sums", torch.zeros(self.round_trips, dtype=torch.float64), "sum")
        self.add_state("counted", torch.zeros((), dtype=torch.int64), "sum")

    def parameters(self) -> dict[str, Any]:
        return {"round_trips": self.round_trips, "rounding": "each decode clamped and rounded to 8 bits before re-encoding"}

    def score(self, batch: MetricBatch) -> torch.Tensor:
        from vtbench.metrics.psnr import psnr

        tokens, tokenizer = batch.tokens, batch.tokenizer
        if tokens is None or tokens.indices is None or tokenizer is None or tuple(tokens.image_size) != tuple(batch.originals.shape[-2:]):
            return torch.full((len(batch.ids),), float("nan"), dtype=torch.float64)
        first, images, values = _ids(tokens), batch.reconstructions, None
        with torch.inference_mode():
            for trip in range(self.round_trips):
                again = tokenizer.encode(images)
                agreement = (first == _ids(again)).to(torch.float64).mean(dim=1)
                values = agreement if values is None else values
                images = tokenizer.decode(again).clamp(0, 1).mul(255).round().div(255)
                self.agreement_sums[trip] += agreement.sum()
                self.psnr_sums[trip] += psnr(batch.originals, images).to(torch.float64).cpu().sum()
        self.counted = self.counted + len(batch.ids)
        return values

    def details(self) -> dict[str, Any]:
        if not int(self.counted):
            return {}
        n = int(self.counted)
        return {"id_agreement_by_round_trip": [round(float(v) / n, 6) for v in self.agreement_sums],
                "psnr_by_round_trip": [round(float(v) / n, 6) for v in self.psnr_sums]}  # fmt: skip
