"""Files a run writes besides its record: saved reconstructions, at paths confined to ``--out``."""

from __future__ import annotations

import io
import re
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image


def reconstruction_path(out_dir: Path, run_name: str, image_id: str) -> Path:
    """``OUT/RUN.recon/<id>.png``. The id's folders are kept, but every part is made safe
    (no ``..``, no absolute path, no odd characters), so no id can write outside the folder."""
    parts = [re.sub(r"[^A-Za-z0-9._=+-]", "_", part) for part in PurePosixPath(image_id.replace("\\", "/")).parts]
    parts = [part.lstrip(".") or "_" for part in parts if part not in ("/", "", ".")]
    relative = Path(*parts).with_suffix(".png") if parts else Path("_.png")
    return out_dir / f"{run_name}.recon" / relative


def png_bytes(array: np.ndarray) -> bytes:
    """(H, W, 3) uint8 -> PNG file contents."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()
