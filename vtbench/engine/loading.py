"""Loading images in DataLoader workers: decode, convert, preprocess; a broken file becomes a
row with its error, never a crash."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset as TorchDataset

from vtbench.datasets.base import Dataset
from vtbench.datasets.video import ClipDataset
from vtbench.errors import BadImageError
from vtbench.images import Preprocessing, pil_to_uint8_chw


@dataclass
class LoadedItem:
    """One image as the loader hands it over (its pixels travel apart, stacked by size).

    index: position in its dataset (or sample index); sha256: the file's content hash;
    source_size: ``WxH`` before preprocessing; meta: the dataset's annotations (text, boxes,
    class label, prompt); frames: frames in the file (the first is used); error: why it could
    not be loaded, or None."""

    index: int
    id: str
    sha256: str = ""
    source_size: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    frames: int = 1
    error: str | None = None

    @property
    def source_dimensions(self) -> tuple[int, int]:
        """``(width, height)`` before preprocessing."""
        width, height = (int(v) for v in self.source_size.split("x"))
        return width, height


@dataclass
class Loaded:
    """A worker's result for one image: the item and its (3, H, W) uint8 pixels ((T, 3, H, W) for
    a clip; None on error)."""

    item: LoadedItem
    pixels: torch.Tensor | None


class ImageLoading(TorchDataset):
    """Worker-side: load, convert and preprocess the images at ``positions`` of ``dataset``."""

    def __init__(self, dataset: Dataset, preprocessing: Preprocessing, positions: range) -> None:
        self.dataset, self.preprocessing, self.positions = dataset, preprocessing, positions

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, position: int) -> Loaded:
        index = self.positions[position]
        image_id = self.dataset.ids[index]
        if isinstance(self.dataset, ClipDataset):
            return self._load_clip(index, image_id)
        try:
            sample = self.dataset.load(index)
            if sample.array is not None and self.preprocessing.leaves_unchanged(sample.image.width, sample.image.height):
                pixels = sample.array.transpose(2, 0, 1).copy()  # no PIL round trip for arrays
            else:
                pixels = pil_to_uint8_chw(self.preprocessing.apply(sample.image))
            size = f"{sample.image.width}x{sample.image.height}"
            item = LoadedItem(index, image_id, sample.content_sha256, size, sample.meta, sample.image.info.get("frames", 1))
            return Loaded(item, torch.from_numpy(pixels))
        except BadImageError as exc:
            error = exc.problem
        except Exception as exc:  # a broken file must not end the run
            error = f"{type(exc).__name__}: {exc}"
        return Loaded(LoadedItem(index, image_id, error=error), None)

    def _load_clip(self, index: int, clip_id: str) -> Loaded:
        """A clip: each frame preprocessed as an image; pixels (T, 3, H, W) uint8."""
        try:
            clip = self.dataset.load_clip(index)
            height, width = clip.frames[0].shape[:2]
            if self.preprocessing.leaves_unchanged(width, height):
                pixels = np.stack(clip.frames).transpose(0, 3, 1, 2).copy()
            else:
                pixels = np.stack([pil_to_uint8_chw(self.preprocessing.apply(Image.fromarray(frame))) for frame in clip.frames])
            item = LoadedItem(index, clip_id, clip.content_sha256, f"{width}x{height}", clip.meta)
            return Loaded(item, torch.from_numpy(pixels))
        except BadImageError as exc:
            error = exc.problem
        except Exception as exc:  # a broken video must not end the run
            error = f"{type(exc).__name__}: {exc}"
        return Loaded(LoadedItem(index, clip_id, error=error), None)


class IndexOnly(TorchDataset):
    """For generators that make their samples on the device: the loader yields indices only."""

    def __init__(self, positions: range) -> None:
        self.positions = positions

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, position: int) -> Loaded:
        index = self.positions[position]
        return Loaded(LoadedItem(index, f"sample-{index:06d}"), None)


@dataclass
class LoadedBatch:
    """A batch as the workers hand it over: per-image records (no pixels) and, per image size,
    the positions of those images in ``items`` with their pixels stacked (B, 3, H, W) uint8,
    so one tensor per size crosses the process boundary (and is pinned, for the GPU)."""

    items: list[LoadedItem]
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
        keep = [p for p, item in enumerate(self.items) if item.index not in indices]
        new_position = {old: new for new, old in enumerate(keep)}
        groups = []
        for positions, pixels in self.groups:
            kept = [i for i, p in enumerate(positions) if p in new_position]
            if kept:
                groups.append(([new_position[positions[i]] for i in kept], pixels[kept]))
        return LoadedBatch([self.items[p] for p in keep], groups)


def collate(loaded: list[Loaded]) -> LoadedBatch:
    """Worker-side: group the loaded images by size and stack each group."""
    shapes: dict[tuple[int, ...], list[int]] = {}
    for position, one in enumerate(loaded):
        if one.pixels is not None:
            shapes.setdefault(tuple(one.pixels.shape), []).append(position)
    # numpy, not torch: a worker's arrays travel through the pipe instead of shared-memory
    # files, whose cache in the main process grows with batch size (memory would not stay flat)
    groups = [(positions, torch.stack([loaded[p].pixels for p in positions]).numpy()) for positions in shapes.values()]
    return LoadedBatch([one.item for one in loaded], groups)


def load_one(dataset: Dataset, preprocessing: Preprocessing, index: int) -> Loaded:
    """One image of ``dataset`` as a run sees it (for the gallery's originals and the probe)."""
    return ImageLoading(dataset, preprocessing, range(index, index + 1))[0]


def with_error(item: LoadedItem, error: str) -> LoadedItem:
    return replace(item, error=error)
