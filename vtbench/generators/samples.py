"""Samples produced elsewhere: an image folder, or an ADM-style ``.npz`` (``arr_0``, uint8 NHWC)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vtbench.datasets.base import Dataset
from vtbench.datasets.folder import ImageFolder
from vtbench.datasets.npz import NpzImages
from vtbench.errors import DatasetError
from vtbench.generators.base import Generator
from vtbench.images import pil_to_uint8_chw
from vtbench.npz import npz_rows
from vtbench.provenance import portable_path


class SampleReader(Generator):
    """Reads finished samples: a folder of images, or an ``.npz`` with ``arr_0`` (N, H, W, 3) uint8.

    Conditions and seeds are ignored (the samples already exist); ``num_samples`` is exact,
    so a short sample set is never scored as a full one.
    """

    description = "Samples made elsewhere: an image folder or an ADM .npz (arr_0, uint8 NHWC)"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.name = f"samples:{self.path.name}"
        self._folder: ImageFolder | None = None
        self._array: np.ndarray | None = None
        if self.path.is_dir():
            self._folder = ImageFolder(self.path)
        elif self.path.suffix == ".npz" and self.path.is_file():
            array = npz_rows(self.path, "arr_0")  # read sample by sample: never the whole batch in memory
            if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3:
                raise DatasetError(f"{self.path}: arr_0 must be uint8 (N, H, W, 3), got {array.dtype} {array.shape}")
            self._array = array
        else:
            raise DatasetError(f"{self.path}: not a folder of images or an .npz file")

    @property
    def num_samples(self) -> int:
        return len(self._folder) if self._folder is not None else int(self._array.shape[0])

    def options(self) -> dict[str, Any]:
        return {"path": portable_path(self.path)}

    def as_dataset(self) -> Dataset:
        """The samples as a dataset (the engine loads them in DataLoader workers)."""
        return self._folder if self._folder is not None else NpzImages(self.path)

    def samples(self, indices: Sequence[int]) -> torch.Tensor:
        if self._array is not None:
            batch = np.stack([self._array[i] for i in indices]).transpose(0, 3, 1, 2)
        else:
            batch = np.stack([pil_to_uint8_chw(self._folder.load(i).image) for i in indices])
        return torch.from_numpy(np.ascontiguousarray(batch)).to(torch.float32) / 255.0
