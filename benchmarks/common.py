"""Shared benchmark helpers: a folder of real 256x256 photo crops, and result writing."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np
from PIL import Image

RESULTS = Path(__file__).resolve().parent.parent / "results" / "benchmarks"


def photo_crops(folder: Path, count: int, size: int = 256, seed: int = 0) -> Path:
    """Write ``count`` PNG crops (size x size) of the scikit-image photographs into ``folder``."""
    import skimage.data

    from vtbench.datasets.samples import SAMPLE_NAMES

    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.glob("*.png"))) == count:
        return folder
    rng = np.random.default_rng(seed)
    photos = [np.asarray(Image.fromarray(getattr(skimage.data, n)()).convert("RGB")) for n in SAMPLE_NAMES]
    for i in range(count):
        photo = photos[i % len(photos)]
        top = rng.integers(0, photo.shape[0] - size + 1)
        left = rng.integers(0, photo.shape[1] - size + 1)
        crop = photo[top : top + size, left : left + size]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        Image.fromarray(np.ascontiguousarray(crop)).save(folder / f"{i:05d}.png")
    return folder


def machine() -> dict:
    import torch

    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
    }


def save(name: str, result: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps({**result, "machine": machine()}, indent=2) + "\n")
    print(json.dumps(result, indent=2))
