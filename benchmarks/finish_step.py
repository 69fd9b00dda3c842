"""The finishing linear algebra of a Fréchet distance: the general eigendecomposition of
S1 S2 (the previous method) against vtbench's symmetric form (eigh of S2, then eigvalsh of
S2^1/2 S1 S2^1/2, with S2^1/2 reused by later runs against the same reference).

Usage: python benchmarks/finish_step.py
"""

from __future__ import annotations

import time

import numpy as np
from common import save

from vtbench.metrics import frechet


def covariance(dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((3 * dim, dim)) @ rng.standard_normal((dim, dim)) / np.sqrt(dim)
    return features.mean(0), np.cov(features, rowvar=False)


def general_eig(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    diff = mu1 - mu2
    tr_covmean = np.sum(np.sqrt(np.linalg.eigvals(s1.dot(s2)).astype("complex128")).real)
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def timed(fn, *args) -> tuple[float, float]:
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start


def main() -> None:
    result = {}
    for dim in (1280, 2048):
        mu1, s1 = covariance(dim, 1)
        mu2, s2 = covariance(dim, 2)
        old, old_s = timed(general_eig, mu1, s1, mu2, s2)
        frechet._ROOTS.clear()
        first, first_s = timed(frechet.frechet_distance, mu1, s1, mu2, s2)
        mu3, s3 = covariance(dim, 3)
        _, reuse_s = timed(frechet.frechet_distance, mu3, s3, mu2, s2)  # another run, same reference
        result[f"dim_{dim}"] = {
            "general_eig_s": round(old_s, 3),
            "symmetric_first_run_s": round(first_s, 3),
            "symmetric_same_reference_s": round(reuse_s, 3),
            "relative_difference": abs(first - old) / abs(old),
        }
    save("finish_step", result)


if __name__ == "__main__":
    main()
