"""Sources: where a run's images come from, as batches of :class:`LoadedBatch`.

- :class:`DatasetSource`: a dataset's images, decoded and preprocessed in DataLoader workers
  (a reconstruction run's originals, a generation run's reference, a sample folder);
- :class:`GeneratorSource`: a generator's samples, made from their indices on the run's device;
- a fixed reference (a ``mu``/``sigma`` statistics file, or an ADM reference batch's stored
  statistics) has no images: :func:`reference_kind` tells which a path is, and
  :func:`vtbench.reference.load_statistics` reads what it holds for the metrics'
  :meth:`~vtbench.metrics.base.Metric.set_reference`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from vtbench.datasets.base import Dataset
from vtbench.engine.loading import ImageLoading, IndexOnly, LoadedBatch, collate
from vtbench.generators import Generator
from vtbench.images import Preprocessing
from vtbench.npz import npz_keys


def _timed_batches(loader: DataLoader, timer: Callable[[str, Callable[[], Any]], Any]) -> Iterator[LoadedBatch]:
    """The loader's batches, the time spent waiting for each added under ``load_wait_s``."""
    iterator = iter(loader)
    while True:
        batch = timer("load_wait_s", lambda: next(iterator, None))
        if batch is None:
            return
        yield batch.in_main_process()


class DatasetSource:
    """A dataset's images through the run's preprocessing, in DataLoader workers."""

    def __init__(self, dataset: Dataset, preprocessing: Preprocessing) -> None:
        self.dataset, self.preprocessing = dataset, preprocessing

    def ids(self, positions: range) -> list[str]:
        return [self.dataset.ids[i] for i in positions]

    def batches(self, positions: range, batch_size: int, workers: int, device: torch.device,
                timer: Callable[[str, Callable[[], Any]], Any]) -> Iterator[LoadedBatch]:  # fmt: skip
        loader = DataLoader(ImageLoading(self.dataset, self.preprocessing, positions), batch_size=batch_size, num_workers=workers,
                            collate_fn=collate, shuffle=False, pin_memory=device.type == "cuda")  # fmt: skip
        return _timed_batches(loader, timer)


class GeneratorSource:
    """A generator's samples by index, made on the run's device: each batch's samples are
    checked (a sample with NaN or inf is an error of that sample), rounded to 8-bit, handed to
    ``on_samples`` (to be saved), brought through the run's preprocessing (as image files would
    be) and given their prompts."""

    def __init__(self, generator: Generator, preprocessing: Preprocessing,
                 on_samples: Callable[[list[int], torch.Tensor], None] | None = None) -> None:  # fmt: skip
        self.generator, self.preprocessing, self.on_samples = generator, preprocessing, on_samples

    def ids(self, positions: range) -> list[str]:
        return [f"sample-{i}" for i in positions]

    def batches(self, positions: range, batch_size: int, workers: int, device: torch.device,
                timer: Callable[[str, Callable[[], Any]], Any]) -> Iterator[LoadedBatch]:  # fmt: skip
        loader = DataLoader(IndexOnly(positions), batch_size=batch_size, num_workers=0, collate_fn=collate, shuffle=False)
        for batch in _timed_batches(loader, timer):
            yield self._generate(batch, timer)

    def _generate(self, batch: LoadedBatch, timer: Callable[[str, Callable[[], Any]], Any]) -> LoadedBatch:
        items = batch.items
        images = timer("generate_s", lambda: self.generator.samples([item.index for item in items]))
        finite = torch.isfinite(images.flatten(1)).all(dim=1).tolist()
        for item, ok in zip(items, finite, strict=True):
            item.error = None if ok else "sample contains NaN or inf"
        keep = [i for i, ok in enumerate(finite) if ok]
        pixels = self.generator.as_uint8(images[keep])
        if self.on_samples is not None and keep:
            self.on_samples([items[p].index for p in keep], pixels)
        if keep and not self.preprocessing.leaves_unchanged(pixels.shape[-1], pixels.shape[-2]):
            pixels = preprocessed(pixels, self.preprocessing)
        prompts = self.generator.prompts_for([items[p].index for p in keep])
        for n, position in enumerate(keep):
            items[position].source_size = f"{images.shape[-1]}x{images.shape[-2]}"
            if prompts is not None:
                items[position].meta = {**items[position].meta, "prompt": prompts[n]}
        return LoadedBatch(items, [(keep, pixels)] if keep else [])


def preprocessed(pixels: torch.Tensor, preprocessing: Preprocessing) -> torch.Tensor:
    """(B, 3, H, W) uint8 samples through the run's resize/crop, as image files are."""
    from PIL import Image

    from vtbench.images import pil_to_uint8_chw

    arrays = pixels.permute(0, 2, 3, 1).cpu().numpy()
    return torch.from_numpy(np.stack([pil_to_uint8_chw(preprocessing.apply(Image.fromarray(array))) for array in arrays]))


def reference_kind(reference: str) -> str:
    """``statistics`` (an ``.npz`` with ``mu``/``sigma`` and no images), ``adm-batch`` (images
    ``arr_0`` with stored ``mu``/``sigma``) or ``images`` (anything a dataset reads)."""
    if not reference.endswith(".npz") or not Path(reference).is_file():
        return "images"
    files = set(npz_keys(reference))
    if "arr_0" not in files:
        return "statistics" if "mu" in files else "images"
    return "adm-batch" if {"mu", "sigma"} <= files else "images"
