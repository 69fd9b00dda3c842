"""Datasets: ordered image collections, registered by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vtbench.registry import Registry

if TYPE_CHECKING:
    from vtbench.datasets.base import Dataset

DATASETS: Registry[Dataset] = Registry("datasets")
DATASETS.register(
    "samples", "vtbench.datasets.samples:SkimageSamples", description="14 real photographs shipped with scikit-image (no download)"
)
DATASETS.register("folder", "vtbench.datasets.folder:ImageFolder", description="Every image under a folder, recursively (option: root)")

__all__ = ["DATASETS", "Dataset", "Sample"]


def __getattr__(name: str):  # the contract classes import torch: load them on first use
    if name in {"Dataset", "Sample"}:
        import importlib

        return getattr(importlib.import_module("vtbench.datasets.base"), name)
    raise AttributeError(name)
