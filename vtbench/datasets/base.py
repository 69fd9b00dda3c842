"""The dataset contract: a sorted list of stable ids, each loadable as an RGB image."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from PIL import Image


@dataclass
class Sample:
    """One loaded image: its stable id, RGB pixels, a SHA-256 of its source content, extras."""

    id: str
    image: Image.Image
    content_sha256: str
    meta: dict[str, Any] = field(default_factory=dict)
    array: np.ndarray | None = None
    """The same pixels as uint8 (H, W, 3), when the dataset holds them as an array already."""


class Dataset(ABC):
    """A finite, ordered image collection. ``ids`` are stable and sorted; ``load`` may raise
    :class:`~vtbench.errors.BadImageError` for one id without affecting the others."""

    name: str = "dataset"
    description: str = ""
    tags: ClassVar[dict[str, Any]] = {}  # extra metadata for `vtbench show`
    decodes_files: bool = True
    """False for images already in memory as arrays: they load fastest without worker processes."""
    languages: list[str] | None = None
    """The scripts of its text (text datasets): the OCR engine must read these."""

    @property
    @abstractmethod
    def ids(self) -> list[str]:
        """Stable image ids in evaluation order."""

    @abstractmethod
    def load(self, index: int) -> Sample:
        """Load image ``index`` (position in ``ids``) as RGB."""

    def content_sha256(self, index: int) -> str:
        """SHA-256 of image ``index``'s source content (subclasses avoid decoding when they can)."""
        return self.load(index).content_sha256

    def __len__(self) -> int:
        return len(self.ids)

    def describe(self) -> dict[str, Any]:
        """What the record stores about this dataset (beyond the manifest hash)."""
        return {"name": self.name, "n_images": len(self)}


def sha256_hex(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_sha256(ids_and_hashes: list[tuple[str, str]]) -> str:
    """Hash of the (id, content hash) list: the dataset's identity in records and caches."""
    digest = hashlib.sha256()
    for image_id, content in sorted(ids_and_hashes):
        digest.update(f"{image_id}\t{content}\n".encode())
    return digest.hexdigest()
