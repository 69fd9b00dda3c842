"""Metrics that need every feature vector, not running sums: KID, Inception Score and
k-NN precision/recall. The formulas are torch-fidelity's own functions (the reference
implementation), applied to features from vtbench's single shared extractor pass.

Memory: 4 bytes x feature dimension per image and side (2048-d Inception: 8 KiB), kept
until ``compute``; FID, by contrast, keeps only fixed-size running sums.
"""

from __future__ import annotations

from typing import Any

import torch

from vtbench.metrics.adm_manifold import adm_precision_recall
from vtbench.metrics.base import Metric, MetricBatch

RNG_SEED = 2020  # torch-fidelity's default, so subsets and shuffles match it
INCEPTION = "inception-v3-compat"


def extractor_feature(extractor: str, role: str, metric: str) -> tuple[str, int]:
    """(feature name, dimension) that ``metric`` reads from ``extractor`` in ``role``."""
    from vtbench.features import EMBEDDINGS

    known = EMBEDDINGS.get(extractor)
    if known is None:
        raise ValueError(f"{metric}: extractor must be one of {', '.join(EMBEDDINGS)}, got {extractor!r}")
    if role not in known:
        having = [name for name, roles in EMBEDDINGS.items() if role in roles]
        raise ValueError(f"{metric} needs class logits, which {extractor} does not give (extractors with them: {', '.join(having)})")
    return known[role]


class _FeatureSet(Metric):
    """Stores one feature of one extractor (Inception by default, any of
    :data:`vtbench.features.EMBEDDINGS` by the ``extractor`` option) for the given sides."""

    kind = "distribution"
    aggregation = "dataset"
    extractor = INCEPTION
    feature = "2048"
    feature_dims = {"2048": 2048}
    role = "embedding"
    sides: tuple[str, ...] = ("originals", "reconstructions")

    def __init__(self, extractor: str = INCEPTION) -> None:
        super().__init__()
        if extractor != INCEPTION:  # named in the record (entry.extractor, parameters): never taken for Inception numbers
            self.extractor = extractor
            self.feature, dim = extractor_feature(
                extractor, self.role, "precision/recall" if type(self).name == "metric" else type(self).name
            )
            self.feature_dims = {self.feature: dim}
        for side in self.sides:
            self.add_state(side, [], "cat")

    def _other_extractor(self) -> dict[str, str]:
        """``{"extractor": name}`` when not Inception (records made before the option keep their parameters)."""
        return {} if self.extractor == INCEPTION else {"extractor": self.extractor}

    def update(self, batch: MetricBatch) -> None:
        for side in self.sides:
            if side in batch.features[self.extractor]:
                getattr(self, side).append(batch.features[self.extractor][side][self.feature].float().cpu())
        return None

    def stacked(self, side: str) -> torch.Tensor:
        parts = getattr(self, side)
        return torch.cat(parts) if parts else torch.zeros(0)

    @property
    def count(self) -> int:
        return sum(part.shape[0] for part in self.reconstructions)


class KID(_FeatureSet):
    """Kernel Inception Distance (polynomial kernel, unbiased MMD^2 over random subsets)."""

    name = "kid"
    higher_is_better = False
    description = "Kernel Inception Distance vs the originals (torch-fidelity formula; mean over subsets)"

    def __init__(self, subsets: int = 100, subset_size: int = 1000, extractor: str = INCEPTION) -> None:
        super().__init__(extractor)
        self.subsets, self.subset_size = subsets, subset_size
        self._details: dict[str, Any] = {}
        if extractor != INCEPTION:
            self.description = f"Kernel distance (KID's formula) in {extractor} '{self.feature}' feature space: not KID"

    def parameters(self) -> dict:
        return {"subsets": self.subsets, "subset_size": self.subset_size, "kernel": "polynomial, degree 3, gamma 1/d, coef0 1",
                "rng_seed": RNG_SEED, "feature": self.feature, **self._other_extractor()}  # fmt: skip

    def compute(self) -> float:
        from torch_fidelity.metric_kid import kid_features_to_metric

        generated, real = self.stacked("reconstructions"), self.stacked("originals")
        size = min(self.subset_size, len(generated), len(real))
        if size < 2:
            return float("nan")
        out = kid_features_to_metric(
            generated, real, kid_subsets=self.subsets, kid_subset_size=size, rng_seed=RNG_SEED, verbose=False,
            kid_kernel="poly", kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None, kid_kernel_poly_coef0=1,
        )  # fmt: skip
        self._details = {"std": out["kernel_inception_distance_std"], "subsets": self.subsets, "subset_size": size}
        return out["kernel_inception_distance_mean"]

    def details(self) -> dict[str, Any]:
        return self._details

    def warnings(self) -> list[str]:
        if self._details and self._details["subset_size"] < self.subset_size:
            return [f"subset size {self._details['subset_size']} < the standard {self.subset_size}: too few images"]
        return []


