"""Fréchet distance between Gaussians fitted to features: FID (Inception) and the same
distance in other feature spaces (named for their space, e.g. ``fd-efficientnet-lite0``).

Statistics are accumulated as float64 running sums (count, sum, sum of outer products),
never as stored features, so memory is fixed whatever the dataset size.
"""

from __future__ import annotations

import numpy as np
import torch

from vtbench.metrics.base import Metric, MetricBatch

SIDES = ("originals", "reconstructions")


NOISE = 1e-6  # relative to tr(S1) + tr(S2): a negative distance smaller than this is rounding


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, n1: int | None = None, n2: int | None = None
) -> float:
    """``|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))``.

    ``tr((S1 S2)^(1/2))`` is taken as the sum of the square roots of the eigenvalues of the
    symmetric ``S2^(1/2) S1 S2^(1/2)`` (similar to ``S1 S2``, so the same eigenvalues): two
    symmetric eigendecompositions instead of a general one, and ``S2^(1/2)`` (the
    reference's side) is reused across runs that share it. With the sample counts ``n1``,
    ``n2`` known, a covariance of n samples has rank at most n - 1: eigenvalues beyond that
    rank are exactly zero and only rounding noise in floating point, so they are dropped
    (with few images, their square roots would otherwise add up to a visible, run-to-run
    varying amount). The result is clamped at 0 when it is negative by rounding only; a
    larger negative value means broken statistics and raises.
    """
    diff = mu1 - mu2
    rank = min(n1 - 1 if n1 else len(mu1), n2 - 1 if n2 else len(mu2), len(mu1))
    root = _symmetric_sqrt(sigma2, min(n2 - 1, len(mu2)) if n2 else len(mu2))
    eigenvalues = np.linalg.eigvalsh(root @ sigma1 @ root)[len(mu1) - rank :]
    tr_covmean = float(np.sqrt(np.clip(eigenvalues, 0, None)).sum())
    scale = float(np.trace(sigma1) + np.trace(sigma2))
    distance = float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)
    if distance < 0:
        if distance < -NOISE * max(scale, 1e-300):
            raise ValueError(f"Fréchet distance {distance:.3g} is negative beyond rounding (scale {scale:.3g}): the statistics are broken")
        return 0.0
    return distance


_ROOTS: dict[bytes, np.ndarray] = {}


def _symmetric_sqrt(sigma: np.ndarray, rank: int) -> np.ndarray:
    """The PSD square root of a covariance of rank at most ``rank`` (smaller eigenvalues and
    negative rounding set to 0), cached by content for the runs of one process that share a
    reference."""
    import hashlib

    key = hashlib.sha256(np.ascontiguousarray(sigma).tobytes() + rank.to_bytes(8, "little")).digest()
    if key not in _ROOTS:
        values, vectors = np.linalg.eigh(sigma)
        values[: len(values) - rank] = 0
        if len(_ROOTS) >= 8:
            _ROOTS.pop(next(iter(_ROOTS)))
        _ROOTS[key] = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    return _ROOTS[key]


