"""The built-in detail suite: patterns whose spectra are known analytically, and textures.

Sinusoidal gratings (known frequency in cycles/pixel and orientation), zone plates (every
frequency up to Nyquist, by radius), Siemens stars, checkerboards of 1-8 px squares, and
scikit-image's brick, grass and gravel textures. 512x512 RGB; each image's parameters are
stored in ``annotations.jsonl``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

VERSION = 1
SIDE = 512
GRATING_FREQUENCIES = (0.03, 0.08, 0.15, 0.25, 0.35, 0.45)  # cycles per pixel (Nyquist = 0.5)
GRATING_ORIENTATIONS = (0, 45, 90)  # degrees
CHECKER_SIZES = (1, 2, 4, 8)  # pixels per square
TEXTURES = ("brick", "grass", "gravel")


def _to_image(values: np.ndarray) -> Image.Image:
    """[-1, 1] grey -> 8-bit RGB."""
    grey = np.clip(np.rint(127.5 + 127.5 * values), 0, 255).astype(np.uint8)
    return Image.fromarray(np.repeat(grey[..., None], 3, axis=2), "RGB")


def grating(frequency: float, orientation: float) -> np.ndarray:
    y, x = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64)
    theta = np.deg2rad(orientation)
    return np.cos(2 * np.pi * frequency * (x * np.cos(theta) + y * np.sin(theta)))


def zone_plate() -> np.ndarray:
    """cos(pi r^2 / SIDE): local frequency r / SIDE cycles/pixel, Nyquist at the edge centre."""
    y, x = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64) - SIDE / 2
    return np.cos(np.pi * (x**2 + y**2) / SIDE)


def siemens_star(spokes: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64) - (SIDE - 1) / 2
    return np.sign(np.cos(spokes / 2 * np.arctan2(y, x)))


def checkerboard(square: int) -> np.ndarray:
    y, x = np.mgrid[0:SIDE, 0:SIDE]
    return np.where(((x // square) + (y // square)) % 2 == 0, 1.0, -1.0)


def texture(name: str) -> Image.Image:
    from skimage import data

    grey = getattr(data, name)()[:SIDE, :SIDE]
    return Image.fromarray(np.repeat(grey[..., None], 3, axis=2).astype(np.uint8), "RGB")


def patterns() -> list[tuple[str, Image.Image, dict[str, Any]]]:
    items = []
    for frequency in GRATING_FREQUENCIES:
        for orientation in GRATING_ORIENTATIONS:
            meta = {"pattern": "grating", "frequency": frequency, "orientation": orientation}
            items.append((f"grating-f{frequency:.2f}-o{orientation:03d}.png", _to_image(grating(frequency, orientation)), meta))
    items.append(("zone-plate.png", _to_image(zone_plate()), {"pattern": "zone-plate", "max_frequency": 0.5}))
    items.append(("siemens-star.png", _to_image(siemens_star()), {"pattern": "siemens-star", "spokes": 64}))
    for square in CHECKER_SIZES:
        items.append((f"checker-{square}px.png", _to_image(checkerboard(square)), {"pattern": "checkerboard", "square": square}))
    for name in TEXTURES:
        items.append((f"texture-{name}.png", texture(name), {"pattern": "texture", "source": f"skimage.data.{name}"}))
    return items


def make_detail_suite(out: str | Path) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for name, image, meta in patterns():
        image.save(out / name)
        lines.append(json.dumps({"id": name, **meta}))
    (out / "annotations.jsonl").write_text("\n".join(lines) + "\n")
    (out / "suite.json").write_text(json.dumps({"suite": "detail", "version": VERSION, "side": SIDE}, indent=2))
    return out
