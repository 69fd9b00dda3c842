"""The built-in ``faces`` suite: real face photographs that ship with installed packages, so
face metrics run offline. Each face is annotated with its box (dlib's detection, checked by
eye: the astronaut's mission patch, which the detector also takes for a face, is left out).

- ``astronaut`` (scikit-image, 512x512): one face, 90 px;
- ``grace-hopper`` (matplotlib's sample data, 512x600): one face, 186 px;
- ``portraits-3x3`` (512x512): the two photographs as a 3x3 mosaic of square centre crops
  (every other pair mirrored), nine faces of 37 to 76 px: the small and medium sizes.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from PIL import Image

from vtbench.datasets.base import Dataset, Sample, sha256_hex

# face boxes (x0, y0, x1, y1) in each photograph's pixels
PHOTO_FACES: dict[str, tuple[float, float, float, float]] = {"astronaut": (175, 76, 266, 167), "grace-hopper": (180, 139, 367, 326)}
MOSAIC_SIDE, MOSAIC_GRID = 512, 3


@functools.lru_cache(maxsize=2)
def photograph(name: str) -> Image.Image:
    """The photograph ``name`` (read once per process; callers only read it)."""
    if name == "astronaut":
        import skimage.data

        return Image.fromarray(skimage.data.astronaut()).convert("RGB")
    import matplotlib.cbook

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as image:
        return image.convert("RGB")


def mosaic() -> tuple[Image.Image, list[tuple[float, float, float, float]]]:
    """The 3x3 portrait mosaic and its face boxes."""
    tile = MOSAIC_SIDE // MOSAIC_GRID
    canvas = Image.new("RGB", (MOSAIC_SIDE, MOSAIC_SIDE))
    boxes = []
    for k in range(MOSAIC_GRID * MOSAIC_GRID):
        name = ("astronaut", "grace-hopper")[k % 2]
        source = photograph(name)
        side = min(source.size)
        left, top = (source.width - side) // 2, (source.height - side) // 2
        square = source.crop((left, top, left + side, top + side)).resize((tile, tile), Image.Resampling.LANCZOS)
        x0, y0, x1, y1 = ((v - o) * tile / side for v, o in zip(PHOTO_FACES[name], (left, top, left, top), strict=True))
        if (k // 2) % 2:  # mirrored
            square = square.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            x0, x1 = tile - x1, tile - x0
        column, row = k % MOSAIC_GRID, k // MOSAIC_GRID
        canvas.paste(square, (column * tile, row * tile))
        boxes.append((x0 + column * tile, y0 + row * tile, x1 + column * tile, y1 + row * tile))
    return canvas, boxes


class FaceSuite(Dataset):
    """Face photographs from scikit-image and matplotlib, with face boxes (no download)."""

    description = "Built-in face suite: 2 real portraits + a 3x3 mosaic of them, 11 annotated faces (no download)"

    def __init__(self) -> None:
        self.name = "faces"
        self._ids = ["astronaut", "grace-hopper", "portraits-3x3"]

    @property
    def ids(self) -> list[str]:
        return self._ids

    def load(self, index: int) -> Sample:
        image_id = self._ids[index]
        if image_id == "portraits-3x3":
            image, boxes = mosaic()
        else:
            image, boxes = photograph(image_id).copy(), [PHOTO_FACES[image_id]]  # the cached photograph stays untouched
        array = np.asarray(image)
        faces = [{"box": [float(v) for v in box]} for box in boxes]
        return Sample(image_id, image, sha256_hex(array.tobytes()), {"faces": faces}, array=array)

    def describe(self) -> dict[str, Any]:
        import matplotlib
        import skimage

        return {**super().describe(), "source": f"scikit-image {skimage.__version__} astronaut; matplotlib {matplotlib.__version__} "
                "grace_hopper.jpg; boxes from dlib's detector, checked by eye"}  # fmt: skip
