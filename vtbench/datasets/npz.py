"""Images stored in an ``.npz`` as ``arr_0`` uint8 (N, H, W, 3): ADM reference batches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vtbench.datasets.base import Dataset, Sample, sha256_hex
from vtbench.errors import DatasetError
from vtbench.npz import npz_rows
from vtbench.provenance import portable_path


class NpzImages(Dataset):
    """Images in ``arr_0`` of an ``.npz`` (uint8 NHWC), e.g. ``VIRTUAL_imagenet256_labeled.npz``."""

    description = "Images in arr_0 of an .npz (uint8 NHWC), e.g. an ADM reference batch"
    decodes_files = False

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self._array = npz_rows(self.path, "arr_0")  # read image by image: memory does not grow with the batch's size
        if self._array.dtype != np.uint8 or self._array.ndim != 4 or self._array.shape[-1] != 3:
            raise DatasetError(f"{self.path}: arr_0 must be uint8 (N, H, W, 3), got {self._array.dtype} {self._array.shape}")
        self.name = self.path.stem
        self._ids = [f"{i:06d}" for i in range(self._array.shape[0])]

    @property
    def ids(self) -> list[str]:
        return self._ids

    def load(self, index: int) -> Sample:
        array = np.ascontiguousarray(self._array[index])
        return Sample(self._ids[index], Image.fromarray(array, "RGB"), sha256_hex(array.data), array=array)

    def content_sha256(self, index: int) -> str:
        return sha256_hex(np.ascontiguousarray(self._array[index]).tobytes())

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "path": portable_path(self.path)}