def gaussian_statistics(n: torch.Tensor, total: torch.Tensor, outer: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (ddof 1, like ``np.cov``) from running sums."""
    count = int(n)
    mu = total / count
    sigma = (outer - count * torch.outer(mu, mu)) / (count - 1)
    return mu.numpy(), sigma.numpy()


class FrechetDistance(Metric):
    """Fréchet distance between the originals' and the reconstructions' feature Gaussians."""

    kind = "distribution"
    higher_is_better = False
    aggregation = "dataset"

    def __init__(self, extractor: str = "inception-v3-compat", feature: str = "2048", dim: int = 2048, name: str | None = None) -> None:
        super().__init__()
        self.extractor, self.feature, self.dim = extractor, feature, dim
        self.feature_dims = {feature: dim}
        self.name = name or f"fd-{extractor}"
        self.description = f"Fréchet distance of {extractor} '{feature}' features, reconstructions vs originals"
        self.reference_keys = ("mu", "sigma")  # a statistics file of this extractor's features may stand for the reference
        for side in SIDES:
            self.add_state(f"{side}_n", torch.zeros((), dtype=torch.int64), "sum")
            self.add_state(f"{side}_sum", torch.zeros(dim, dtype=torch.float64), "sum")
            self.add_state(f"{side}_outer", torch.zeros(dim, dim, dtype=torch.float64), "sum")
        self.add_state("fixed_reference", torch.zeros(0, dtype=torch.uint8), "same")  # UTF-8 of where fixed statistics came from

    @property
    def reference_source(self) -> str | None:
        """Where the fixed reference statistics came from, or None when the reference side is accumulated."""
        return bytes(self.fixed_reference.tolist()).decode() if self.fixed_reference.numel() else None

    def update(self, batch: MetricBatch) -> None:
        for side in SIDES:
            if side not in batch.features[self.extractor]:  # generation runs feed one side at a time
                continue
            if side == "originals" and self.reference_source is not None:  # fixed statistics stand for the reference
                continue
            features = batch.features[self.extractor][side][self.feature].to(torch.float64).cpu()
            setattr(self, f"{side}_n", getattr(self, f"{side}_n") + features.shape[0])
            setattr(self, f"{side}_sum", getattr(self, f"{side}_sum") + features.sum(dim=0))
            setattr(self, f"{side}_outer", getattr(self, f"{side}_outer") + features.T @ features)
        return None

    @property
    def count(self) -> int:
        return int(self.reconstructions_n)

    def parameters(self) -> dict:
        reference = {"reference_statistics": self.reference_source} if self.reference_source else {}
        return {"feature": self.feature, "dim": self.dim, "covariance": "unbiased (ddof 1), from float64 running sums",
                "trace_sqrt": "eigenvalues of S2^1/2 S1 S2^1/2 up to the rank min(n1, n2) - 1", **reference}  # fmt: skip

    def set_reference(self, source: str, mu: np.ndarray | None = None, sigma: np.ndarray | None = None, n: int = 50_000) -> None:
        """Take the reference side from statistics (``source`` says where they come from) and
        ignore reference features from now on; ``mu``/``sigma`` are entered once (one slice of
        a split run enters them, the others only stop accumulating). Running sums are rebuilt so
        that ``statistics("originals")`` returns exactly (mu, sigma); ``n`` only has to exceed
        1 (full rank: such statistics come from more images than the metric sees)."""
        self.fixed_reference = torch.tensor(list(source.encode()), dtype=torch.uint8)
        if mu is None or sigma is None:
            return
        if mu.shape != (self.dim,):
            from vtbench.errors import VtbenchError

            raise VtbenchError(f"{source}: statistics of dimension {mu.shape[0]}; {self.name} needs {self.dim}")
        mu_t, sigma_t = torch.from_numpy(mu).double(), torch.from_numpy(sigma).double()
        self.originals_n = torch.tensor(n)
        self.originals_sum = mu_t * n
        self.originals_outer = sigma_t * (n - 1) + n * torch.outer(mu_t, mu_t)

    def statistics(self, side: str) -> tuple[np.ndarray, np.ndarray]:
        return gaussian_statistics(getattr(self, f"{side}_n"), getattr(self, f"{side}_sum"), getattr(self, f"{side}_outer"))

    def compute(self) -> float:
        if self.count < 2:
            return float("nan")
        n1, n2 = int(self.reconstructions_n), int(self.originals_n)
        return frechet_distance(*self.statistics("reconstructions"), *self.statistics("originals"), n1, n2)

    def warnings(self) -> list[str]:
        if self.count < self.dim:
            return [
                f"{self.count} images < feature dimension {self.dim}: the covariance is rank-deficient and "
                f"{self.name} is strongly biased by sample size; compare only runs with equal image counts"
            ]
        return []


class FID(FrechetDistance):
    """Fréchet Inception Distance (torch-fidelity's InceptionV3, 2048-d pool features)."""

    def __init__(self) -> None:
        super().__init__("inception-v3-compat", "2048", 2048, name="fid")
        self.description = "Fréchet Inception Distance (torch-fidelity InceptionV3, pool 2048), reconstructions vs originals"


class SFID(FrechetDistance):
    """Spatial FID (Nash et al. 2021, as the ADM evaluator computes it): Fréchet distance of
    the first 7 channels of Inception's ``mixed_6/conv`` 17x17 map (2023 features)."""

    def __init__(self) -> None:
        super().__init__("inception-v3-compat", "spatial", 2023, name="sfid")
        self.reference_keys = ("mu_s", "sigma_s")
        self.description = "Spatial FID (ADM evaluator's mixed_6/conv features, 2023-d), reconstructions vs originals"
