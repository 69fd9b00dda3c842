"""Building a run's parts from names: device, dataset, generator, metrics with their weights
and shared feature extractors, and the optional ``torch.compile`` of a tokenizer."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vtbench import weights as weights_store
from vtbench.datasets import DATASETS, Dataset
from vtbench.errors import DatasetError, VtbenchError
from vtbench.features import EXTRACTORS
from vtbench.features.base import FeatureExtractor
from vtbench.generators import GENERATORS, Generator
from vtbench.metrics import METRICS, Metric
from vtbench.tokenizers import Tokenizer
from vtbench.weights import Located, WeightsUnavailableError

COST_METRICS = ("bpp", "tokens")  # recorded in every reconstruction run


def resolve_device(device: str, local_rank: int | None = None) -> torch.device:
    """``auto`` is CUDA when torch sees it (the process's own GPU under torchrun), else CPU."""
    if device == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        return torch.device("cuda", local_rank) if local_rank is not None else torch.device("cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise VtbenchError(f"device {device!r} asked for, but torch sees no CUDA device (torch {torch.__version__})")
    if device == "cuda" and local_rank is not None:
        return torch.device("cuda", local_rank)
    return torch.device(device)


def default_num_workers(dataset: Dataset | None = None, device: torch.device | None = None) -> int:
    """Loader processes: half the CPUs, 1 to 4; for in-memory arrays none on a CPU (a worker
    would only add a copy and share the cores) and one on a GPU (it overlaps the copy with the
    device's work)."""
    if dataset is not None and not dataset.decodes_files:
        return 1 if device is not None and device.type == "cuda" else 0
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def create_dataset(name: str, options: dict[str, Any]) -> Dataset:
    """A registered dataset by name; an existing folder path also works as a name."""
    if name not in DATASETS and Path(name).expanduser().is_dir():
        kind = "annotated" if (Path(name).expanduser() / "annotations.jsonl").is_file() else "folder"
        return DATASETS.create(kind, root=name, **options)
    if name not in DATASETS and name.endswith(".npz") and Path(name).expanduser().is_file():
        return DATASETS.create("npz", path=name, **options)
    if name not in DATASETS and name.endswith(".npz"):
        raise DatasetError(f"{name}: no such .npz file (an ADM reference batch or an image array is read from a file)")
    if name not in DATASETS and ("/" in name or Path(name).suffix):
        raise DatasetError(f"dataset {name!r}: no such folder, and not a registered dataset name")
    return DATASETS.create(name, **options)


def create_generator(name: str, options: dict[str, Any]) -> Generator:
    """A registered generator, or a sample folder / ``.npz`` path read by ``samples-reader``."""
    if name not in GENERATORS and Path(name).expanduser().exists():
        return GENERATORS.create("samples-reader", path=name, **options)
    return GENERATORS.create(name, **options)


@dataclass
class PreparedMetrics:
    """The metrics a run computes, those it records as not computed (with the reason), the
    weights files found for them, and one shared extractor per feature space."""

    active: dict[str, Metric]
    unavailable: dict[str, tuple[Metric, str]]
    located: dict[str, Located]
    extractors: dict[str, FeatureExtractor]


def weights_of(metric: Metric) -> list[str]:
    """The weights-store names ``metric`` needs: its own files and its feature extractor's."""
    return [*metric.required_weights, *(EXTRACTORS.get(metric.extractor).load().weights if metric.extractor else ())]


def create_metrics(names: list[str], options: dict[str, dict[str, Any]] | None = None) -> dict[str, Metric]:
    """The named metrics with their ``options`` (keyword arguments by metric name)."""
    options = options or {}
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise VtbenchError(f"options given for {', '.join(unknown)}, which the run does not compute (metrics: {', '.join(names)})")
    return {name: METRICS.create(name, **options.get(name, {})) for name in names}


def weights_digests(metrics: dict[str, Metric]) -> dict[str, str | None]:
    """Every weights file ``metrics`` need -> its SHA-256, or None when it is not here (nothing
    is downloaded): part of a run's identity, so a record made without a file, or with
    another one, is not reused once the file is in place."""
    digests: dict[str, str | None] = {}
    for metric in metrics.values():
        for name in weights_of(metric):
            if name not in digests:
                try:
                    digests[name] = weights_store.locate(name, fetch=False).sha256
                except WeightsUnavailableError:
                    digests[name] = None
    return digests


def prepare_metrics(names: list[str], device: torch.device, skip_unavailable: bool, load: bool = True,
                    options: dict[str, dict[str, Any]] | None = None) -> PreparedMetrics:  # fmt: skip
    """Create the metrics (with their ``options``, keyword arguments by metric name) and find
    every weights file they need before any work starts; with ``load``, build each shared
    feature extractor once and let each metric load its network."""
    metrics = create_metrics(names, options)
    located: dict[str, Located] = {}
    unavailable: dict[str, tuple[Metric, str]] = {}
    for name, metric in metrics.items():
        for weights_name in weights_of(metric):
            if weights_name in located:
                continue
            try:
                located[weights_name] = weights_store.locate(weights_name)
            except WeightsUnavailableError as exc:
                unavailable[name] = (metric, str(exc))
                break
    if unavailable and not skip_unavailable:
        by_reason: dict[str, list[str]] = {}
        for name, (_, reason) in unavailable.items():  # one line per missing file, not per metric
            by_reason.setdefault(reason, []).append(name)
        problems = "; ".join(f"{', '.join(names)}: {reason}" for reason, names in by_reason.items())
        raise WeightsUnavailableError(
            f"cannot compute {', '.join(unavailable)}: {problems}. Fix that, or pass --skip-unavailable to record "
            f"{'this metric' if len(unavailable) == 1 else 'these metrics'} as not computed."
        )
    active = {name: metric for name, metric in metrics.items() if name not in unavailable}
    extractors: dict[str, FeatureExtractor] = {}
    if load:
        for metric in active.values():
            if metric.extractor:
                provided = EXTRACTORS.get(metric.extractor).load().provides
                missing = [feature for feature in metric.feature_dims if provided and feature not in provided]
                if missing:
                    raise VtbenchError(f"metric {metric.name!r} reads {', '.join(missing)} from {metric.extractor}, which gives "
                                       f"{', '.join(provided)}")  # fmt: skip
            if metric.extractor and metric.extractor not in extractors:
                factory = EXTRACTORS.get(metric.extractor).load()
                extractors[metric.extractor] = EXTRACTORS.create(
                    metric.extractor, located={w: located[w] for w in factory.weights}, device=device
                )
            metric.prepare(located, device)
    return PreparedMetrics(active, unavailable, located, extractors)


def compile_tokenizer(tokenizer: Tokenizer, name: str) -> None:
    """``torch.compile`` a network tokenizer's encoder and decoder (compiled on first use); a
    tokenizer without a network is refused by name."""
    if not tokenizer.compile():
        raise VtbenchError(f"--compile: tokenizer {name!r} has no network encoder/decoder to compile")
