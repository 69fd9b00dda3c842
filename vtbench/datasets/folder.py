"""An image folder: every image file below a root, recursively, ids = sorted relative paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vtbench.datasets.base import Dataset, Sample, sha256_hex
from vtbench.errors import BadImageError, DatasetError
from vtbench.images import IMAGE_EXTENSIONS, decode_image
from vtbench.provenance import portable_path


class ImageFolder(Dataset):
    """Every image file under a folder (recursive; any size or mode)."""

    description = "Every image file under a folder, recursively (any size or mode)"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DatasetError(f"image folder {self.root} does not exist or is not a folder")
        self.name = self.root.name or "folder"
        self._paths = sorted(  # dangling symlinks stay: they fail to load and are counted, not silently dropped
            (
                p
                for p in self.root.rglob("*")
                if p.suffix.lower() in IMAGE_EXTENSIONS and (p.is_file() or (p.is_symlink() and not p.exists()))
            ),
            key=lambda p: p.relative_to(self.root).as_posix(),
        )
        if not self._paths:
            raise DatasetError(f"no images found in {self.root} (looked recursively for {', '.join(IMAGE_EXTENSIONS)})")
        self._ids = [p.relative_to(self.root).as_posix() for p in self._paths]

    @property
    def ids(self) -> list[str]:
        return self._ids

    def load(self, index: int) -> Sample:
        path, image_id = self._paths[index], self._ids[index]
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise BadImageError(str(path), f"cannot read file: {exc}") from exc
        return Sample(image_id, decode_image(data, str(path)), sha256_hex(data))

    def content_sha256(self, index: int) -> str:
        return sha256_hex(self._paths[index].read_bytes())

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "root": portable_path(self.root)}


IMAGENET_VAL_IMAGES = 50_000


class ImageNetVal(ImageFolder):
    """ImageNet-1k validation images from a local folder (flat ``ILSVRC2012_val_*.JPEG`` or
    one sub-folder per class). Evaluate it the way the field does:
    ``--resolution 256 --resize-mode adm-center-crop``; the record notes an incomplete set."""

    description = "ImageNet val (50,000) from a local folder (option: root); use --resize-mode adm-center-crop"

    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        self.name = "imagenet-val"

    def describe(self) -> dict[str, Any]:
        found = len(self)
        described = {**super().describe(), "expected_images": IMAGENET_VAL_IMAGES}
        if found != IMAGENET_VAL_IMAGES:
            described["warnings"] = [
                f"{found} images found in {self.root}, not the {IMAGENET_VAL_IMAGES:,} of ImageNet val: "
                "numbers are not comparable with published 50k results"
            ]
        return described
