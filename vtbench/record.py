"""Run records: one versioned JSON per run (a tokenizer over a dataset, or a generator
against a reference), the per-image CSV beside it.

The schema is :class:`RunRecord`, documented in ``results/README.md``; bump
``SCHEMA_VERSION`` on any change that renames or re-means a field.
"""

from __future__ import annotations

import json
import platform
import subprocess
import time
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from vtbench.errors import VtbenchError

SCHEMA_NAME = "vtbench.run-record"
SCHEMA_VERSION = 3  # 3: portable paths (weights as file name + SHA-256); run columns in the per-image CSV
SUPPORTED_SCHEMA_VERSIONS = (1, 2, 3)  # 2: "task" in every record, "identity_sha", extractor versions
LIBRARIES = ("torch-fidelity", "lpips", "timm", "scipy", "torchmetrics", "diffusers", "transformers", "safetensors", "easyocr",
             "pytesseract", "rapidfuzz")  # fmt: skip  # the packages that compute or feed metrics


@dataclass
class RunRecord:
    """One run's record. ``task`` is ``reconstruction`` (``subject`` is written as the
    ``tokenizer`` block) or ``generation`` (written as the ``generator`` block)."""

    task: str
    run_name: str
    identity_sha: str  # what a rerun with the same settings reproduces (finished runs are skipped on it)
    config: dict[str, Any]
    recipe: dict[str, Any] | None
    subject: dict[str, Any]
    dataset: dict[str, Any]
    protocol: dict[str, Any]
    metrics: dict[str, Any]
    samples: dict[str, Any]
    cost: dict[str, Any] | None
    timings: dict[str, Any]
    memory: dict[str, Any]
    environment: dict[str, Any]
    per_image_file: str | None
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    def to_dict(self) -> dict[str, Any]:
        subject_key = "tokenizer" if self.task == "reconstruction" else "generator"
        return {
            "schema": SCHEMA_NAME,
            "schema_version": SCHEMA_VERSION,
            "task": self.task,
            "run_name": self.run_name,
            "identity_sha": self.identity_sha,
            "created": self.created,
            "config": self.config,
            "recipe": self.recipe,
            subject_key: self.subject,
            "dataset": self.dataset,
            "protocol": self.protocol,
            "metrics": self.metrics,
            "samples": self.samples,
            "cost": self.cost,
            "timings": self.timings,
            "memory": self.memory,
            "environment": self.environment,
            "per_image_file": self.per_image_file,
        }


def portable_path(path: str | Path) -> str:
    """``path`` as a record stores it, without the machine's own layout: relative to the
    working directory when inside it, else ``~/...`` under the home folder, else as given."""
    resolved = Path(path).expanduser().resolve()
    for base, prefix in ((Path.cwd().resolve(), ""), (Path.home().resolve(), "~/")):
        if resolved.is_relative_to(base):
            relative = resolved.relative_to(base).as_posix()
            return f"{prefix}{relative}" if relative != "." else (prefix.rstrip("/") or ".")
    return str(path)


def record_path(out_dir: str | Path, run_name: str) -> Path:
    return Path(out_dir) / f"{run_name}.json"


def per_image_path(out_dir: str | Path, run_name: str) -> Path:
    return Path(out_dir) / f"{run_name}.images.csv"


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


def load_record(path: str | Path) -> dict[str, Any]:
    """Read and check one run record."""
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VtbenchError(f"{path}: no such run record") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise VtbenchError(f"{path}: not a JSON run record ({exc})") from None
    if not isinstance(record, dict) or record.get("schema") != SCHEMA_NAME:
        raise VtbenchError(f'{path}: not a vtbench run record (no "schema": "{SCHEMA_NAME}")')
    if record.get("schema_version") not in SUPPORTED_SCHEMA_VERSIONS:
        raise VtbenchError(
            f"{path}: schema_version {record.get('schema_version')} is not supported by this vtbench (supports {SUPPORTED_SCHEMA_VERSIONS})"
        )
    record["_path"] = str(path)
    return record


def find_records(root: str | Path) -> list[dict[str, Any]]:
    """Every run record under ``root`` (a record file or a folder searched recursively)."""
    root = Path(root)
    if root.is_file():
        return [load_record(root)]
    if not root.is_dir():
        raise VtbenchError(f"{root}: no such file or folder")
    records = []
    for path in sorted(root.rglob("*.json")):
        if ".partial" in path.parts:
            continue
        try:
            with open(path, encoding="utf-8") as handle:
                head = handle.read(200)  # records start with their schema name
        except (OSError, UnicodeDecodeError):
            continue
        if SCHEMA_NAME in head:
            records.append(load_record(path))
    return records
