"""Loading images in DataLoader workers: decode, convert, preprocess; a broken file becomes a
row with its error, never a crash."""

from __future__ import annotations

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
            image = self.preprocessing.apply(sample.image)
            return {
                "index": index,
                "id": image_id,
                "pixels": torch.from_numpy(pil_to_uint8_chw(image)),
                "sha256": sample.content_sha256,
                "source_size": f"{sample.image.width}x{sample.image.height}",
                "meta": sample.meta,
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


def as_list(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return items


def group_by_shape(items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Loaded items in same-size groups (images of one size are scored together)."""
    groups: dict[tuple[int, ...], list[dict[str, Any]]] = {}
    for item in items:
        if item["pixels"] is not None:
            groups.setdefault(tuple(item["pixels"].shape), []).append(item)
    return list(groups.values())
