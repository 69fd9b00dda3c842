"""The shared feature pass: each extractor runs once per batch and side, and the originals'
(or reference's) features come from the content-keyed cache when an earlier run made them."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vtbench.datasets.base import Dataset, manifest_sha256
from vtbench.engine.loading import LoadedItem
from vtbench.features.base import FeatureExtractor
from vtbench.images import Preprocessing
from vtbench.reference import CacheWriter, FeatureCache, cache_key

Features = dict[str, dict[str, torch.Tensor]]  # feature name -> (N, D)


def as_uint8(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] float images -> uint8 levels (the exact 8-bit values the metrics saw)."""
    return images.mul(255).round_().to(torch.uint8)


class SharedFeatures:
    """Runs a run's extractors on batches; caches the originals' side by content.

    ``status[extractor]`` says what the cache did: ``hit``, ``miss`` (filled by this run),
    ``off`` or why it was not used.
    """

    def __init__(self, extractors: dict[str, FeatureExtractor]) -> None:
        self.extractors = extractors
        self.cached: dict[str, tuple[dict[str, int], dict[str, np.ndarray]]] = {}
        self.writers: dict[str, CacheWriter] = {}
        self.pending: dict[str, str] = {}
        self.status: dict[str, str] = {}
        self.rows = 0
        self.manifest = ""  # the content manifest of the images looked up (when the cache was opened)

    def open_cache(
        self, dataset: Dataset, count: int, preprocessing: Preprocessing, use_cache: bool, writable: bool, why_not: str = ""
    ) -> None:
        """Look up the first ``count`` images of ``dataset`` in the cache; a run that sees them
        all from the start (``writable``) fills the cache on a miss. ``why_not``: the reason the
        cache is not used (e.g. a sharded run), recorded as the status."""
        if not self.extractors:
            return
        if not use_cache or why_not:
            self.status = dict.fromkeys(self.extractors, why_not or "off")
            return
        try:
            manifest = manifest_sha256([(dataset.ids[i], dataset.content_sha256(i)) for i in range(count)])
        except Exception as exc:  # an unreadable file: the loader records it; the cache is skipped
            self.status = dict.fromkeys(self.extractors, f"off (a file could not be hashed: {type(exc).__name__}: {exc})")
            return
        cache, self.rows, self.manifest = FeatureCache(), count, manifest
        for name, extractor in self.extractors.items():
            key = cache_key(manifest, preprocessing, extractor)
            found = cache.load(key)
            if found is not None:
                ids, arrays = found
                self.cached[name] = ({image_id: row for row, image_id in enumerate(ids)}, arrays)
                self.status[name] = "hit"
            elif writable:
                self.pending[name] = key  # the writer opens once the feature sizes are known
                self.status[name] = "miss"
            else:
                self.status[name] = "miss (resumed run: not cached)"

    def all_cached(self) -> bool:
        return bool(self.extractors) and set(self.cached) == set(self.extractors)

    def cached_features(self, name: str) -> dict[str, torch.Tensor]:
        """Every cached originals' feature of one extractor, in dataset order."""
        return {feature: torch.from_numpy(np.array(array)) for feature, array in self.cached[name][1].items()}

    def __call__(
        self, items: list[LoadedItem], originals: torch.Tensor | None, reconstructions: torch.Tensor | None
    ) -> dict[str, dict[str, Features]]:
        """``features[extractor][side][feature]`` for the sides given (uint8-exact levels)."""
        out: dict[str, dict[str, Features]] = {}
        originals_u8 = None
        for name, extractor in self.extractors.items():
            side: dict[str, Features] = {}
            if reconstructions is not None:
                side["reconstructions"] = extractor(as_uint8(reconstructions))
            if originals is not None:
                if name in self.cached:
                    rows_by_id, arrays = self.cached[name]
                    rows = [rows_by_id[item.id] for item in items]
                    side["originals"] = {f: torch.from_numpy(np.asarray(a[rows])).to(extractor.device) for f, a in arrays.items()}
                else:
                    originals_u8 = as_uint8(originals) if originals_u8 is None else originals_u8
                    side["originals"] = extractor(originals_u8)
                    if name in self.pending:
                        dims = {feature: value.shape[1] for feature, value in side["originals"].items()}
                        self.writers[name] = FeatureCache().writer(self.pending.pop(name), self.rows, dims)
                    if name in self.writers:
                        self.writers[name].put([item.index for item in items], side["originals"])
            out[name] = side
        return out

    def commit(self, ids: list[str]) -> None:
        """Publish the cache entries this run filled (discarded when an image failed)."""
        for writer in self.writers.values():
            writer.commit(ids)
        self.writers.clear()

    def discard(self) -> None:
        for writer in self.writers.values():
            writer.discard()
        self.writers.clear()


def dataset_features(
    dataset: Dataset, preprocessing: Preprocessing, extractor: FeatureExtractor, batch_size: int = 32, use_cache: bool = True,
    num_workers: int = 0, limit: int | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:  # fmt: skip
    """Every feature ``extractor`` gives for the first ``limit`` images (default: all) of
    ``dataset``, (N, D) float32 in dataset order, from the content-keyed cache when it holds
    them (else computed through the run's source and stored). Returns (features, provenance:
    the dataset, its manifest, the image count and what the cache did). Images must share one size."""
    from vtbench.engine.sources import DatasetSource
    from vtbench.errors import VtbenchError

    count = len(dataset) if limit is None else min(limit, len(dataset))
    shared = SharedFeatures({extractor.name: extractor})
    shared.open_cache(dataset, count, preprocessing, use_cache, writable=True)
    provenance = {"dataset": dataset.name, "n_images": count, "manifest_sha256": shared.manifest or None,
                  "cache": shared.status.get(extractor.name, "off")}  # fmt: skip
    if shared.all_cached():
        return shared.cached_features(extractor.name), provenance
    parts: dict[str, list[torch.Tensor]] = {}
    hashes = []
    for batch in DatasetSource(dataset, preprocessing).batches(range(count), batch_size, num_workers, extractor.device,
                                                               lambda key, work: work()):  # fmt: skip
        broken = [item for item in batch.items if item.error is not None]
        if broken or len(batch.groups) != 1:
            shared.discard()
            problem = f"{broken[0].id}: {broken[0].error}" if broken else "images differ in size; set a --resolution"
            raise VtbenchError(f"reference {dataset.name}: {problem}")
        hashes += [(item.id, item.sha256) for item in batch.items]
        pixels = batch.groups[0][1].to(extractor.device).float().div_(255.0)
        for feature, values in shared(batch.items, pixels, None)[extractor.name]["originals"].items():
            parts.setdefault(feature, []).append(values.float().cpu())
    shared.commit(list(dataset.ids[:count]))
    provenance["manifest_sha256"] = manifest_sha256(hashes)
    return {feature: torch.cat(values) for feature, values in parts.items()}, provenance
