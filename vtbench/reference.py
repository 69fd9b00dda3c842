"""Reference features for distributional metrics, cached by content.

A reference set's features are computed once per (dataset manifest, preprocessing,
extractor, weights hash, cache schema) and reused by every later run and generator: the
key is made of content, never of a user-given name. Files are written atomically.

Also: export of Inception statistics as a torch-fidelity / clean-fid style ``.npz``
(``mu``, ``sigma``) and import of such files, or of ADM reference batches (``arr_0``
images, used as a dataset; their TF-computed statistics are not mixed with ours).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import tempfile
from pathlib import Path

import numpy as np
import torch

from vtbench.errors import VtbenchError
from vtbench.features.base import FeatureExtractor
from vtbench.images import Preprocessing
from vtbench.io import write_output

CACHE_SCHEMA_VERSION = 1


def cache_dir() -> Path:
    from vtbench.weights import home

    return home() / "cache" / "reference-features"


def cache_key(manifest: str, preprocessing: Preprocessing, extractor: FeatureExtractor) -> str:
    identity = {
        "manifest": manifest,
        "preprocessing": preprocessing.canonical(),
        "extractor": extractor.name,
        "extractor_version": extractor.version,
        "weights": sorted(w.sha256 for w in extractor.located.values()),
        "schema": CACHE_SCHEMA_VERSION,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


class FeatureCache:
    """Cached per-image features of a reference, one folder per key::

        <key>/meta.json          {"ids": [...], "features": {"2048": [N, D], ...}}
        <key>/<feature>.npy      float32 (N, D), memory-mapped when read

    Written through :class:`CacheWriter` into a temporary folder renamed into place on
    commit, so a reader never sees half an entry and a killed writer leaves no entry.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or cache_dir()
        sweep_abandoned(self.root)

    def load(self, key: str) -> tuple[list[str], dict[str, np.ndarray]] | None:
        folder = self.root / key
        try:
            meta = json.loads((folder / "meta.json").read_text())
            features = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in meta["features"]}
        except (OSError, ValueError, KeyError):
            return None
        return meta["ids"], features

    def writer(self, key: str, n: int, dims: dict[str, int]) -> CacheWriter:
        return CacheWriter(self.root, key, n, dims)


