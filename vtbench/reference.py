"""Reference features for distributional metrics, cached by content.

A reference set's features are computed once per (dataset manifest, preprocessing,
extractor, weights hash, cache schema) and reused by every later run and generator: the
key is made of content, never of a user-given name. Files are written atomically.

Also: export of Inception statistics as a torch-fidelity / clean-fid style ``.npz``
(``mu``, ``sigma``) and import of such files, or of ADM reference batches (``arr_0``
images, used as a dataset; their TF-computed statistics are not mixed with ours).
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vtbench.datasets.base import Dataset, manifest_sha256
from vtbench.errors import VtbenchError
from vtbench.features.base import FeatureExtractor
from vtbench.images import Preprocessing, pil_to_uint8_chw
from vtbench.io import atomic_write_bytes

CACHE_SCHEMA_VERSION = 1


def cache_dir() -> Path:
    from vtbench.weights import home

    return home() / "cache" / "reference-features"


def dataset_manifest(dataset: Dataset) -> str:
    """SHA-256 over (id, content hash) of every image; reads bytes, decodes nothing when it can."""
    return manifest_sha256([(dataset.ids[i], dataset.content_sha256(i)) for i in range(len(dataset))])


def cache_key(manifest: str, preprocessing: Preprocessing, extractor: FeatureExtractor) -> str:
    identity = {
        "manifest": manifest,
        "preprocessing": asdict(preprocessing),
        "extractor": extractor.name,
        "weights": sorted(w.sha256 for w in extractor.located.values()),
        "schema": CACHE_SCHEMA_VERSION,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def reference_features(
    dataset: Dataset, preprocessing: Preprocessing, extractor: FeatureExtractor, batch_size: int = 32, use_cache: bool = True
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Every feature the extractor provides, for every image of ``dataset`` (N, D) float32,
    from the cache when the same content was seen before. Returns (features, provenance)."""
    manifest = dataset_manifest(dataset)
    key = cache_key(manifest, preprocessing, extractor)
    path = cache_dir() / f"{key}.pt"
    provenance = {"dataset": dataset.name, "n_images": len(dataset), "manifest_sha256": manifest, "cache_key": key}
    if use_cache and path.is_file():
        return torch.load(path, weights_only=True), {**provenance, "cache": "hit"}
    chunks: dict[str, list[torch.Tensor]] = {name: [] for name in extractor.provides}
    for start in range(0, len(dataset), batch_size):
        images = [pil_to_uint8_chw(preprocessing.apply(dataset.load(i).image)) for i in range(start, min(start + batch_size, len(dataset)))]
        shapes = {image.shape for image in images}
        if len(shapes) > 1:
            raise VtbenchError(f"reference {dataset.name}: images differ in size {sorted(shapes)}; set a --resolution")
        batch = torch.from_numpy(np.stack(images)).to(extractor.device)
        for name, value in extractor(batch).items():
            chunks[name].append(value.float().cpu())
    features = {name: torch.cat(parts) for name, parts in chunks.items()}
    if use_cache:
        buffer = io.BytesIO()
        torch.save(features, buffer)
        atomic_write_bytes(path, buffer.getvalue())
    return features, {**provenance, "cache": "miss"}


def export_statistics(features: torch.Tensor, path: str | Path) -> None:
    """Write ``mu`` and ``sigma`` (float64, ddof 1) of (N, D) features as an ``.npz``."""
    array = features.double().numpy()
    buffer = io.BytesIO()
    np.savez(buffer, mu=array.mean(axis=0), sigma=np.cov(array, rowvar=False))
    atomic_write_bytes(path, buffer.getvalue())


def load_statistics(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read ``mu``/``sigma`` from a torch-fidelity / clean-fid style ``.npz``."""
    with np.load(path) as archive:
        if "mu" not in archive.files or "sigma" not in archive.files:
            raise VtbenchError(f"{path}: no mu/sigma statistics (found {', '.join(archive.files)})")
        mu, sigma = archive["mu"].astype(np.float64), archive["sigma"].astype(np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise VtbenchError(f"{path}: mu {mu.shape} and sigma {sigma.shape} do not fit together")
    return mu, sigma
