"""Files a run writes besides its record: saved reconstructions, at paths confined to ``--out``."""

from __future__ import annotations

import io
import re
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch


def reconstruction_path(out_dir: Path, run_name: str, image_id: str) -> Path:
    """``OUT/RUN.recon/<id>.png``. The id's folders are kept, but every part is made safe
    (no ``..``, no absolute path, no odd characters), so no id can write outside the folder."""
    parts = [re.sub(r"[^A-Za-z0-9._=+-]", "_", part) for part in PurePosixPath(image_id.replace("\\", "/")).parts]
    parts = [part.lstrip(".") or "_" for part in parts if part not in ("/", "", ".")]
    relative = Path(*parts).with_suffix(".png") if parts else Path("_.png")
    return out_dir / f"{run_name}.recon" / relative


def sample_path(out_dir: Path, run_name: str, index: int) -> Path:
    """``OUT/RUN.samples/NNNNNN.png``: sample ``index`` of a generation run."""
    return out_dir / f"{run_name}.samples" / f"{index:06d}.png"


def write_adm_npz(path: Path, pngs: list[Path], labels: list[int] | None = None) -> None:
    """The ADM sample-batch layout: ``arr_0`` uint8 (N, H, W, 3) in the order of ``pngs`` (and
    ``arr_1`` int64 class labels when given), streamed one image at a time, so memory does not
    grow with the sample count. Written to a temporary file, then moved into place."""
    import zipfile

    first = np.asarray(Image.open(pngs[0]).convert("RGB"))
    temporary = path.with_name(f".{path.name}.tmp")
    with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        with archive.open("arr_0.npy", "w", force_zip64=True) as entry:
            np.lib.format.write_array_header_1_0(entry, {"descr": "|u1", "fortran_order": False, "shape": (len(pngs), *first.shape)})
            for png in pngs:
                array = np.asarray(Image.open(png).convert("RGB"), dtype=np.uint8)
                if array.shape != first.shape:
                    raise ValueError(f"{png}: {array.shape[1]}x{array.shape[0]}, the first sample is {first.shape[1]}x{first.shape[0]}")
                entry.write(np.ascontiguousarray(array).tobytes())
        if labels is not None:
            buffer = io.BytesIO()
            np.save(buffer, np.asarray(labels, dtype=np.int64))
            archive.writestr("arr_1.npy", buffer.getvalue())
    temporary.replace(path)


def png_bytes(array: np.ndarray) -> bytes:
    """(H, W, 3) uint8 -> PNG file contents."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def film_strip(clips: torch.Tensor) -> torch.Tensor:
    """Clips (N, T, C, H, W) -> images (N, C, H, T*W): each clip's frames side by side."""
    return clips.permute(0, 2, 3, 1, 4).flatten(3, 4)


def from_film_strip(strips: torch.Tensor, frames: int) -> torch.Tensor:
    """The inverse of :func:`film_strip`: (N, C, H, T*W) -> (N, T, C, H, W)."""
    n, c, h, width = strips.shape
    return strips.reshape(n, c, h, frames, width // frames).permute(0, 3, 1, 2, 4)
