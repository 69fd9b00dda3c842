"""Loading images in DataLoader workers: decode, convert, preprocess; a broken file becomes a
row with its error, never a crash."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import Dataset as TorchDataset

from vtbench.datasets.base import Dataset
from vtbench.errors import BadImageError
from vtbench.images import Preprocessing, pil_to_uint8_chw


class ImageLoading(TorchDataset):
    """Worker-side: load, convert and preprocess the images at ``positions`` of ``dataset``."""

    def __init__(self, dataset: Dataset, preprocessing: Preprocessing, positions: range) -> None:
        self.dataset, self.preprocessing, self.positions = dataset, preprocessing, positions

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, position: int) -> dict[str, Any]:
        index = self.positions[position]
        image_id = self.dataset.ids[index]
        try:
            sample = self.dataset.load(index)
            if sample.array is not None and self.preprocessing.leaves_unchanged(sample.image.width, sample.image.height):
                pixels = sample.array.transpose(2, 0, 1).copy()  # no PIL round trip for arrays
            else:
                pixels = pil_to_uint8_chw(self.preprocessing.apply(sample.image))
            return {
                "index": index,
                "id": image_id,
                "pixels": torch.from_numpy(pixels),
                "sha256": sample.content_sha256,
                "source_size": f"{sample.image.width}x{sample.image.height}",
                "meta": sample.meta,
                "frames": sample.image.info.get("frames", 1),
                "error": None,
            }
        except BadImageError as exc:
            error = exc.problem
        except Exception as exc:  # a broken file must not end the run
            error = f"{type(exc).__name__}: {exc}"
        return {"index": index, "id": image_id, "pixels": None, "sha256": "", "source_size": "", "meta": {}, "error": error}


class IndexOnly(TorchDataset):
    """For generators that make their samples on the device: the loader yields indices only."""

    def __init__(self, positions: range) -> None:
        self.positions = positions

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, position: int) -> dict[str, Any]:
        index = self.positions[position]
        return {"index": index, "id": f"sample-{index:06d}", "pixels": None, "sha256": "", "source_size": "", "meta": {}, "error": None}


@dataclass
class LoadedBatch:
    """A batch as the workers hand it over: per-image records (no pixels) and, per image size,
    the positions of those images in ``items`` with their pixels stacked (B, 3, H, W) uint8,
    so one tensor per size crosses the process boundary (and is pinned, for the GPU)."""

    items: list[dict[str, Any]]
    groups: list[tuple[list[int], torch.Tensor]] = field(default_factory=list)

    def in_main_process(self) -> LoadedBatch:
        """The pixels as tensors (they arrive from a worker as numpy arrays)."""
        return LoadedBatch(self.items, [(positions, torch.as_tensor(pixels)) for positions, pixels in self.groups])

    def pin_memory(self) -> LoadedBatch:
        return LoadedBatch(self.items, [(positions, torch.as_tensor(pixels).pin_memory()) for positions, pixels in self.groups])

    def without(self, indices: set[int]) -> LoadedBatch:
        """The batch less the images whose dataset index is in ``indices``."""
        if not indices:
            return self
        keep = [p for p, item in enumerate(self.items) if item["index"] not in indices]
        new_position = {old: new for new, old in enumerate(keep)}
        groups = []
        for positions, pixels in self.groups:
            kept = [i for i, p in enumerate(positions) if p in new_position]
            if kept:
                groups.append(([new_position[positions[i]] for i in kept], pixels[kept]))
        return LoadedBatch([self.items[p] for p in keep], groups)


def collate(samples: list[dict[str, Any]]) -> LoadedBatch:
    """Worker-side: group the loaded images by size and stack each group."""
    shapes: dict[tuple[int, ...], list[int]] = {}
    for position, sample in enumerate(samples):
        if sample["pixels"] is not None:
            shapes.setdefault(tuple(sample["pixels"].shape), []).append(position)
    # numpy, not torch: a worker's arrays travel through the pipe instead of shared-memory
    # files, whose cache in the main process grows with batch size (memory would not stay flat)
    groups = [(positions, torch.stack([samples[p]["pixels"] for p in positions]).numpy()) for positions in shapes.values()]
    items = [{key: value for key, value in sample.items() if key != "pixels"} for sample in samples]
    return LoadedBatch(items, groups)
