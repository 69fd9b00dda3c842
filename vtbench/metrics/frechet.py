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


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """``|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))``, with the trace of the
    matrix square root taken from the eigenvalues of S1 S2 (as torch-fidelity does)."""
    diff = mu1 - mu2
    tr_covmean = np.sum(np.sqrt(np.linalg.eigvals(sigma1.dot(sigma2)).astype("complex128")).real)
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


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
        self.name = name or f"fd-{extractor}"
        self.description = f"Fréchet distance of {extractor} '{feature}' features, reconstructions vs originals"
        for side in SIDES:
            self.add_state(f"{side}_n", torch.zeros((), dtype=torch.int64), "sum")
            self.add_state(f"{side}_sum", torch.zeros(dim, dtype=torch.float64), "sum")
            self.add_state(f"{side}_outer", torch.zeros(dim, dim, dtype=torch.float64), "sum")

    def update(self, batch: MetricBatch) -> None:
        for side in SIDES:
            if side not in batch.features[self.extractor]:  # generation runs feed one side at a time
                continue
            features = batch.features[self.extractor][side][self.feature].to(torch.float64).cpu()
            setattr(self, f"{side}_n", getattr(self, f"{side}_n") + features.shape[0])
            setattr(self, f"{side}_sum", getattr(self, f"{side}_sum") + features.sum(dim=0))
            setattr(self, f"{side}_outer", getattr(self, f"{side}_outer") + features.T @ features)
        return None

    @property
    def count(self) -> int:
        return int(self.reconstructions_n)

    def set_reference_statistics(self, mu: np.ndarray, sigma: np.ndarray, n: int = 50_000) -> None:
        """Use precomputed reference statistics (e.g. from an ``.npz``) as the originals' side.

        Running sums are rebuilt so that ``statistics("originals")`` returns exactly (mu, sigma);
        ``n`` only has to exceed 1.
        """
        if mu.shape != (self.dim,):
            raise ValueError(f"{self.name}: reference statistics have dimension {mu.shape[0]}, this metric uses {self.dim}")
        mu_t, sigma_t = torch.from_numpy(mu).double(), torch.from_numpy(sigma).double()
        self.originals_n = torch.tensor(n)
        self.originals_sum = mu_t * n
        self.originals_outer = sigma_t * (n - 1) + n * torch.outer(mu_t, mu_t)

    def statistics(self, side: str) -> tuple[np.ndarray, np.ndarray]:
        return gaussian_statistics(getattr(self, f"{side}_n"), getattr(self, f"{side}_sum"), getattr(self, f"{side}_outer"))

    def compute(self) -> float:
        if self.count < 2:
            return float("nan")
        return frechet_distance(*self.statistics("reconstructions"), *self.statistics("originals"))

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
        self.description = "Spatial FID (ADM evaluator's mixed_6/conv features, 2023-d), reconstructions vs originals"
