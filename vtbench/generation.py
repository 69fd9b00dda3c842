"""Generation evaluation (gFID & co.): a generator's samples against a reference set.

The same metrics, extractors and record schema as reconstruction runs: the reference
plays the "originals" side (its features cached by content), the samples the
"reconstructions" side. The reference is a dataset (folder, ``.npz`` with ``arr_0``,
registered name) or a statistics file with ``mu``/``sigma`` (FID only).
"""

from __future__ import annotations

import re
import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vtbench.errors import VtbenchError
from vtbench.generators import GENERATORS, Generator
from vtbench.images import Preprocessing
from vtbench.io import atomic_write_json
from vtbench.metrics.base import MetricBatch
from vtbench.metrics.frechet import FrechetDistance
from vtbench.record import SCHEMA_NAME, SCHEMA_VERSION, environment, record_path
from vtbench.reference import load_statistics, reference_features
from vtbench.runner import create_dataset, metric_entries, prepare_metrics, resolve_device

GENERATION_METRICS = ["fid", "sfid", "kid", "isc", "precision", "recall"]


@dataclass
class GenerationConfig:
    """One generator (or sample set) scored against one reference."""

    generator: str
    reference: str
    metrics: list[str] = field(default_factory=lambda: list(GENERATION_METRICS))
    generator_options: dict[str, Any] = field(default_factory=dict)
    reference_options: dict[str, Any] = field(default_factory=dict)
    label: str | None = None
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    batch_size: int = 32
    device: str = "auto"
    expected_samples: int | None = None
    skip_unavailable: bool = False
    use_cache: bool = True

    @property
    def reference_name(self) -> str:
        return Path(self.reference).stem if ("/" in self.reference or self.reference.endswith(".npz")) else self.reference

    @property
    def generator_name(self) -> str:
        return self.label or (Path(self.generator).stem if self.generator not in GENERATORS else self.generator)

    @property
    def run_name(self) -> str:
        return re.sub(r"[^A-Za-z0-9._=+-]", "_", f"{self.generator_name}__{self.reference_name}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "preprocessing": asdict(self.preprocessing)}


def create_generator(name: str, options: dict[str, Any]) -> Generator:
    """A registered generator, or a sample folder / ``.npz`` path read by ``samples-reader``."""
    if name not in GENERATORS and Path(name).expanduser().exists():
        return GENERATORS.create("samples-reader", path=name, **options)
    return GENERATORS.create(name, **options)


def _is_statistics_file(reference: str) -> bool:
    if not reference.endswith(".npz") or not Path(reference).is_file():
        return False
    with np.load(reference, mmap_mode="r") as archive:
        return "arr_0" not in archive.files and "mu" in archive.files


def evaluate_generation(config: GenerationConfig, out_dir: str | Path) -> dict[str, Any]:
    """Score a generator's samples against a reference; writes and returns the run record."""
    started = time.perf_counter()
    device = resolve_device(config.device)
    metrics, unavailable, located, extractors = prepare_metrics(config.metrics, device, config.skip_unavailable)
    paired = [name for name, metric in metrics.items() if metric.kind != "distribution"]
    if paired:
        raise VtbenchError(
            f"{', '.join(paired)} compare image pairs; a generation run takes distributional metrics ({', '.join(GENERATION_METRICS)})"
        )
    timings = {"reference_s": 0.0, "generate_s": 0.0, "features_s": 0.0, "metrics_s": 0.0}

    # the samples: a wrong count is refused before any work
    generator = create_generator(config.generator, config.generator_options)
    known = generator.num_samples
    if config.expected_samples is not None and known is not None and known != config.expected_samples:
        raise VtbenchError(
            f"generator {config.generator_name!r} holds {known} samples, {config.expected_samples} were expected: "
            "refusing to score a different sample count"
        )
    # the reference side (cached by content)
    tick = time.perf_counter()
    reference_info: dict[str, Any]
    if _is_statistics_file(config.reference):
        mu, sigma = load_statistics(config.reference)
        not_fid = [name for name, metric in metrics.items() if not isinstance(metric, FrechetDistance)]
        if not_fid:
            raise VtbenchError(f"{config.reference} holds mu/sigma statistics: it can score FID only, not {', '.join(not_fid)}")
        for metric in metrics.values():
            metric.set_reference_statistics(mu, sigma)
        reference_info = {"statistics_file": str(Path(config.reference).resolve()), "dim": int(mu.shape[0])}
    else:
        dataset = create_dataset(config.reference, config.reference_options)
        reference_info = {"extractors": {}}
        for name, extractor in extractors.items():
            features, provenance = reference_features(dataset, config.preprocessing, extractor, config.batch_size, config.use_cache)
            reference_info["extractors"][name] = provenance
            batch = MetricBatch([], torch.zeros(0), torch.zeros(0), features={name: {"originals": features}})
            for metric in metrics.values():
                if metric.extractor == name:
                    metric.update(batch)
        reference_info.update(dataset.describe())
    timings["reference_s"] = time.perf_counter() - tick

    # the generated side
    n_generated = 0
    iterator = iter(generator.generate(batch_size=config.batch_size))
    while True:
        tick = time.perf_counter()
        images = next(iterator, None)
        timings["generate_s"] += time.perf_counter() - tick
        if images is None:
            break
        if not torch.isfinite(images).all():
            raise VtbenchError(
                f"generator {config.generator_name!r} produced NaN or inf in samples {n_generated}..{n_generated + len(images) - 1}"
            )
        pixels = images.clamp(0, 1).mul(255).round().to(torch.uint8).to(device)
        tick = time.perf_counter()
        features = {name: {"reconstructions": extractor(pixels)} for name, extractor in extractors.items()}
        timings["features_s"] += time.perf_counter() - tick
        tick = time.perf_counter()
        batch = MetricBatch([], torch.zeros(0), torch.zeros(0), features=features)
        for metric in metrics.values():
            metric.update(batch)
        timings["metrics_s"] += time.perf_counter() - tick
        n_generated += len(images)
    if config.expected_samples is not None and n_generated != config.expected_samples:
        raise VtbenchError(
            f"generator {config.generator_name!r} produced {n_generated} samples, {config.expected_samples} were expected: "
            "refusing to score a different sample count"
        )
    if n_generated == 0:
        raise VtbenchError(f"generator {config.generator_name!r} produced no samples")

    timings["total_s"] = time.perf_counter() - started
    record = {
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "task": "generation",
        "run_name": config.run_name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": config.to_dict(),
        "recipe": None,
        "generator": {"name": config.generator_name, "preset": config.generator, "options": generator.options()},
        "dataset": {"name": config.reference_name, "reference": reference_info},
        "protocol": {
            "reference_preprocessing": config.preprocessing.to_dict(),
            "sample_rounding": "samples clamped to [0, 1] and rounded to 8-bit before feature extraction",
            "feature_extractors": [extractor.describe() for extractor in extractors.values()],
            "weights": [w.to_dict() for w in located.values()],
        },
        "metrics": metric_entries(metrics, unavailable),
        "samples": {"requested": config.expected_samples or n_generated, "evaluated": n_generated, "failed": 0, "failures": []},
        "timings": timings,
        "memory": {
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "cuda_peak_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
        },
        "environment": environment(device),
    }
    atomic_write_json(record_path(out_dir, config.run_name), record)
    return record
