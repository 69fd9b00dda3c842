"""Reading images of any mode into RGB uint8, and the preprocessing policy.

Every image crosses the rest of vtbench as RGB. Conversions are fixed and recorded:
grayscale is replicated, alpha is composited over white, 16-bit is scaled by 255/65535
with rounding, CMYK and palette images go through PIL's own conversion, and the EXIF
orientation is applied.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageOps

from vtbench.declaration import range_problems, setting
from vtbench.errors import BadImageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm", ".pgm", ".pbm", ".tga")

# PIL refuses images above 2x this as "decompression bombs"; a benchmark may see 10000x10000.
MAX_IMAGE_PIXELS = 20_000 * 20_000

FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
ResizeMode = Literal["center-crop", "adm-center-crop", "var-center-crop", "cv2-center-crop", "resize", "pad", "tile", "none"]
RESIZE_MODES = ("center-crop", "adm-center-crop", "var-center-crop", "cv2-center-crop", "resize", "pad", "tile", "none")
CV2_FILTER = "opencv-bilinear"  # cv2.INTER_LINEAR without antialiasing (cv2-center-crop's fixed filter)
VAR_MID_RATIO = 1.125  # VAR's evaluation resizes the shorter side to round(1.125 x resolution) before the crop
PREPROCESSING_PANEL = "Preprocessing"

CONVERSION_POLICY = {
    "color": "RGB",
    "grayscale": "replicated to 3 channels",
    "alpha": "composited over white",
    "high_bit_depth": "scaled to 8 bits (x*255/65535, rounded)",
    "exif_orientation": "applied",
    "library": f"Pillow {Image.__version__}",
}


@dataclass(frozen=True)
class Preprocessing:
    """How images are brought to the evaluation resolution (written into every record).

    resolution: target side in pixels; ``None`` keeps each image's own size (or uses the
        tokenizer's native resolution when it has one).
    mode: ``center-crop`` resizes the shorter side to ``resolution`` then crops the centre
        square; ``adm-center-crop`` is guided-diffusion's (box-halve while the image is at
        least twice the target, then bicubic, then crop); ``var-center-crop`` is VAR's
        evaluation (the shorter side to ``round(1.125 x resolution)`` with Lanczos, then the
        centre crop); ``cv2-center-crop`` is albumentations' ``SmallestMaxSize`` + ``CenterCrop``
        (IBQ's evaluation: OpenCV's bilinear resize without antialiasing, sides rounded, offsets
        floored); ``resize`` squashes to a square;
        ``pad`` keeps the aspect ratio with the longer side at ``resolution`` (the tokenizer
        sees it padded to a square, the metrics only the content); ``tile`` keeps the image's
        own size and feeds the tokenizer ``resolution``-sized tiles (see
        :mod:`vtbench.aspect`); ``none`` leaves the image alone.
    filter: PIL resampling filter for the resize.
    """

    resolution: int | None = setting(
        None, flag="--resolution", minimum=1, maximum=8192, panel=PREPROCESSING_PANEL,
        help="Evaluation side in pixels (default: tokenizer native, else image size).",
    )  # fmt: skip
    mode: ResizeMode = setting(
        "center-crop", flag="--resize-mode", choices=RESIZE_MODES, panel=PREPROCESSING_PANEL,
        help="center-crop, adm-center-crop (guided-diffusion's), var-center-crop (VAR's: 1.125x then crop, Lanczos), cv2-center-crop "
        "(albumentations/OpenCV bilinear, IBQ's), resize, pad (aspect kept, padded for the tokenizer), tile (own size, "
        "tokenizer-sized tiles) or none.",
    )  # fmt: skip
    filter: str = setting(
        "bicubic", flag="--filter", choices=tuple(FILTERS), panel=PREPROCESSING_PANEL, help="bicubic, lanczos, bilinear, box or nearest."
    )

    def __post_init__(self) -> None:
        if self.resolution is not None and (not isinstance(self.resolution, int) or isinstance(self.resolution, bool)):
            raise ValueError(f"resolution must be a whole number of pixels, got {self.resolution!r}")
        problems = range_problems(self)
        if problems:
            raise ValueError("; ".join(problems))

    def resolved(self, native_resolution: int | None) -> Preprocessing:
        """Fill in the tokenizer's native resolution when none was asked for."""
        if self.resolution is None and native_resolution is not None and self.mode != "none":
            return Preprocessing(native_resolution, self.mode, self.filter)
        return self

    def to_dict(self) -> dict[str, Any]:
        """What the record says: the settings, with the filter a mode fixes (``adm-center-crop``
        bicubic, ``var-center-crop`` Lanczos) in place of one it ignores."""
        return {**asdict(self), "filter": self.effective_filter, **self.geometry(), "library": CONVERSION_POLICY["library"]}

    @property
    def effective_filter(self) -> str:
        return {"adm-center-crop": "bicubic", "var-center-crop": "lanczos", "cv2-center-crop": CV2_FILTER}.get(self.mode, self.filter)

    def geometry(self) -> dict[str, str]:
        """How ``center-crop`` sizes and places its crop, when it applies: torchvision's
        ``Resize(resolution)`` + ``CenterCrop(resolution)`` (the longer side truncated, the
        offsets rounded). Recorded, and part of cache keys and run identities, so results made
        by the rounding of vtbench 0.x before it are never reused or compared as the same."""
        return {"geometry": CENTER_CROP_GEOMETRY} if self.mode in ("center-crop", "var-center-crop") and self.resolution is not None else {}

    def canonical(self) -> dict[str, Any]:
        """What the policy does, ignoring settings that have no effect (for cache keys)."""
        if self.resolution is None or self.mode == "none":
            return {"resolution": None, "mode": "none"}
        if self.mode == "tile":
            return {"resolution": self.resolution, "mode": "tile", "filter": None}
        return {**asdict(self), **self.geometry(), "filter": self.effective_filter}

    def _mapping(self, size: tuple[int, int]) -> tuple[float, float, float, float]:
        """``(sx, sy, left, top)``: a source point ``(x, y)`` of a ``size = (width, height)``
        image lands at ``(x * sx - left, y * sy - top)`` after :meth:`apply` (before clipping)."""
        width, height = size
        if self.mode in ("none", "tile") or self.resolution is None:
            return 1.0, 1.0, 0.0, 0.0
        target = self.resolution
        if self.mode in ("resize", "pad"):
            new_w, new_h = (target, target) if self.mode == "resize" else _longer_side_to(target, width, height)
            return new_w / width, new_h / height, 0.0, 0.0
        current_w, current_h = width, height
        if self.mode == "adm-center-crop":
            while min(current_w, current_h) >= 2 * target:
                current_w, current_h = current_w // 2, current_h // 2
        new_w, new_h, left, top = _crop_geometry(self.mode, target, current_w, current_h)
        return new_w / width, new_h / height, float(left), float(top)

    def map_box(self, box: tuple[float, float, float, float], size: tuple[int, int]) -> tuple[float, float, float, float] | None:
        """Where a box ``(x0, y0, x1, y1)`` of a ``size = (width, height)`` source image lands
        after :meth:`apply`; ``None`` when less than half of it survives the crop."""
        x0, y0, x1, y1 = box
        sx, sy, left, top = self._mapping(size)
        mapped = (x0 * sx - left, y0 * sy - top, x1 * sx - left, y1 * sy - top)
        if self.mode in ("none", "tile", "resize", "pad") or self.resolution is None:
            return mapped
        target = float(self.resolution)
        clipped = (max(0.0, mapped[0]), max(0.0, mapped[1]), min(target, mapped[2]), min(target, mapped[3]))
        area = max(0.0, mapped[2] - mapped[0]) * max(0.0, mapped[3] - mapped[1])
        kept = max(0.0, clipped[2] - clipped[0]) * max(0.0, clipped[3] - clipped[1])
        return clipped if area > 0 and kept >= 0.5 * area else None

    def map_points(self, points: list[tuple[float, float]], size: tuple[int, int]) -> list[tuple[float, float]]:
        """Where points ``(x, y)`` of a ``size = (width, height)`` source image land after
        :meth:`apply` (not clipped: a point may fall outside the crop)."""
        sx, sy, left, top = self._mapping(size)
        return [(x * sx - left, y * sy - top) for x, y in points]

    def leaves_unchanged(self, width: int, height: int) -> bool:
        """Whether :meth:`apply` returns a ``width`` x ``height`` image as it is."""
        if self.mode in ("none", "tile") or self.resolution is None:
            return True
        if self.mode == "pad":
            return max(width, height) == self.resolution
        if self.mode == "var-center-crop":  # resized to 1.125x and cropped whatever the size
            return False
        return width == height == self.resolution

    def apply(self, image: Image.Image) -> Image.Image:
        """Resize/crop an RGB PIL image according to the policy."""
        if self.mode == "none" or self.resolution is None:
            return image
        size, resample = self.resolution, FILTERS[self.filter]
        if self.mode == "tile":
            return image
        if self.mode == "resize":
            return image.resize((size, size), resample=resample)
        if self.mode == "pad":
            new_size = _longer_side_to(size, *image.size)
            return image if new_size == image.size else image.resize(new_size, resample=resample)
        if self.mode == "adm-center-crop":
            while min(image.size) >= 2 * size:
                image = image.resize(tuple(x // 2 for x in image.size), resample=Image.Resampling.BOX)
            resample = Image.Resampling.BICUBIC
        elif self.mode == "var-center-crop":
            resample = Image.Resampling.LANCZOS
        new_w, new_h, left, top = _crop_geometry(self.mode, size, *image.size)
        if self.mode == "cv2-center-crop":
            return _cv2_resize_and_crop(image, new_w, new_h, left, top, size)
        if (new_w, new_h) != image.size:
            image = image.resize((new_w, new_h), resample=resample)
        return image.crop((left, top, left + size, top + size))


CENTER_CROP_GEOMETRY = "torchvision"


def _crop_geometry(mode: str, size: int, width: int, height: int) -> tuple[int, int, int, int]:
    """(new width, new height, left, top) of a crop mode's resize and ``size`` square crop.
    ``adm-center-crop`` (guided-diffusion's ``center_crop_arr``): each side ``round(x * scale)``,
    offsets ``(new - size) // 2``. ``center-crop`` (torchvision's ``Resize(size)`` then
    ``CenterCrop(size)``): the shorter side ``size``, the longer ``int(size * long / short)``,
    offsets ``int(round((new - size) / 2))``; ``var-center-crop`` the same with the shorter side
    ``round(1.125 * size)`` (VAR's ``utils/data.py``: ``Resize(mid_reso, LANCZOS)``, ``CenterCrop``);
    ``cv2-center-crop`` (albumentations' ``SmallestMaxSize`` + ``CenterCrop``) as ``adm-center-crop``."""
    if mode in ("adm-center-crop", "cv2-center-crop"):  # albumentations' SmallestMaxSize rounds as ADM does, floors the offsets
        scale = size / min(width, height)
        new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
        return new_w, new_h, (new_w - size) // 2, (new_h - size) // 2
    short = round(VAR_MID_RATIO * size) if mode == "var-center-crop" else size
    if width <= height:
        new_w, new_h = short, int(short * height / width)
    else:
        new_w, new_h = int(short * width / height), short
    return new_w, new_h, int(round((new_w - size) / 2.0)), int(round((new_h - size) / 2.0))


def _cv2_resize_and_crop(image: Image.Image, width: int, height: int, left: int, top: int, size: int) -> Image.Image:
    """OpenCV's ``resize(INTER_LINEAR)`` to ``width`` x ``height`` (no antialiasing; skipped at
    the same size, as albumentations skips it), then the ``size`` square at ``left``, ``top``."""
    import cv2

    array = np.asarray(image)
    if (width, height) != image.size:
        array = cv2.resize(array, (width, height), interpolation=cv2.INTER_LINEAR)
    return Image.fromarray(np.ascontiguousarray(array[top : top + size, left : left + size]))


def _longer_side_to(target: int, width: int, height: int) -> tuple[int, int]:
    """(width, height) scaled so the longer side is ``target``, the aspect ratio kept."""
    scale = target / max(width, height)
    return (max(1, round(width * scale)), max(1, round(height * scale)))


def to_rgb(image: Image.Image, image_id: str = "<image>") -> Image.Image:
    """Convert any PIL mode to 8-bit RGB by the fixed policy in ``CONVERSION_POLICY``."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I", "I;16N"):
        array = np.asarray(image).astype(np.float64)
        if array.max(initial=0) > 255 or mode.startswith("I;16"):
            array = array * (255.0 / 65535.0)
        return Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8), "L").convert("RGB")
    if mode == "F":
        raise BadImageError(image_id, "32-bit float images (PIL mode F) have no defined value range; save as 8/16-bit")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    try:
        return image.convert("RGB")
    except (ValueError, OSError) as exc:
        raise BadImageError(image_id, f"cannot convert PIL mode {mode} to RGB: {exc}") from exc


def read_image(path: str | Path, image_id: str | None = None) -> Image.Image:
    """Open, fully decode and convert one file to RGB; errors name the file."""
    image_id = image_id or str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BadImageError(image_id, f"cannot read file: {exc}") from exc
    return decode_image(data, image_id)


def decode_image(data: bytes, image_id: str) -> Image.Image:
    """Decode encoded image bytes (any format PIL reads) to RGB; errors name ``image_id``."""
    if not data:
        raise BadImageError(image_id, "empty file (0 bytes)")
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as handle:
                frames = getattr(handle, "n_frames", 1)
                handle.load()
                image = ImageOps.exif_transpose(handle)
    except Image.DecompressionBombError as exc:
        raise BadImageError(image_id, f"too large to decode: {exc}") from exc
    except (OSError, SyntaxError, ValueError, Image.UnidentifiedImageError) as exc:
        raise BadImageError(image_id, f"corrupt, truncated or not an image ({type(exc).__name__}: {exc})") from exc
    if image.width < 1 or image.height < 1:
        raise BadImageError(image_id, f"empty image ({image.width}x{image.height})")
    rgb = to_rgb(image, image_id)
    if frames > 1:  # animated GIF/WebP/PNG, multi-page TIFF: the first frame is what is scored
        rgb.info["frames"] = frames
    return rgb


def pil_to_uint8_chw(image: Image.Image) -> np.ndarray:
    """RGB PIL image -> uint8 array of shape (3, H, W)."""
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1).copy()