def sweep_abandoned(root: Path) -> None:
    """Remove half-written entries whose writer (a process of this host) is gone, e.g. killed."""
    if not root.is_dir():
        return
    for folder in root.glob(".*"):
        try:
            writer = json.loads((folder / "writer.json").read_text())
        except (OSError, ValueError):
            continue
        if writer.get("host") == socket.gethostname() and not _alive(int(writer.get("pid", 0))):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class CacheWriter:
    """Fills (N, D) arrays row by row on disk (bounded memory), then commits them atomically."""

    def __init__(self, root: Path, key: str, n: int, dims: dict[str, int]) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root, self.key, self.dims = root, key, dims
        self.tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{key[:12]}."))
        (self.tmp / "writer.json").write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
        self.arrays = {
            name: np.lib.format.open_memmap(self.tmp / f"{name}.npy", mode="w+", dtype=np.float32, shape=(n, dim))
            for name, dim in dims.items()
        }
        self.filled = np.zeros(n, dtype=bool)

    def put(self, rows: list[int], features: dict[str, torch.Tensor]) -> None:
        for name, array in self.arrays.items():
            array[rows] = features[name].float().cpu().numpy()
        self.filled[rows] = True

    def commit(self, ids: list[str]) -> bool:
        """Publish the entry if every row was filled; otherwise discard it. Returns success."""
        complete = bool(self.filled.all())
        for array in self.arrays.values():
            array.flush()
        self.arrays.clear()
        if complete:
            meta = {"ids": ids, "features": {name: [len(ids), dim] for name, dim in self.dims.items()}, "schema": CACHE_SCHEMA_VERSION}
            (self.tmp / "meta.json").write_text(json.dumps(meta))
            target = self.root / self.key
            if target.exists():
                shutil.rmtree(target)
            os.replace(self.tmp, target)
        else:
            self.discard()
        return complete

    def discard(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def export_statistics(features: torch.Tensor, path: str | Path, provenance: dict | None = None) -> None:
    """Write ``mu`` and ``sigma`` (float64, ddof 1) of (N, D) features as an ``.npz``; with
    ``provenance``, also how they were made, as JSON text in ``provenance`` (read without
    unpickling: ``np.load(path)["provenance"].item()``)."""
    array = features.double().numpy()
    buffer = io.BytesIO()
    extra = {"provenance": np.array(json.dumps(provenance, sort_keys=True))} if provenance is not None else {}
    np.savez(buffer, mu=array.mean(axis=0), sigma=np.cov(array, rowvar=False), **extra)
    write_output(path, buffer.getvalue())


def write_reference_statistics(dataset: str, out: str | Path, given: dict, extractor_name: str = "inception-v3-compat") -> dict:
    """The mu/sigma of ``extractor_name``'s embedding (Inception's 2048-d pool features by
    default: FID statistics) of ``dataset`` read as a generation run reads its reference, under
    the settings ``given`` (resolved as for ``vtbench run``: a protocol, preprocessing, device,
    batch size, workers, limit, cache), written to ``out`` with their provenance (the extractor
    named, so a run never takes them for another's); returns the provenance."""
    from vtbench import __version__, weights
    from vtbench.engine.components import create_dataset, resolve_device
    from vtbench.engine.features import dataset_features
    from vtbench.features import EMBEDDINGS, EXTRACTORS
    from vtbench.settings import Settings, SettingsError, resolve

    if extractor_name not in EMBEDDINGS:
        raise VtbenchError(f"--extractor {extractor_name!r}: choose one of {', '.join(EMBEDDINGS)}")
    try:
        settings = Settings(**resolve("generation", given))
    except SettingsError as exc:
        raise SettingsError(*(f"command line: {problem}" for problem in exc.problems)) from None
    source = create_dataset(dataset, {})  # a wrong name first, before any weights are looked for
    located = {name: weights.locate(name) for name in EXTRACTORS.get(extractor_name).load().weights}
    extractor = EXTRACTORS.create(extractor_name, located=located, device=resolve_device(settings.device))
    feature = EMBEDDINGS[extractor_name]["embedding"][0]
    workers = settings.num_workers or 0
    features, provenance = dataset_features(source, settings.preprocessing, extractor, settings.batch_size, settings.use_cache, workers,
                                            settings.limit)  # fmt: skip
    provenance = {**provenance, "reference": source.describe(), "preprocessing": settings.preprocessing.to_dict(),
                  "protocol": settings.protocol, "feature": feature, "extractor": extractor.describe(), "vtbench": __version__}  # fmt: skip
    export_statistics(features[feature], out, provenance)
    return provenance


def statistics_extractor(path: str | Path) -> str:
    """The extractor whose features a statistics file (or ADM batch) summarises: the one its
    provenance names (``vtbench reference-stats``), else Inception (torch-fidelity, clean-fid
    and ADM files hold Inception statistics)."""
    from vtbench.npz import npz_array, npz_keys

    if "provenance" in npz_keys(path):
        try:
            provenance = json.loads(str(npz_array(path, "provenance").item()))
            return str(provenance["extractor"]["name"])
        except (ValueError, KeyError, TypeError):
            raise VtbenchError(f"{path}: its 'provenance' is not the JSON vtbench reference-stats writes") from None
    return "inception-v3-compat"


def load_statistics(
    path: str | Path, keys: tuple[str, str] = ("mu", "sigma"), missing_ok: bool = False
) -> tuple[np.ndarray, np.ndarray] | None:
    """Read a mean and covariance (``keys``, float64) from a torch-fidelity / clean-fid style
    ``.npz`` or an ADM reference batch; None when they are absent and ``missing_ok``."""
    from vtbench.npz import npz_array, npz_keys

    found = npz_keys(path)
    if not all(key in found for key in keys):
        if missing_ok:
            return None
        raise VtbenchError(f"{path}: no {'/'.join(keys)} statistics (found {', '.join(found)})")
    mu, sigma = (npz_array(path, key).astype(np.float64) for key in keys)  # a copy: the file is mapped read-only
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise VtbenchError(f"{path}: {keys[0]} {mu.shape} and {keys[1]} {sigma.shape} do not fit together")
    problem = covariance_problem(mu, sigma)
    if problem:
        raise VtbenchError(f"{path}: {keys[1]} {problem}: not the statistics of a set of images")
    return mu, sigma


COVARIANCE_TOLERANCE = 1e-6  # relative: asymmetry, and negative eigenvalues, beyond this much of the largest are not rounding


def covariance_problem(mu: np.ndarray, sigma: np.ndarray) -> str | None:
    """What is wrong with a mean and covariance, or None: values not finite, a covariance
    not symmetric or not positive semi-definite beyond rounding (``COVARIANCE_TOLERANCE`` of
    its largest entry / eigenvalue; covariances computed from images, the ADM reference
    batches' among them, pass)."""
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        return "holds values that are not finite (NaN or inf)"
    scale = float(np.abs(sigma).max()) or 1.0
    asymmetry = float(np.abs(sigma - sigma.T).max())
    if asymmetry > COVARIANCE_TOLERANCE * scale:
        return f"is not symmetric (largest |S - S^T| {asymmetry:.3g}, entries up to {scale:.3g})"
    eigenvalues = np.linalg.eigvalsh((sigma + sigma.T) / 2)
    if eigenvalues[0] < -COVARIANCE_TOLERANCE * max(float(eigenvalues[-1]), 1e-300):
        negative = int((eigenvalues < -COVARIANCE_TOLERANCE * max(float(eigenvalues[-1]), 1e-300)).sum())
        return f"is not positive semi-definite ({negative} eigenvalues down to {eigenvalues[0]:.3g}, the largest {eigenvalues[-1]:.3g})"
    return None
