"""The streaming evaluation pipeline: one (tokenizer, dataset) run in one pass.

A DataLoader decodes and preprocesses images in worker processes; the tokenizer and every
metric run on the device batch by batch; per-image rows and metric states are
checkpointed under ``OUT/.partial/RUN/`` so a killed run resumes where it stopped and ends
with the numbers an uninterrupted run gives. Nothing holds the whole dataset in memory.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import resource
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from vtbench import aspect
from vtbench import weights as weights_store
from vtbench.datasets import DATASETS, Dataset
from vtbench.datasets.base import manifest_sha256
from vtbench.errors import BadImageError, DatasetError, RunStateError, TokenizerOutputError, VtbenchError
from vtbench.features import EXTRACTORS
from vtbench.features.base import FeatureExtractor
from vtbench.images import CONVERSION_POLICY, Preprocessing, pil_to_uint8_chw
from vtbench.io import atomic_write_bytes, atomic_write_json
from vtbench.metrics import METRICS, Metric, MetricBatch
from vtbench.metrics.base import TextReading
from vtbench.metrics.text import NORMALISATION, size_bucket
from vtbench.ocr import OCR_ENGINES
from vtbench.ocr.base import OCREngine, OCRRequest, OCRUnavailableError
from vtbench.ocr.cache import OCRCache, ocr_key
from vtbench.partial_state import load_state, save_state
from vtbench.record import SCHEMA_NAME, SCHEMA_VERSION, environment, per_image_path, record_path
from vtbench.reference import CacheWriter, FeatureCache, cache_key
from vtbench.tokenizers import TOKENIZERS, Tokenizer, Tokens
from vtbench.weights import Located, WeightsUnavailableError

ROUNDING = "reconstructions clamped to [0, 1] and rounded to 8-bit levels before every metric"
MAX_FAILURES_IN_RECORD = 1000
COST_METRICS = ("bpp", "tokens")  # recorded in every run


@dataclass
class RunConfig:
    """Everything that defines one (tokenizer, dataset) run; written into the record."""

    tokenizer: str
    dataset: str
    metrics: list[str] = field(default_factory=lambda: ["psnr", "ssim", "bpp", "tokens"])
    tokenizer_options: dict[str, Any] = field(default_factory=dict)
    dataset_options: dict[str, Any] = field(default_factory=dict)
    label: str | None = None
    dataset_label: str | None = None
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    batch_size: int = 8
    num_workers: int | None = None
    device: str = "auto"
    limit: int | None = None
    strict: bool = False
    save_reconstructions: bool = False
    skip_unavailable: bool = False
    ocr_engine: str = "tesseract"  # read text regions for text metrics (cer, wer, t-ned, t-acc, ...)
    compile: bool = False  # torch.compile a network tokenizer's encoder and decoder
    use_cache: bool = True  # originals' features from / into the content-keyed reference cache
    checkpoint_every: int = 10  # batches between checkpoints of the partial state ...
    checkpoint_seconds: float = 30.0  # ... and at least this long between two checkpoints

    @property
    def dataset_name(self) -> str:
        """The dataset's short name: its label, or a folder's own name rather than its path."""
        if self.dataset_label:
            return self.dataset_label
        if self.dataset in ("folder", "annotated") and self.dataset_options.get("root"):
            return Path(self.dataset_options["root"]).name
        return Path(self.dataset).name if ("/" in self.dataset or os.sep in self.dataset) else self.dataset

    @property
    def run_name(self) -> str:
        """File-name-safe ``TOKENIZER__DATASET``, the stem of the record files."""
        return re.sub(r"[^A-Za-z0-9._=+-]", "_", f"{self.label or self.tokenizer}__{self.dataset_name}")

    def identity(self) -> dict[str, Any]:
        """The fields that must match for a partial run to be resumed."""
        return {
            "tokenizer": self.tokenizer,
            "tokenizer_options": self.tokenizer_options,
            "dataset": self.dataset,
            "dataset_options": self.dataset_options,
            "dataset_label": self.dataset_label,
            "metrics": self.metrics,
            "preprocessing": asdict(self.preprocessing),
            "batch_size": self.batch_size,
            "limit": self.limit,
            "ocr_engine": self.ocr_engine,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "preprocessing": asdict(self.preprocessing)}


class Progress(Protocol):
    """What the runner reports to a progress display (the CLI draws a rich bar)."""

    def start(self, run_name: str, total: int, done: int) -> None: ...
    def advance(self, images: int) -> None: ...
    def finish(self) -> None: ...


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise VtbenchError(f"device {device!r} asked for, but torch sees no CUDA device (torch {torch.__version__})")
    return torch.device(device)


def default_num_workers() -> int:
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def create_dataset(name: str, options: dict[str, Any]) -> Dataset:
    """A registered dataset by name; an existing folder path also works as a name."""
    if name not in DATASETS and Path(name).expanduser().is_dir():
        kind = "annotated" if (Path(name).expanduser() / "annotations.jsonl").is_file() else "folder"
        return DATASETS.create(kind, root=name, **options)
    if name not in DATASETS and name.endswith(".npz") and Path(name).expanduser().is_file():
        return DATASETS.create("npz", path=name, **options)
    if name not in DATASETS and ("/" in name or Path(name).suffix):
        raise DatasetError(f"dataset {name!r}: no such folder, and not a registered dataset name")
    return DATASETS.create(name, **options)


def prepare_metrics(
    names: list[str], device: torch.device, skip_unavailable: bool
) -> tuple[dict[str, Metric], dict[str, tuple[Metric, str]], dict[str, Located], dict[str, FeatureExtractor]]:
    """Create the metrics, find every weights file they need before any work starts, and
    build each shared feature extractor once. Returns (metrics, unavailable, located, extractors)."""
    metrics: dict[str, Metric] = {name: METRICS.create(name) for name in names}
    located: dict[str, Located] = {}
    unavailable: dict[str, tuple[Metric, str]] = {}
    for name, metric in metrics.items():
        needed = list(metric.required_weights)
        if metric.extractor:
            needed += list(EXTRACTORS.get(metric.extractor).load().weights)
        for weights_name in needed:
            if weights_name in located:
                continue
            try:
                located[weights_name] = weights_store.locate(weights_name)
            except WeightsUnavailableError as exc:
                unavailable[name] = (metric, str(exc))
                break
    if unavailable and not skip_unavailable:
        problems = "\n".join(f"  {name}: {reason}" for name, (_, reason) in unavailable.items())
        raise WeightsUnavailableError(
            f"cannot compute {', '.join(unavailable)}:\n{problems}\n"
            "Fix that, or pass --skip-unavailable to record these metrics as not computed."
        )
    active = {name: metric for name, metric in metrics.items() if name not in unavailable}
    extractors: dict[str, FeatureExtractor] = {}
    for metric in active.values():
        if metric.extractor and metric.extractor not in extractors:
            factory = EXTRACTORS.get(metric.extractor).load()
            extractors[metric.extractor] = EXTRACTORS.create(
                metric.extractor, located={w: located[w] for w in factory.weights}, device=device
            )
        metric.prepare(located, device)
    return active, unavailable, located, extractors


def metric_entries(metrics: dict[str, Metric], unavailable: dict[str, tuple[Metric, str]]) -> dict[str, Any]:
    """The ``metrics`` block of a record: computed values, then metrics recorded as not computed."""
    entries: dict[str, Any] = {}
    for name, metric in metrics.items():
        entries[name] = {"value": metric.compute(), "n": metric.count, "status": "ok", **metric.describe()}
        if metric.details():
            entries[name]["details"] = metric.details()
        if metric.warnings():
            entries[name]["warnings"] = metric.warnings()
    for name, (metric, reason) in unavailable.items():
        entries[name] = {"value": None, "n": 0, "status": "unavailable", "reason": reason, **metric.describe()}
    return entries


class _Loading(TorchDataset):
    """Worker-side: load, convert and preprocess one image; errors become rows, not crashes."""

    def __init__(self, dataset: Dataset, preprocessing: Preprocessing, start: int, stop: int) -> None:
        self.dataset, self.preprocessing, self.start, self.stop = dataset, preprocessing, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, position: int) -> dict[str, Any]:
        index = self.start + position
        image_id = self.dataset.ids[index]
        try:
            sample = self.dataset.load(index)
            image = self.preprocessing.apply(sample.image)
            return {
                "index": index,
                "id": image_id,
                "pixels": torch.from_numpy(pil_to_uint8_chw(image)),
                "sha256": sample.content_sha256,
                "source_size": f"{sample.image.width}x{sample.image.height}",
                "meta": sample.meta,
                "error": None,
            }
        except BadImageError as exc:
            error = exc.problem
        except Exception as exc:  # a broken file must not end the run
            error = f"{type(exc).__name__}: {exc}"
        return {"index": index, "id": image_id, "pixels": None, "sha256": "", "source_size": "", "error": error}


def _as_list(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return items


@dataclass
class _State:
    """What is checkpointed: progress, metric states, timings and failures."""

    done: int = 0
    rows_bytes: int = 0
    metric_states: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(("load_wait_s", "encode_s", "decode_s", "features_s", "metrics_s", "total_s"), 0.0)
    )
    failures: list[dict[str, str]] = field(default_factory=list)
    n_failed: int = 0
    n_evaluated: int = 0
    eval_sizes: dict[str, int] = field(default_factory=dict)
    identity_sha: str = ""
    cost: dict[str, Any] = field(default_factory=lambda: {"bits": 0.0, "tokens": 0, "pixels": 0, "tokenizer_calls": 0})
    latent: dict[str, Any] = field(default_factory=dict)


class Runner:
    """Runs one :class:`RunConfig` into ``out_dir``; see :func:`evaluate`."""

    def __init__(
        self,
        config: RunConfig,
        out_dir: str | Path,
        progress: Progress | None = None,
        restart: bool = False,
        recipe: dict[str, Any] | None = None,
    ) -> None:
        self.config, self.out_dir, self.progress, self.recipe = config, Path(out_dir), progress, recipe
        self.device = resolve_device(config.device)
        self._prepare_metrics(config)
        self.tokenizer: Tokenizer = TOKENIZERS.create(config.tokenizer, **config.tokenizer_options).to(self.device)
        if config.compile:
            compile_tokenizer(self.tokenizer, config.tokenizer)
        self.dataset = create_dataset(config.dataset, config.dataset_options)
        self._prepare_ocr(config)
        self.preprocessing = config.preprocessing.resolved(self.tokenizer.info.native_resolution)
        self.total = len(self.dataset) if config.limit is None else min(config.limit, len(self.dataset))
        self.partial_dir = self.out_dir / ".partial" / config.run_name
        self.columns = ["index", "id", "status", "error", "source_size", "eval_size", "content_sha256", *self.metrics]
        self.restart = restart

    def _prepare_metrics(self, config: RunConfig) -> None:
        names = list(dict.fromkeys([*config.metrics, *COST_METRICS]))  # cost always: bpp and tokens in every table
        prepared = prepare_metrics(names, self.device, config.skip_unavailable)
        self.metrics, self.unavailable, self.located, self.extractors = prepared

    def _prepare_ocr(self, config: RunConfig) -> None:
        """Build the OCR engine once and check it can read the dataset's languages, before the run."""
        self.ocr_engine: OCREngine | None = None
        self.ocr_cache: OCRCache | None = None
        self.ocr_counts = {"reconstructions_read": 0, "originals_read": 0, "originals_cached": 0}
        readers = {name: metric for name, metric in self.metrics.items() if metric.needs_ocr}
        if not readers:
            return
        languages = list(getattr(self.dataset, "languages", None) or ["en"])
        try:
            engine = OCR_ENGINES.create(config.ocr_engine)
            engine.check(languages)
        except OCRUnavailableError as exc:
            if not config.skip_unavailable:
                raise OCRUnavailableError(
                    f"cannot compute {', '.join(readers)}: {exc}\nFix that, pick another engine with --ocr-engine "
                    "(`vtbench list ocr`), or pass --skip-unavailable to record these metrics as not computed."
                ) from None
            for name, metric in readers.items():
                self.unavailable[name] = (metric, str(exc))
                del self.metrics[name]
            return
        self.ocr_engine = engine
        self.ocr_read_originals = any(getattr(metric, "against", "") == "ocr" for metric in readers.values())
        if config.use_cache:
            self.ocr_cache = OCRCache()

    def _read_text(self, items: list[dict[str, Any]], originals: torch.Tensor, recon: torch.Tensor) -> list[list[TextReading]]:
        """OCR every text region of the batch at the evaluation resolution (crops in parallel);
        originals' readings come from the content-keyed OCR cache when it has them."""
        assert self.ocr_engine is not None
        height, width = originals.shape[-2:]
        to_numpy = lambda t: t.mul(255).round_().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()  # noqa: E731
        recon_pixels = to_numpy(recon)
        regions: list[tuple[int, dict[str, Any], tuple[int, int, int, int]]] = []
        relative_heights: list[float] = []
        for position, item in enumerate(items):
            source_w, source_h = (int(v) for v in item["source_size"].split("x"))
            for region in text_regions(item["meta"]):
                box = region.get("box")
                mapped = self.preprocessing.map_box(tuple(box), (source_w, source_h)) if box else (0, 0, width, height)
                if mapped is None:
                    continue
                pad = 2
                x0, y0 = max(0, int(mapped[0]) - pad), max(0, int(mapped[1]) - pad)
                x1, y1 = min(width, int(np.ceil(mapped[2])) + pad), min(height, int(np.ceil(mapped[3])) + pad)
                if x1 - x0 >= 2 and y1 - y0 >= 2:
                    regions.append((position, region, (x0, y0, x1, y1)))
                    text_height = region.get("text_height")  # in source pixels, when the dataset knows it
                    relative_heights.append(text_height / source_h if text_height else (mapped[3] - mapped[1]) / height)

        def requests(pixels: np.ndarray, which: list[int]) -> list[OCRRequest]:
            crops = [regions[i] for i in which]
            return [
                OCRRequest(np.ascontiguousarray(pixels[p][y0:y1, x0:x1]), r.get("language", "en"), r.get("layout", "block"))
                for p, r, (x0, y0, x1, y1) in crops
            ]

        recon_text = self.ocr_engine.read(requests(recon_pixels, list(range(len(regions)))))
        original_text: list[str | None] = [None] * len(regions)
        if self.ocr_read_originals:
            version = self.ocr_engine.version()
            keys = [
                ocr_key(image=items[p]["sha256"], preprocessing=self.preprocessing.canonical(), box=box, layout=r.get("layout", "block"),
                        language=r.get("language", "en"), engine=self.ocr_engine.name, version=version)
                for p, r, box in regions
            ]  # fmt: skip
            cached = self.ocr_cache.get(keys) if self.ocr_cache else {}
            todo = [i for i, key in enumerate(keys) if key not in cached]
            fresh = self.ocr_engine.read(requests(to_numpy(originals), todo)) if todo else []
            if self.ocr_cache and todo:
                self.ocr_cache.put({keys[i]: text for i, text in zip(todo, fresh, strict=True)})
            found = dict(zip(todo, fresh, strict=True))
            original_text = [cached[key] if key in cached else found[i] for i, key in enumerate(keys)]
            self.ocr_counts["originals_cached"] += len(keys) - len(todo)
            self.ocr_counts["originals_read"] += len(todo)
        self.ocr_counts["reconstructions_read"] += len(regions)
        readings: list[list[TextReading]] = [[] for _ in items]
        readouts = zip(regions, relative_heights, recon_text, original_text, strict=True)
        for (position, region, _), relative, recon_ocr, original_ocr in readouts:
            bucket = region.get("bucket") or size_bucket(relative, 1.0)  # a dataset's own buckets (TokBench) come first
            readings[position].append(TextReading(region.get("text"), region.get("language", "en"), bucket, recon_ocr, original_ocr))
        return readings

    # -- checkpoint files -------------------------------------------------------------
    @property
    def _state_path(self) -> Path:
        return self.partial_dir / "state.safetensors"

    @property
    def _rows_path(self) -> Path:
        return self.partial_dir / "rows.csv"

    def _identity_sha(self) -> str:
        identity = {
            **self.config.identity(),
            "active_metrics": sorted(self.metrics),
            "tokenizer_info": self.tokenizer.options(),
            "dataset": self.dataset.describe(),
        }
        return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()

    def _load_or_start(self) -> _State:
        identity = self._identity_sha()
        if self.restart and self.partial_dir.exists():
            shutil.rmtree(self.partial_dir)
        if (self.partial_dir / "state.pt").exists():
            raise RunStateError(
                f"{self.partial_dir} holds resume state in the old pickle format (state.pt), which vtbench no longer "
                "unpickles; run again with --restart to discard it"
            )
        if self._state_path.exists():
            plain, tensors = load_state(self._state_path)
            state = _State(**plain, metric_states=tensors)
            if state.identity_sha != identity:
                raise RunStateError(
                    f"{self.partial_dir} holds a partial run of {self.config.run_name} made with different settings; "
                    "run again with --restart to discard it"
                )
            with open(self._rows_path, "r+b") as handle:  # rows written after the last checkpoint are dropped
                handle.truncate(state.rows_bytes)
            for name, metric in self.metrics.items():
                metric.load_state_dict(state.metric_states[name])
            return state
        self.partial_dir.mkdir(parents=True, exist_ok=True)
        header = io.StringIO()
        csv.writer(header).writerow(self.columns)
        atomic_write_bytes(self._rows_path, header.getvalue().encode())
        return _State(rows_bytes=len(header.getvalue().encode()), identity_sha=identity)

    def _checkpoint(self, state: _State, rows: list[list[Any]]) -> None:
        if rows:
            text = io.StringIO()
            csv.writer(text).writerows(rows)
            with open(self._rows_path, "ab") as handle:
                handle.write(text.getvalue().encode())
                handle.flush()
                os.fsync(handle.fileno())
                state.rows_bytes = handle.tell()
            rows.clear()
        state.metric_states = {name: metric.state_dict() for name, metric in self.metrics.items()}
        plain = {key: value for key, value in asdict(state).items() if key != "metric_states"}
        save_state(self._state_path, plain, state.metric_states)

    # -- the pass ---------------------------------------------------------------------------
    def _timed(self, state: _State, key: str, fn: Callable[[], Any]) -> Any:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        start = time.perf_counter()
        result = fn()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        state.timings[key] = state.timings.get(key, 0.0) + time.perf_counter() - start
        return result

    def _fail(self, state: _State, rows: list[list[Any]], item: dict[str, Any], stage: str, error: str) -> None:
        message = f"{item['id']}: {stage}: {error}"
        if self.config.strict:
            self._checkpoint(state, rows)
            raise VtbenchError(f"{message} (--strict; partial progress kept in {self.partial_dir})")
        state.n_failed += 1
        if len(state.failures) < MAX_FAILURES_IN_RECORD:
            state.failures.append({"id": item["id"], "stage": stage, "error": error})
        rows.append(
            [
                item["index"],
                item["id"],
                "failed",
                f"{stage}: {error}",
                item.get("source_size", ""),
                "",
                item.get("sha256", ""),
                *[""] * len(self.metrics),
            ]
        )

    def _process_group(self, state: _State, rows: list[list[Any]], items: list[dict[str, Any]]) -> None:
        height, width = items[0]["pixels"].shape[-2:]
        too_small = [(name, metric.min_size) for name, metric in self.metrics.items() if min(height, width) < metric.min_size]
        if too_small:
            needs = ", ".join(f"{name} needs at least {size}x{size}" for name, size in too_small)
            for item in items:
                self._fail(state, rows, item, "size", f"image is {width}x{height} at evaluation; {needs} (set --resolution)")
            return
        originals = torch.stack([item["pixels"] for item in items]).to(self.device, non_blocking=True).float().div_(255.0)
        try:
            recon, tokens = self._tokenize(state, originals, items[0]["id"])
        except TokenizerOutputError:
            raise
        except Exception as exc:
            if len(items) > 1:  # find the image that breaks the tokenizer; the others go on
                for item in items:
                    self._process_group(state, rows, [item])
                return
            self._fail(state, rows, items[0], "tokenizer", f"{type(exc).__name__}: {exc}")
            return
        finite = torch.isfinite(recon.flatten(1)).all(dim=1).cpu()
        keep = [i for i, ok in enumerate(finite.tolist()) if ok]
        for i, ok in enumerate(finite.tolist()):
            if not ok:
                self._fail(state, rows, items[i], "tokenizer", "reconstruction contains NaN or inf")
        if not keep:
            return
        if len(keep) < len(items):
            index = torch.tensor(keep)
            originals, recon = originals[index.to(self.device)], recon[index.to(self.device)]
            tokens = _select_tokens(tokens, index)
            items = [items[i] for i in keep]
        recon = recon.clamp(0, 1).mul_(255).round_().div_(255)
        features = self._timed(state, "features_s", lambda: self._features(items, originals, recon))
        text = self._timed(state, "ocr_s", lambda: self._read_text(items, originals, recon)) if self.ocr_engine else None
        batch = MetricBatch([item["id"] for item in items], originals, recon, tokens=tokens, features=features, text=text)
        values: dict[str, torch.Tensor | None] = {}

        def run_metrics() -> None:
            with torch.inference_mode():
                for metric_name, metric in self.metrics.items():
                    values[metric_name] = metric.update(batch)

        self._timed(state, "metrics_s", run_metrics)
        height, width = originals.shape[-2:]
        size = f"{width}x{height}"
        state.eval_sizes[size] = state.eval_sizes.get(size, 0) + len(items)
        for row, item in enumerate(items):
            metric_values = [("" if values[m] is None else float(values[m][row])) for m in self.metrics]
            rows.append([item["index"], item["id"], "ok", "", item["source_size"], size, item["sha256"], *metric_values])
        state.n_evaluated += len(items)
        state.cost["bits"] += float(tokens.bits.sum())
        state.cost["tokens"] += int(tokens.counts.sum())
        state.cost["pixels"] += len(items) * height * width
        if tokens.latent_shape and not state.latent:
            state.latent = {"shape_per_image": list(tokens.latent_shape), "dtype": tokens.latent_dtype, "at_size": size}
        if self.config.save_reconstructions:
            self._save_reconstructions(items, recon)

    def _tokenize(self, state: _State, originals: torch.Tensor, first_id: str) -> tuple[torch.Tensor, Tokens]:
        """Encode and decode a batch of evaluation images through the aspect policy (pad,
        tile or as they are), at most ``batch_size`` tokenizer inputs at a time."""
        fitted = aspect.fit(originals, self.preprocessing)
        chunk = len(originals) if fitted.tiles_per_image == 1 else self.config.batch_size
        decoded, chunks = [], []
        with torch.inference_mode():
            for inputs in fitted.inputs.split(chunk):
                tokens = self._timed(state, "encode_s", lambda inputs=inputs: self.tokenizer.encode(inputs))
                recon = self._timed(state, "decode_s", lambda tokens=tokens: self.tokenizer.decode(tokens))
                if not isinstance(recon, torch.Tensor) or recon.shape != inputs.shape or not recon.is_floating_point():
                    got = type(recon).__name__
                    if isinstance(recon, torch.Tensor):
                        got += f" {tuple(recon.shape)} {recon.dtype}"
                    raise TokenizerOutputError(
                        f"tokenizer {self.config.label or self.config.tokenizer!r} returned {got} for input {tuple(inputs.shape)} "
                        f"float32 (first image {first_id}); decode must return float images of the input's shape"
                    )
                decoded.append(recon)
                state.cost["tokenizer_calls"] += 1
                chunks.append(tokens)
        return fitted.restore(torch.cat(decoded)), fitted.merge(chunks)

    def _open_reference_cache(self, fresh: bool) -> None:
        """Originals' features come from the content-keyed cache when another run (another
        tokenizer, say) already computed them; a fresh run without a hit fills the cache."""
        self.cached_originals: dict[str, tuple[dict[str, int], dict[str, np.ndarray]]] = {}
        self.cache_writers: dict[str, CacheWriter] = {}
        self.cache_pending: dict[str, str] = {}
        self.cache_status: dict[str, str] = {}
        if not self.extractors:
            return
        if not self.config.use_cache:
            self.cache_status = dict.fromkeys(self.extractors, "off")
            return
        dataset, cache = self.dataset, FeatureCache()
        manifest = manifest_sha256([(dataset.ids[i], dataset.content_sha256(i)) for i in range(self.total)])
        for name, extractor in self.extractors.items():
            key = cache_key(manifest, self.preprocessing, extractor)
            cached = cache.load(key)
            if cached is not None:
                ids, features = cached
                self.cached_originals[name] = ({image_id: row for row, image_id in enumerate(ids)}, features)
                self.cache_status[name] = "hit"
            elif fresh:
                self.cache_pending[name] = key  # the writer opens once the feature sizes are known
                self.cache_status[name] = "miss"
            else:
                self.cache_status[name] = "miss (resumed run: not cached)"

    def _features(
        self, items: list[dict[str, Any]], originals: torch.Tensor, recon: torch.Tensor
    ) -> dict[str, dict[str, dict[str, torch.Tensor]]]:
        """One pass of each shared extractor per side of the batch (uint8, exact levels);
        the originals' side is read from the reference cache when it holds them."""
        features: dict[str, dict[str, dict[str, torch.Tensor]]] = {}
        originals_u8: torch.Tensor | None = None
        for name, extractor in self.extractors.items():
            side: dict[str, dict[str, torch.Tensor]] = {"reconstructions": extractor(recon.mul(255).round_().to(torch.uint8))}
            if name in self.cached_originals:
                rows_by_id, arrays = self.cached_originals[name]
                rows = [rows_by_id[item["id"]] for item in items]
                side["originals"] = {f: torch.from_numpy(np.asarray(a[rows])).to(self.device) for f, a in arrays.items()}
            else:
                if originals_u8 is None:
                    originals_u8 = originals.mul(255).round_().to(torch.uint8)
                side["originals"] = extractor(originals_u8)
                if name in self.cache_pending:
                    dims = {feature: value.shape[1] for feature, value in side["originals"].items()}
                    self.cache_writers[name] = FeatureCache().writer(self.cache_pending.pop(name), self.total, dims)
                if name in self.cache_writers:
                    self.cache_writers[name].put([item["index"] for item in items], side["originals"])
            features[name] = side
        return features

    def _save_reconstructions(self, items: list[dict[str, Any]], recon: torch.Tensor) -> None:
        folder = self.out_dir / f"{self.config.run_name}.recon"
        arrays = (recon * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        for item, array in zip(items, arrays, strict=True):
            target = folder / Path(item["id"]).with_suffix(".png")
            target.parent.mkdir(parents=True, exist_ok=True)
            buffer = io.BytesIO()
            Image.fromarray(array).save(buffer, format="PNG")
            atomic_write_bytes(target, buffer.getvalue())

    def _ocr_protocol(self) -> dict[str, Any]:
        if self.ocr_engine is None:
            return {}
        reading = "text regions read at the evaluation resolution (boxes mapped through the preprocessing), 2-px margin"
        return {"ocr": {**self.ocr_engine.describe(), "reading": reading, "normalisation": NORMALISATION, "counts": self.ocr_counts}}

    def _bootstrap_intervals(self, resamples: int = 1000, seed: int = 0) -> dict[str, list[float]]:
        """95% percentile-bootstrap intervals of the mean, for every metric with per-image values."""
        columns: dict[str, list[float]] = {name: [] for name in self.metrics}
        with open(self._rows_path, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                for name in columns:
                    if row["status"] == "ok" and row[name] not in ("", "nan") and self.metrics[name].aggregation == "mean":
                        columns[name].append(float(row[name]))
        return {name: bootstrap_interval(np.asarray(values), resamples, seed) for name, values in columns.items() if len(values) >= 2}

    def _manifest_sha256(self) -> str:
        with open(self._rows_path, newline="", encoding="utf-8") as handle:
            return manifest_sha256([(row["id"], row["content_sha256"]) for row in csv.DictReader(handle)])

    def run(self) -> dict[str, Any]:
        state = self._load_or_start()
        self._open_reference_cache(fresh=state.done == 0)
        if self.progress:
            self.progress.start(self.config.run_name, self.total, state.done)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        workers = default_num_workers() if self.config.num_workers is None else self.config.num_workers
        loader = DataLoader(
            _Loading(self.dataset, self.preprocessing, state.done, self.total),
            batch_size=self.config.batch_size,
            num_workers=workers,
            collate_fn=_as_list,
            shuffle=False,
        )
        rows: list[list[Any]] = []
        started = last_checkpoint = time.perf_counter()
        wait_start = time.perf_counter()
        try:
            for n_batches, items in enumerate(loader, start=1):
                state.timings["load_wait_s"] += time.perf_counter() - wait_start
                for item in items:
                    if item["error"] is not None:
                        self._fail(state, rows, item, "load", item["error"])
                by_shape: dict[tuple[int, ...], list[dict[str, Any]]] = {}
                for item in items:
                    if item["pixels"] is not None:
                        by_shape.setdefault(tuple(item["pixels"].shape), []).append(item)
                for group in by_shape.values():
                    self._process_group(state, rows, group)
                state.done += len(items)
                due = time.perf_counter() - last_checkpoint >= self.config.checkpoint_seconds
                if n_batches % self.config.checkpoint_every == 0 and due:
                    last_checkpoint = time.perf_counter()
                    state.timings["total_s"] += time.perf_counter() - started
                    started = time.perf_counter()
                    self._checkpoint(state, rows)
                if self.progress:
                    self.progress.advance(len(items))
                wait_start = time.perf_counter()
        finally:
            if self.progress:
                self.progress.finish()
        state.timings["total_s"] += time.perf_counter() - started
        self._checkpoint(state, rows)
        for writer in self.cache_writers.values():
            writer.commit(self.dataset.ids[: self.total])  # discarded when an image failed (rows missing)
        return self._finish(state)

    def _cost(self, state: _State) -> dict[str, Any]:
        """What the tokens cost, pooled over the run, and how long the tokenizer took per call."""
        bits, tokens, pixels, calls = (state.cost[k] for k in ("bits", "tokens", "pixels", "tokenizer_calls"))
        info = self.tokenizer.info
        return {
            "tokens_per_image": tokens / state.n_evaluated if state.n_evaluated else None,
            "bits_per_token": bits / tokens if tokens else None,
            "bits_per_pixel": bits / pixels if pixels else None,
            "compression_vs_rgb24": 24.0 * pixels / bits if bits else None,
            "codebook_size": info.codebook_size,
            "latent": state.latent or None,
            "parameters": info.extra.get("parameters"),
            "encode_ms_per_call": 1000 * state.timings["encode_s"] / calls if calls else None,
            "decode_ms_per_call": 1000 * state.timings["decode_s"] / calls if calls else None,
            "calls": calls,
        }

    def _finish(self, state: _State) -> dict[str, Any]:
        metrics = metric_entries(self.metrics, self.unavailable)
        for name, interval in self._bootstrap_intervals().items():
            metrics[name]["ci95"] = interval
        timings = dict(state.timings)
        timings["images_per_s"] = state.n_evaluated / timings["total_s"] if timings["total_s"] > 0 else None
        for stage in ("encode", "decode"):  # the tokenizer's own throughput, without loading or metrics
            seconds = timings.get(f"{stage}_s", 0.0)
            timings[f"{stage}_images_per_s"] = state.n_evaluated / seconds if seconds > 0 else None
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        cuda_peak = torch.cuda.max_memory_allocated(self.device) / 2**20 if self.device.type == "cuda" else None
        info = self.tokenizer.info
        record = {
            "schema": SCHEMA_NAME,
            "schema_version": SCHEMA_VERSION,
            "run_name": self.config.run_name,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "config": self.config.to_dict(),
            "recipe": self.recipe,
            "tokenizer": {
                "name": self.config.label or self.config.tokenizer,
                "preset": self.config.tokenizer,
                "options": self.tokenizer.options(),
                "info": info.to_dict(),
                "preset_metadata": TOKENIZERS.get(self.config.tokenizer).tags,  # source, license, paper, as the preset states them
            },
            "dataset": {**self.dataset.describe(), "name": self.config.dataset_name, "manifest_sha256": self._manifest_sha256()},
            "protocol": {
                "preprocessing": self.preprocessing.to_dict(),
                "tokenizer_input": aspect.describe(self.preprocessing),
                "evaluation_sizes": state.eval_sizes,
                "conversion": CONVERSION_POLICY,
                "value_range": "[0, 1] float32 RGB, NCHW",
                "rounding": ROUNDING,
                "feature_extractors": [extractor.describe() for extractor in self.extractors.values()],
                "reference_cache": self.cache_status,
                "weights": [located.to_dict() for located in self.located.values()],
                **self._ocr_protocol(),
            },
            "metrics": metrics,
            "samples": {
                "requested": self.total,
                "evaluated": state.n_evaluated,
                "failed": state.n_failed,
                "failures": state.failures,
                "failures_truncated": state.n_failed > len(state.failures),
            },
            "cost": self._cost(state),
            "timings": timings,
            "memory": {"peak_rss_mb": round(peak_rss_mb, 1), "cuda_peak_mb": cuda_peak},
            "environment": environment(self.device),
            "per_image_file": per_image_path(self.out_dir, self.config.run_name).name,
        }
        shutil.copyfile(self._rows_path, per_image_path(self.out_dir, self.config.run_name).with_suffix(".tmp"))
        os.replace(
            per_image_path(self.out_dir, self.config.run_name).with_suffix(".tmp"), per_image_path(self.out_dir, self.config.run_name)
        )
        atomic_write_json(record_path(self.out_dir, self.config.run_name), record)
        shutil.rmtree(self.partial_dir)
        partial_root = self.partial_dir.parent
        if partial_root.exists() and not any(partial_root.iterdir()):
            partial_root.rmdir()
        return record


COMPILED_PARTS = ("encoder", "decoder", "pixel_decoder")


def compile_tokenizer(tokenizer: Tokenizer, name: str) -> None:
    """Wrap a network tokenizer's encoder and decoder modules in ``torch.compile`` (compiled
    on first use); a tokenizer without a network is refused by name."""
    model = getattr(tokenizer, "model", None)
    parts = [part for part in COMPILED_PARTS if isinstance(getattr(model, part, None), torch.nn.Module)]
    if not parts:
        raise VtbenchError(f"--compile: tokenizer {name!r} has no network encoder/decoder to compile")
    for part in parts:
        setattr(model, part, torch.compile(getattr(model, part)))


def text_regions(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """A sample's text regions: ``meta["regions"]`` (boxes in source pixels), else the whole
    image with ``meta["text"]`` (None when the dataset has no transcript)."""
    if meta.get("regions"):
        return list(meta["regions"])
    return [{"text": meta.get("text"), "language": meta.get("language", "en"), "box": None, "layout": "block"}]


def bootstrap_interval(values: np.ndarray, resamples: int = 1000, seed: int = 0) -> list[float]:
    """[low, high] 95% percentile-bootstrap interval of the mean of ``values`` (fixed seed)."""
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for start in range(0, resamples, 100):  # bounded memory for large datasets
        count = min(100, resamples - start)
        means[start : start + count] = values[rng.integers(0, len(values), size=(count, len(values)))].mean(axis=1)
    with np.errstate(invalid="ignore"):
        low, high = np.percentile(means, [2.5, 97.5])
    return [float(low), float(high)]


def _select_tokens(tokens: Tokens, index: torch.Tensor) -> Tokens:
    """Keep the cost fields and ids of the images in ``index`` (data is not needed after decode)."""
    indices = tokens.indices[index.to(tokens.indices.device)] if tokens.indices is not None else None
    kept = (tokens.bits[index], tokens.counts[index], tokens.image_size, indices, tokens.codebook_size, tokens.level_sizes)
    return Tokens(None, *kept, tokens.latent_shape, tokens.latent_dtype)


def evaluate(
    config: RunConfig,
    out_dir: str | Path,
    progress: Progress | None = None,
    restart: bool = False,
    recipe: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run one tokenizer over one dataset and write its record; returns the record.

    >>> record = evaluate(RunConfig("jpeg-q50", "samples", limit=2), "results/demo")  # doctest: +SKIP
    >>> record["metrics"]["psnr"]["value"]  # doctest: +SKIP
    """
    return Runner(config, out_dir, progress=progress, restart=restart, recipe=recipe).run()
