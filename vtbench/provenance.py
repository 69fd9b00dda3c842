"""Where a record's numbers came from: the software and hardware that made them, and paths
as records store them (portable between machines)."""

from __future__ import annotations

import platform
import subprocess
from functools import cache, lru_cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

LIBRARIES = ("torch-fidelity", "lpips", "timm", "scipy", "torchmetrics", "diffusers", "transformers", "safetensors", "easyocr",
             "pytesseract", "rapidfuzz")  # fmt: skip  # the packages that compute or feed metrics


def portable_path(path: str | Path) -> str:
    """``path`` as a record stores it, without the machine's own layout: relative to the
    working directory when inside it, else ``~/...`` under the home folder, else as given."""
    resolved = Path(path).expanduser().resolve()
    for base, prefix in ((Path.cwd().resolve(), ""), (Path.home().resolve(), "~/")):
        if resolved.is_relative_to(base):
            relative = resolved.relative_to(base).as_posix()
            return f"{prefix}{relative}" if relative != "." else (prefix.rstrip("/") or ".")
    return str(path)


@lru_cache(maxsize=1)
def _git_state() -> dict[str, Any] | None:
    source = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=source, capture_output=True, text=True, timeout=5)
        return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


@cache
def version(package: str) -> str | None:
    """The installed version of ``package``, or None (cached: metadata lookups cost milliseconds)."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def environment(device: torch.device) -> dict[str, Any]:
    """Versions and hardware that produced a record."""
    import torch

    from vtbench import __version__

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    return {
        "vtbench": __version__,
        "git": _git_state(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torchvision": version("torchvision"),
        "numpy": version("numpy"),
        "pillow": version("pillow"),
        "scikit-image": version("scikit-image"),
        "libraries": {name: version(name) for name in LIBRARIES if version(name)},
        "device": str(device),
        "device_name": device_name,
        "torch_threads": torch.get_num_threads(),
    }