class InceptionScore(_FeatureSet):
    """Inception Score of the reconstructions (or samples): 10 splits, shuffled with seed 2020."""

    name = "isc"
    higher_is_better = True
    feature = "logits_unbiased"
    feature_dims = {"logits_unbiased": 1008}
    role = "logits"
    sides = ("reconstructions",)
    description = "Inception Score of the reconstructions / samples (torch-fidelity formula, 10 splits)"

    def __init__(self, splits: int = 10, split_size: int | None = None, extractor: str = INCEPTION) -> None:
        """``splits`` shuffled equal parts (torch-fidelity), or, with ``split_size``,
        consecutive parts of that many images in sample order (the ADM evaluator: 5,000)."""
        if splits < 1 or (split_size is not None and split_size < 1):
            raise ValueError(f"splits and split_size must be at least 1, got {splits} and {split_size}")
        super().__init__(extractor)
        self.splits, self.split_size = splits, split_size
        self._details: dict[str, Any] = {}
        if extractor != INCEPTION:
            self.description = f"Inception Score's formula on {extractor}'s ImageNet logits: not the Inception Score"

    def parameters(self) -> dict:
        if self.split_size is not None:
            return {"split_size": self.split_size, "shuffle": False, "feature": self.feature, "formula": "ADM evaluator",
                    **self._other_extractor()}  # fmt: skip
        return {"splits": self.splits, "shuffle": True, "rng_seed": RNG_SEED, "feature": self.feature, **self._other_extractor()}

    def compute(self) -> float:
        from torch_fidelity.metric_isc import isc_features_to_metric

        logits = self.stacked("reconstructions")
        if self.split_size is not None:
            scores = split_inception_scores(logits, self.split_size)
            self._details = {"std": float(scores.std()), "split_size": self.split_size, "splits": len(scores)}
            return float(scores.mean())
        if len(logits) < self.splits:
            return float("nan")
        out = isc_features_to_metric(logits, splits=self.splits, shuffle=True, rng_seed=RNG_SEED)
        self._details = {"std": out["inception_score_std"], "splits": self.splits}
        return out["inception_score_mean"]

    def details(self) -> dict[str, Any]:
        return self._details


def split_inception_scores(logits: torch.Tensor, split_size: int) -> torch.Tensor:
    """The ADM evaluator's Inception Score parts: softmax of the (bias-free) logits, then for
    each consecutive part of ``split_size`` rows ``exp(mean_i KL(p_i || mean p))``: (parts,) float64."""
    probs = torch.softmax(logits.double(), dim=1)
    scores = []
    for start in range(0, len(probs), split_size):
        part = probs[start : start + split_size]
        kl = (part * (torch.log(part) - torch.log(part.mean(dim=0, keepdim=True)))).sum(dim=1).mean()
        scores.append(torch.exp(kl))
    return torch.stack(scores) if scores else torch.full((1,), float("nan"), dtype=torch.float64)


class PrecisionRecall(_FeatureSet):
    """k-NN precision or recall (Kynkäänniemi et al. 2019), k = 3, Inception 2048-d features;
    ``estimator`` ``torch-fidelity`` (float32 Euclidean distances) or ``adm`` (the ADM
    evaluator's manifold estimator: squared distances in float16)."""

    higher_is_better = True

    def __init__(self, output: str = "precision", neighborhood: int = 3, estimator: str = "torch-fidelity",
                 extractor: str = INCEPTION) -> None:  # fmt: skip
        if output not in ("precision", "recall"):
            raise ValueError(f"output must be precision or recall, got {output!r}")
        if estimator not in ("torch-fidelity", "adm"):
            raise ValueError(f"estimator must be torch-fidelity or adm, got {estimator!r}")
        if estimator == "adm" and extractor != INCEPTION:
            raise ValueError(f"estimator adm is the ADM evaluator's, on Inception features; with {extractor!r} use torch-fidelity")
        super().__init__(extractor)
        self.output, self.neighborhood, self.estimator = output, neighborhood, estimator
        self.name = output
        space = "Inception" if extractor == INCEPTION else f"{extractor} '{self.feature}'"
        self.description = f"k-NN {output} (k={neighborhood}) of reconstructions vs originals in {space} space"

    def parameters(self) -> dict:
        distance = "euclidean, self excluded from the radius" if self.estimator == "torch-fidelity" else (
            "squared euclidean in float16 with the ADM evaluator's arithmetic (its 4th-smallest entry as radius)")  # fmt: skip
        return {"k": self.neighborhood, "feature": self.feature, "estimator": self.estimator, "distance": distance,
                **self._other_extractor()}  # fmt: skip

    def compute(self) -> float:
        from torch_fidelity.metric_prc import calculate_precision_recall_part

        generated, real = self.stacked("reconstructions"), self.stacked("originals")
        if len(generated) <= self.neighborhood or len(real) <= self.neighborhood:
            return float("nan")
        if self.estimator == "adm":
            precision, recall = adm_precision_recall(real, generated, self.neighborhood)
        else:
            precision, recall = calculate_precision_recall_part(generated, real, self.neighborhood, 10000)
        return precision if self.output == "precision" else recall
