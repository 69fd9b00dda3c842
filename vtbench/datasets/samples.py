"""Real photographs that ship inside scikit-image: a default set that needs no download."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from vtbench.datasets.base import Dataset, Sample, sha256_hex

# Photographs (colour and grayscale) that skimage.data loads without pooch downloads.
SAMPLE_NAMES = (
    "astronaut",
    "brick",
    "camera",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "retina",
    "rocket",
)


class SkimageSamples(Dataset):
    """14 real photographs shipped with scikit-image (offline; 300x451 to 1411x1411)."""

    description = "14 real photographs shipped with scikit-image (no download)"

    def __init__(self, names: list[str] | tuple[str, ...] = SAMPLE_NAMES) -> None:
        unknown = sorted(set(names) - set(SAMPLE_NAMES))
        if unknown:
            raise ValueError(f"unknown scikit-image samples {unknown}; choose from {', '.join(SAMPLE_NAMES)}")
        self.name = "samples"
        self._ids = sorted(names)

    @property
    def ids(self) -> list[str]:
        return self._ids

    def load(self, index: int) -> Sample:
        import skimage.data

        image_id = self._ids[index]
        array = np.ascontiguousarray(getattr(skimage.data, image_id)())
        image = Image.fromarray(array).convert("RGB")
        return Sample(image_id, image, sha256_hex(array.tobytes()))

    def describe(self) -> dict[str, Any]:
        import skimage

        return {**super().describe(), "source": f"scikit-image {skimage.__version__} skimage.data"}
