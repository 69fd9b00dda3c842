"""The evaluation pass: one run (reconstruction or generation) of one slice, in one stream.

A run is a list of phases over index-addressable image sources. Reconstruction has one,
``images`` (originals through the tokenizer, both sides scored); generation has two,
``reference`` (the reference set's side, skipped when the feature cache or a statistics file
holds it) and ``samples`` (the generator's side). Each phase streams batches from a
DataLoader; metric states, counts and per-image rows are checkpointed under
``OUT/.partial/`` so a killed run resumes exactly; the finished slices become one record.
"""

from __future__ import annotations

import json
import resource
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader

from vtbench import aspect
from vtbench.datasets.base import Dataset
from vtbench.engine.components import (
    COST_METRICS,
    compile_tokenizer,
    create_dataset,
    create_generator,
    default_num_workers,
    prepare_metrics,
    resolve_device,
)  # fmt: skip
from vtbench.engine.distributed import Ranks, slice_bounds
from vtbench.engine.features import SharedFeatures
from vtbench.engine.finish import SliceResult, merge_slices, shard_folder, write_record
from vtbench.engine.loading import ImageLoading, IndexOnly, LoadedBatch, collate
from vtbench.engine.partial import PartialRun, RunState, identity_sha, remove_empty, remove_stale_temporaries, tensors_to_cpu
from vtbench.engine.settings import GenerationConfig, RunConfig
from vtbench.engine.text_reading import TextReader
from vtbench.errors import TokenizerOutputError, VtbenchError
from vtbench.images import CONVERSION_POLICY
from vtbench.io import atomic_write_bytes
from vtbench.metrics.base import MetricBatch
from vtbench.metrics.frechet import FrechetDistance
from vtbench.record import environment, portable_path
from vtbench.reference import load_statistics
from vtbench.tokenizers import TOKENIZERS, Tokens

ROUNDING = "reconstructions clamped to [0, 1] and rounded to 8-bit levels before every metric"
MULTI_FRAME = "multi-frame files: the first frame was used"
SAMPLE_ROUNDING = "samples clamped to [0, 1] and rounded to 8-bit before feature extraction"


class Progress(Protocol):
    """What the engine reports to a progress display (the CLI draws a rich bar)."""

    def start(self, run_name: str, total: int, done: int) -> None: ...
    def advance(self, images: int) -> None: ...
    def finish(self) -> None: ...


class StrictStop(VtbenchError):
    """A bad image under ``--strict``: the run stops, its progress kept for a resume."""


class MetricFailure(VtbenchError):
    """A metric raised while scoring; the run fails with the metric's name."""


@dataclass
class Phase:
    """One stream of a run: ``source`` images at ``positions``, scored by ``score``."""

    name: str
    positions: range
    score: Callable[[RunState, list[list[Any]], LoadedBatch], None]
    source: Dataset | None = None  # None: the generator makes each sample from its index


class Engine:
    """Scores one :class:`RunConfig` or :class:`GenerationConfig` slice into ``out_dir``."""

    def __init__(self, config: RunConfig | GenerationConfig, out_dir: str | Path, progress: Progress | None = None,
                 restart: bool = False, recipe: dict[str, Any] | None = None, ranks: Ranks | None = None) -> None:  # fmt: skip
        self.config, self.out_dir, self.progress, self.restart, self.recipe = config, Path(out_dir), progress, restart, recipe
        self.ranks = ranks or Ranks()
        self.device = resolve_device(config.device, self.ranks.local_rank if self.ranks.world > 1 else None)
        names = list(dict.fromkeys([*config.metrics, *(COST_METRICS if config.task == "reconstruction" else ())]))
        prepared = prepare_metrics(names, self.device, config.skip_unavailable, options=config.metric_options)
        self.metrics, self.unavailable, self.located = prepared.active, prepared.unavailable, prepared.located
        self.features = SharedFeatures(prepared.extractors)
        shard_index, shard_count = config.shard or (0, 1)
        self.slice = (shard_index * self.ranks.world + self.ranks.rank, shard_count * self.ranks.world)
        self.text: TextReader | None = None
        self.statistics_file: str | None = None
        self.stored_statistics: str | None = None  # an ADM reference batch whose mu/sigma FID and sFID use
        if isinstance(config, RunConfig):
            self._set_up_reconstruction(config)
        else:
            self._set_up_generation(config)
        self.columns = ["index", "id", "status", "error", "source_size", "eval_size", "content_sha256", *self.metrics]
        self.extra_columns = ["ocr"] if self.text is not None else []  # each text region's reading, as JSON
        self.columns += self.extra_columns
        folder = self.out_dir / ".partial" / config.run_name
        if self.slice[1] > 1:
            folder = folder / f"slice-{self.slice[0]}-of-{self.slice[1]}"
        self.partial = PartialRun(folder, self.columns)

    # -- set-up ------------------------------------------------------------------------------
    def _set_up_reconstruction(self, config: RunConfig) -> None:
        self.tokenizer = TOKENIZERS.create(config.tokenizer, **config.tokenizer_options).to(self.device)
        if config.compile:
            compile_tokenizer(self.tokenizer, config.tokenizer)
        self.dataset = create_dataset(config.dataset, config.dataset_options)
        self.preprocessing = config.preprocessing.resolved(self.tokenizer.info.native_resolution)
        languages = list(getattr(self.dataset, "languages", None) or ["en"])
        self.text = TextReader.for_metrics(self.metrics, self.unavailable, config.ocr_engine, languages, self.preprocessing,
                                           config.skip_unavailable, config.use_cache)  # fmt: skip
        self.total = len(self.dataset) if config.limit is None else min(config.limit, len(self.dataset))
        self.phases = [Phase("images", range(*slice_bounds(self.total, *self.slice)), self._score_pairs, self.dataset)]

    def _set_up_generation(self, config: GenerationConfig) -> None:
        paired = [
            name for name, metric in self.metrics.items() if metric.kind != "distribution" and not getattr(metric, "scores_samples", False)
        ]
        if paired:
            raise VtbenchError(f"{', '.join(paired)} compare image pairs; a generation run takes distributional metrics")
        self.generator = create_generator(config.generator, config.generator_options)
        if callable(getattr(self.generator, "to", None)):  # generators with networks sample on the run's device
            self.generator.to(self.device)
        known = self.generator.num_samples
        if config.expected_samples is not None and known is not None and known != config.expected_samples:
            raise VtbenchError(
                f"generator {config.subject_name!r} holds {known} samples, {config.expected_samples} were expected: "
                "refusing to score a different sample count"
            )
        if known is None and config.expected_samples is None and config.limit is None:
            raise VtbenchError(f"generator {config.subject_name!r} makes any number of samples: give --expected-samples")
        count = known if known is not None else config.expected_samples
        self.total = count if config.limit is None else min(config.limit, count)
        self.preprocessing = config.preprocessing
        self.dataset = self.generator.as_dataset() if hasattr(self.generator, "as_dataset") else None
        phases = []
        if _is_statistics_file(config.reference):
            not_fid = [name for name, metric in self.metrics.items() if not isinstance(metric, FrechetDistance)]
            if not_fid:
                raise VtbenchError(f"{config.reference} holds mu/sigma statistics: it can score FID only, not {', '.join(not_fid)}")
            self.statistics_file, self.reference = config.reference, None
        else:
            self.reference = create_dataset(config.reference, config.reference_options)
            if config.stored_statistics and _is_adm_batch(config.reference):
                self.stored_statistics = config.reference
            reference_total = len(self.reference) if config.limit is None else min(config.limit, len(self.reference))
            self.reference_total = reference_total
            phases.append(Phase("reference", range(*slice_bounds(reference_total, *self.slice)), self._score_reference, self.reference))
        phases.append(Phase("samples", range(*slice_bounds(self.total, *self.slice)), self._score_samples, self.dataset))
        self.phases = phases

    def _identity(self) -> dict[str, Any]:
        subject = self.tokenizer.options() if hasattr(self, "tokenizer") else self.generator.options()
        source = self.dataset.describe() if self.config.task == "reconstruction" else (
            self.reference.describe() if self.reference is not None else {"statistics_file": self.statistics_file})  # fmt: skip
        return {**self.config.identity(), "active_metrics": sorted(self.metrics), "subject": subject, "source": source}

    # -- the run -----------------------------------------------------------------------------
    def run(self) -> dict[str, Any] | None:
        """Score this slice; rank 0 writes (and returns) the record, or the shard result."""
        error: BaseException | None = None
        result: SliceResult | None = None
        try:
            result = self._run_slice()
        except BaseException as exc:  # every rank must reach the gather, failed or not
            error = exc
            if self.ranks.world == 1:
                raise
        payloads = self.ranks.gather(b"ok:" + result.to_bytes() if result is not None else b"error:" + str(error).encode())
        if error is not None:
            raise error
        if payloads is None:
            return None
        failed = [rank for rank, payload in enumerate(payloads) if payload.startswith(b"error:")]
        if failed:
            raise VtbenchError(f"rank {failed[0]} failed: {payloads[failed[0]][6:].decode(errors='replace')}")
        slices = [SliceResult.from_bytes(payload[3:]) for payload in payloads] if self.ranks.world > 1 else [result]
        merged = merge_slices(slices)
        merged.state.context["slices"] = self.ranks.world
        if self.config.shard is not None:
            folder = shard_folder(self.out_dir, self.config.run_name, *self.config.shard)
            merged.save(folder)
            record = None
        else:
            record = write_record(merged, self.out_dir)
            self._pack_samples()
        return record

    def _pack_samples(self) -> None:
        """A generation run that saved its samples also writes them as one ADM-format batch,
        ``OUT/RUN.samples.npz`` (``arr_0`` images, ``arr_1`` class labels when the generator has them)."""
        if self.config.task != "generation" or not self.config.save_reconstructions or self.dataset is not None:
            return
        from vtbench.engine.outputs import sample_path, write_adm_npz

        indices = [i for i in range(self.total) if sample_path(self.out_dir, self.config.run_name, i).is_file()]
        if not indices:
            return
        labels = self.generator.labels(indices) if callable(getattr(self.generator, "labels", None)) else None
        pngs = [sample_path(self.out_dir, self.config.run_name, i) for i in indices]
        write_adm_npz(self.out_dir / f"{self.config.run_name}.samples.npz", pngs, labels)

    def _run_slice(self) -> SliceResult:
        self.partial.lock()
        try:
            remove_stale_temporaries(self.out_dir, self.config.run_name)
            state = self._load_or_start()
            if not state.complete:
                self._stream(state)
            result = SliceResult(state, tensors_to_cpu({n: m.state_dict() for n, m in self.metrics.items()}), self.partial.rows_text())
            self.partial.discard()
        except BaseException:
            if not self.partial.state_path.exists():  # nothing was checkpointed: nothing to resume
                self.partial.discard()
                self.features.discard()
            raise
        finally:
            self.partial.release()
        remove_empty(self.partial.folder.parent)
        return result

    def _load_or_start(self) -> RunState:
        identity = identity_sha(self._identity())
        ids = self._slice_ids()
        if self.restart:
            self.partial.discard()
        loaded = self.partial.load(identity, ids)
        if loaded is not None:
            state, metric_states = loaded
            for name, metric in self.metrics.items():
                metric.load_state_dict(metric_states[name])
            if self.config.task == "reconstruction":
                self.partial.check_contents(self.dataset.content_sha256)
            self.features.open_cache(self.dataset, self.total, self.preprocessing, False, False, "off (resumed run)")
            self._fix_stored_reference(enter=False)  # the loaded states hold them already
            return state
        state = self.partial.start(identity, ids)
        self._fix_stored_reference(enter=self.slice[0] == 0)
        self._open_cache(state)
        return state

    def _fix_stored_reference(self, enter: bool) -> None:
        """An ADM reference batch's stored statistics as the reference side of FID (``mu``,
        ``sigma``) and sFID (``mu_s``, ``sigma_s``), as the ADM evaluator uses them; the batch's
        images still feed the other metrics. ``enter``: add them to the states (one slice does)."""
        if self.stored_statistics is None:
            return
        with np.load(self.stored_statistics) as archive:
            for metric in self.metrics.values():
                keys = getattr(metric, "stored_keys", None)
                if isinstance(metric, FrechetDistance) and keys and all(key in archive.files for key in keys):
                    source = f"{portable_path(self.stored_statistics)}: stored {keys[0]}/{keys[1]} (as the ADM evaluator)"
                    arrays = (archive[keys[0]].astype(np.float64), archive[keys[1]].astype(np.float64)) if enter else (None, None)
                    metric.fix_reference(source, *arrays)  # full rank: the batch's statistics come from more images than it holds

    def _slice_ids(self) -> list[str]:
        ids: list[str] = []
        for phase in self.phases:
            ids += [phase.source.ids[i] for i in phase.positions] if phase.source is not None else [f"sample-{i}" for i in phase.positions]
        return ids

    def _open_cache(self, state: RunState) -> None:
        """The originals'/reference side from the content-keyed cache (single-slice runs)."""
        why_not = "off (a sharded or multi-process run)" if self.slice[1] > 1 else ""
        if self.config.task == "reconstruction":
            self.features.open_cache(self.dataset, self.total, self.preprocessing, self.config.use_cache, True, why_not)
            return
        if self.statistics_file is not None:
            if self.slice[0] == 0:  # the reference side enters the metric states once, in the first slice
                mu, sigma = load_statistics(self.statistics_file)
                for metric in self.metrics.values():
                    metric.set_reference_statistics(mu, sigma)
            return
        started = time.perf_counter()  # hashing the reference's files counts as reference time too
        self.features.open_cache(self.reference, self.reference_total, self.preprocessing, self.config.use_cache, True, why_not)
        if self.features.all_cached():  # fed in the loader's batches, so the sums add up as in the run that filled the cache
            for name in self.features.extractors:
                cached = self.features.cached_features(name)
                for start in range(0, self.reference_total, self.config.batch_size):
                    chunk = {feature: values[start : start + self.config.batch_size] for feature, values in cached.items()}
                    self._update_metrics(MetricBatch([], torch.zeros(0), torch.zeros(0), features={name: {"originals": chunk}}), name)
            state.reference["evaluated"] = self.reference_total
            state.progress["reference"] = len(self.phases[0].positions)
        state.timings["reference_s"] = state.timings.get("reference_s", 0.0) + time.perf_counter() - started

    def _stream(self, state: RunState) -> None:
        rows: list[list[Any]] = []
        total = sum(len(phase.positions) for phase in self.phases)
        if self.progress and self.ranks.is_main:
            self.progress.start(self.config.run_name, total, sum(state.progress.values()))
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        started = last_save = time.perf_counter()
        batches_since_save = 0
        try:
            with _deferred_interrupt() as interrupted:
                for phase in self.phases:
                    phase_started = time.perf_counter()
                    for batch in self._batches(phase, state):
                        skip = set(state.scored_in_next_batch)
                        first_row = len(rows)
                        try:
                            phase.score(state, rows, batch.without(skip))
                        except StrictStop:
                            state.scored_in_next_batch = sorted(skip | {int(row[0]) for row in rows[first_row:]})
                            self._save(state, rows, started)
                            raise
                        state.progress[phase.name] = state.progress.get(phase.name, 0) + len(batch.items)
                        state.scored_in_next_batch = []
                        batches_since_save += 1
                        due = time.perf_counter() - last_save >= self.config.checkpoint_seconds
                        if (batches_since_save >= self.config.checkpoint_every and due) or interrupted.is_set():
                            started = self._save(state, rows, started)
                            last_save, batches_since_save = time.perf_counter(), 0
                        if interrupted.is_set():
                            raise KeyboardInterrupt
                        if self.progress and self.ranks.is_main:
                            self.progress.advance(len(batch.items))
                    phase_key = f"{phase.name}_s"  # wall time of each phase (reference_s, samples_s, images_s)
                    state.timings[phase_key] = state.timings.get(phase_key, 0.0) + time.perf_counter() - phase_started
        except RuntimeError:
            if _INTERRUPTED.is_set():  # a DataLoader worker died of the same Ctrl-C
                raise KeyboardInterrupt from None
            raise
        finally:
            if self.progress and self.ranks.is_main:
                self.progress.finish()
        state.complete = True
        state.context = self._context()
        self._save(state, rows, started)
        self.features.commit(self._committed_ids())

    def _batches(self, phase: Phase, state: RunState) -> Iterator[LoadedBatch]:
        start = phase.positions.start + state.progress.get(phase.name, 0)
        positions = range(start, phase.positions.stop)
        if not positions:
            return iter(())
        source = ImageLoading(phase.source, self.preprocessing, positions) if phase.source is not None else IndexOnly(positions)
        workers = default_num_workers(phase.source, self.device) if self.config.num_workers is None else self.config.num_workers
        loader = DataLoader(source, batch_size=self.config.batch_size, num_workers=workers if phase.source is not None else 0,
                            collate_fn=collate, shuffle=False, pin_memory=self.device.type == "cuda")  # fmt: skip
        return _timed_iteration(loader, state)

    def _save(self, state: RunState, rows: list[list[Any]], started: float) -> float:
        now = time.perf_counter()
        state.timings["total_s"] += now - started
        if self.text is not None:
            for key, value in self.text.counts.items():
                state.ocr_counts[key] = state.ocr_counts.get(key, 0) + value
            self.text.counts = dict.fromkeys(self.text.counts, 0)
        self.partial.save(state, rows, tensors_to_cpu({name: metric.state_dict() for name, metric in self.metrics.items()}))
        return now

    def _committed_ids(self) -> list[str]:
        source = self.dataset if self.config.task == "reconstruction" else self.reference
        count = self.total if self.config.task == "reconstruction" else getattr(self, "reference_total", 0)
        return list(source.ids[:count]) if source is not None else []

    # -- scoring -------------------------------------------------------------------------------
    def _timed(self, state: RunState, key: str, fn: Callable[[], Any]) -> Any:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        start = time.perf_counter()
        result = fn()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        state.timings[key] = state.timings.get(key, 0.0) + time.perf_counter() - start
        return result

    def _fail(self, state: RunState, rows: list[list[Any]], item: dict[str, Any], stage: str, error: str) -> None:
        if self.config.strict:
            raise StrictStop(f"{item['id']}: {stage}: {error} (--strict; progress kept in {self.partial.folder})")
        state.n_failed += 1
        state.failures.append({"id": item["id"], "stage": stage, "error": error})
        del state.failures[1000:]
        rows.append([item["index"], item["id"], "failed", f"{stage}: {error}", item.get("source_size", ""), "", item.get("sha256", ""),
                     *[""] * (len(self.metrics) + len(self.extra_columns))])  # fmt: skip

    def _update_metrics(self, batch: MetricBatch, extractor: str | None = None) -> dict[str, torch.Tensor | None]:
        values: dict[str, torch.Tensor | None] = {}
        with torch.inference_mode():
            for name, metric in self.metrics.items():
                if extractor is not None and metric.extractor != extractor:
                    continue
                try:
                    values[name] = metric.update(batch)
                except VtbenchError:
                    raise
                except Exception as exc:
                    first = batch.ids[0] if batch.ids else "the reference"
                    raise MetricFailure(f"metric {name!r} failed on the batch starting at {first}: {type(exc).__name__}: {exc}") from exc
        return values

    def _score_pairs(self, state: RunState, rows: list[list[Any]], batch: LoadedBatch) -> None:
        for item in batch.items:
            if item["error"] is not None:
                self._fail(state, rows, item, "load", item["error"])
            elif item.get("frames", 1) > 1:
                noted = state.notes.setdefault(MULTI_FRAME, [])
                if len(noted) < 1000:
                    noted.append(f"{item['id']} ({item['frames']} frames)")
        for positions, pixels in batch.groups:
            self._score_group(state, rows, [batch.items[p] for p in positions], pixels)

    def _score_group(self, state: RunState, rows: list[list[Any]], items: list[dict[str, Any]], pixels: torch.Tensor) -> None:
        """Score same-sized images: ``pixels`` (B, 3, H, W) uint8 on the host."""
        height, width = pixels.shape[-2:]
        too_small = [(name, metric.min_size) for name, metric in self.metrics.items() if min(height, width) < metric.min_size]
        if too_small:
            needs = ", ".join(f"{name} needs at least {size}x{size}" for name, size in too_small)
            for item in items:
                self._fail(state, rows, item, "size", f"image is {width}x{height} at evaluation; {needs} (set --resolution)")
            return
        originals = pixels.to(self.device, non_blocking=True).float().div_(255.0)
        try:
            recon, tokens = self._tokenize(state, originals, items[0]["id"])
        except TokenizerOutputError:
            raise
        except Exception as exc:
            if len(items) > 1:  # find the image that breaks the tokenizer; the others go on
                for i, item in enumerate(items):
                    self._score_group(state, rows, [item], pixels[i : i + 1])
                return
            self._fail(state, rows, items[0], "tokenizer", f"{type(exc).__name__}: {exc}")
            return
        if self.tokenizer.info.exact_levels:  # decoded 8-bit levels (codecs, identity): nothing to check or round
            self._score_reconstructions(state, rows, items, originals, recon, tokens)
            return
        finite = torch.isfinite(recon.flatten(1).sum(dim=1, dtype=torch.float64)).tolist()  # one pass: NaN/inf survive a sum
        for i, ok in enumerate(finite):
            if not ok:
                self._fail(state, rows, items[i], "tokenizer", "reconstruction contains NaN or inf")
        keep = [i for i, ok in enumerate(finite) if ok]
        if not keep:
            return
        if len(keep) < len(items):
            index = torch.tensor(keep)
            originals, recon = originals[index.to(self.device)], recon[index.to(self.device)]
            tokens, items = _select_tokens(tokens, index), [items[i] for i in keep]
        recon = recon.clamp(0, 1).mul_(255).round_().div_(255)
        self._score_reconstructions(state, rows, items, originals, recon, tokens)

    def _score_reconstructions(self, state: RunState, rows: list[list[Any]], items: list[dict[str, Any]], originals: torch.Tensor,
                               recon: torch.Tensor, tokens: Tokens) -> None:  # fmt: skip
        """Features, OCR and metrics of same-sized originals and their 8-bit reconstructions. An
        image whose features or text cannot be read (an extractor or OCR error) is recorded as
        failed; the other images of the batch go on."""
        features = text = None
        try:
            features = self._timed(state, "features_s", lambda: self.features(items, originals, recon))
            text = self._timed(state, "ocr_s", lambda: self.text.read(items, originals, recon)) if self.text else None
        except VtbenchError:
            raise
        except Exception as exc:
            if len(items) > 1:
                for i, item in enumerate(items):
                    one = torch.tensor([i])
                    self._score_reconstructions(state, rows, [item], originals[i : i + 1], recon[i : i + 1], _select_tokens(tokens, one))
                return
            self._fail(state, rows, items[0], "features" if features is None else "ocr", f"{type(exc).__name__}: {exc}")
            return
        height, width = originals.shape[-2:]
        batch = MetricBatch([item["id"] for item in items], originals, recon, tokens=tokens, features=features, text=text,
                            tokenizer=self.tokenizer)  # fmt: skip
        values = self._timed(state, "metrics_s", lambda: self._update_metrics(batch))
        size = f"{width}x{height}"
        state.eval_sizes[size] = state.eval_sizes.get(size, 0) + len(items)
        columns = {name: (None if values[name] is None else values[name].tolist()) for name in self.metrics}
        for row, item in enumerate(items):
            metric_values = ["" if columns[m] is None else columns[m][row] for m in self.metrics]
            extra = [json.dumps([reading_record(r) for r in text[row]], ensure_ascii=False)] if text is not None else []
            rows.append([item["index"], item["id"], "ok", "", item["source_size"], size, item["sha256"], *metric_values, *extra])
        state.n_evaluated += len(items)
        state.cost["bits"] += float(tokens.bits.sum())
        state.cost["tokens"] += int(tokens.counts.sum())
        state.cost["pixels"] += len(items) * height * width
        if tokens.latent_shape and not state.latent:
            state.latent = {"shape_per_image": list(tokens.latent_shape), "dtype": tokens.latent_dtype, "at_size": size}
        if self.config.save_reconstructions:
            self._save_reconstructions(items, recon)

    def _tokenize(self, state: RunState, originals: torch.Tensor, first_id: str) -> tuple[torch.Tensor, Tokens]:
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
                    got = type(recon).__name__ + (f" {tuple(recon.shape)} {recon.dtype}" if isinstance(recon, torch.Tensor) else "")
                    raise TokenizerOutputError(
                        f"tokenizer {self.config.subject_name!r} returned {got} for input {tuple(inputs.shape)} "
                        f"float32 (first image {first_id}); decode must return float images of the input's shape"
                    )
                decoded.append(recon)
                state.cost["tokenizer_calls"] += 1
                chunks.append(tokens)
        return fitted.restore(decoded[0] if len(decoded) == 1 else torch.cat(decoded)), fitted.merge(chunks)

    def _score_reference(self, state: RunState, rows: list[list[Any]], batch: LoadedBatch) -> None:
        for item in batch.items:
            if item["error"] is not None:
                state.reference["failed"] += 1
                state.failures.append({"id": item["id"], "stage": "reference", "error": item["error"]})
        if len(batch.groups) > 1:
            sizes = sorted(f"{pixels.shape[-1]}x{pixels.shape[-2]}" for _, pixels in batch.groups)
            raise VtbenchError(f"reference {self.config.reference}: images differ in size ({', '.join(sizes)}); set a --resolution")
        for positions, pixels in batch.groups:
            self._score_side(state, [batch.items[p] for p in positions], pixels, "originals")
            state.reference["evaluated"] += len(positions)

    def _score_side(self, state: RunState, items: list[dict[str, Any]], pixels: torch.Tensor, side: str) -> None:
        """Feed one side of a generation run (``originals``: the reference; ``reconstructions``:
        the samples) through the extractors and the distributional metrics."""
        images = pixels.to(self.device, non_blocking=True).float().div_(255.0)
        originals, samples = (images, None) if side == "originals" else (None, images)
        features = self._timed(state, "features_s", lambda: self.features(items, originals, samples))
        meta = [{**item.get("meta", {}), "index": item["index"]} for item in items]
        batch = MetricBatch([item["id"] for item in items], torch.zeros(0), images if samples is not None else torch.zeros(0),
                            meta=meta, features=features)  # fmt: skip
        self._timed(state, "metrics_s", lambda: self._update_metrics(batch))

    def _score_samples(self, state: RunState, rows: list[list[Any]], batch: LoadedBatch) -> None:
        if self.dataset is None and batch.items:  # the generator makes each sample from its index, on the device
            images = self._timed(state, "generate_s", lambda: self.generator.samples([item["index"] for item in batch.items]))
            finite = torch.isfinite(images.flatten(1)).all(dim=1).tolist()
            for item, ok in zip(batch.items, finite, strict=True):
                item["error"] = None if ok else "sample contains NaN or inf"
            keep = [i for i, ok in enumerate(finite) if ok]
            pixels = images[keep].clamp(0, 1).mul(255).round().to(torch.uint8)
            if self.config.save_reconstructions:  # the samples themselves, for a later look or another evaluator
                from vtbench.engine.outputs import png_bytes, sample_path

                for position, array in zip(keep, pixels.permute(0, 2, 3, 1).cpu().numpy(), strict=True):
                    atomic_write_bytes(sample_path(self.out_dir, self.config.run_name, batch.items[position]["index"]), png_bytes(array))
            if keep and not self.preprocessing.leaves_unchanged(pixels.shape[-1], pixels.shape[-2]):
                pixels = _preprocessed(pixels, self.preprocessing)  # as the reference images, and as sample files would be
            prompts = (
                self.generator.prompts_for([batch.items[p]["index"] for p in keep]) if hasattr(self.generator, "prompts_for") else None
            )
            for n, position in enumerate(keep):
                batch.items[position]["source_size"] = f"{images.shape[-1]}x{images.shape[-2]}"
                if prompts is not None:
                    batch.items[position]["meta"] = {**batch.items[position].get("meta", {}), "prompt": prompts[n]}
            batch = LoadedBatch(batch.items, [(keep, pixels)] if keep else [])
        for item in batch.items:
            if item["error"] is not None:
                self._fail(state, rows, item, "sample", item["error"])
        for positions, pixels in batch.groups:
            group = [batch.items[p] for p in positions]
            self._score_side(state, group, pixels, "reconstructions")
            height, width = pixels.shape[-2:]
            size = f"{width}x{height}"
            state.eval_sizes[size] = state.eval_sizes.get(size, 0) + len(group)
            for item in group:
                rows.append(
                    [item["index"], item["id"], "ok", "", item["source_size"] or size, size, item["sha256"], *[""] * len(self.metrics)]
                )
            state.n_evaluated += len(group)

    def _save_reconstructions(self, items: list[dict[str, Any]], recon: torch.Tensor) -> None:
        from vtbench.engine.outputs import png_bytes, reconstruction_path

        arrays = (recon * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        for item, array in zip(items, arrays, strict=True):
            atomic_write_bytes(reconstruction_path(self.out_dir, self.config.run_name, item["id"]), png_bytes(array))

    # -- what the record says about the run --------------------------------------------------------
    def _context(self) -> dict[str, Any]:
        config = self.config
        protocol: dict[str, Any] = {
            "preprocessing": self.preprocessing.to_dict(),
            "conversion": CONVERSION_POLICY,
            "value_range": "[0, 1] float32 RGB, NCHW",
            "feature_extractors": [extractor.describe() for extractor in self.features.extractors.values()],
            "reference_cache": self.features.status,
            "weights": [located.to_dict() for located in self.located.values()],
        }
        unavailable = {name: {"value": None, "n": 0, "status": "unavailable", "reason": reason, **metric.describe()}
                       for name, (metric, reason) in self.unavailable.items()}  # fmt: skip
        context: dict[str, Any] = {
            "task": config.task,
            "run_name": config.run_name,
            "run_identity": identity_sha({**self._identity(), "shard": None}),
            "settings_sha": identity_sha({**config.identity(), "shard": None}),
            "config": config.to_dict(),
            "recipe": self.recipe,
            "metric_names": list(self.metrics),
            "metric_options": self.config.metric_options,
            "fixed_references": {
                name: metric.reference_source for name, metric in self.metrics.items() if getattr(metric, "reference_source", None)
            },  # fmt: skip
            "unavailable": unavailable,
            "requested": self.total,
            "environment": environment(self.device),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "cuda_peak_mb": torch.cuda.max_memory_allocated(self.device) / 2**20 if self.device.type == "cuda" else None,
        }
        if isinstance(config, RunConfig):
            info = self.tokenizer.info
            context["subject"] = {
                "name": config.subject_name,
                "preset": config.tokenizer,
                "options": self.tokenizer.options(),
                "info": info.to_dict(),
                "preset_metadata": TOKENIZERS.get(config.tokenizer).tags,  # source, license, paper, as the preset states them
            }
            context["dataset"] = {**self.dataset.describe(), "name": config.dataset_name}
            context["cost_info"] = {"codebook_size": info.codebook_size, "parameters": info.extra.get("parameters")}
            protocol.update({"tokenizer_input": aspect.describe(self.preprocessing), "rounding": ROUNDING})
            if self.text is not None:
                protocol["ocr"] = self.text.protocol()
        else:
            context["subject"] = {"name": config.subject_name, "preset": config.generator, "options": self.generator.options()}
            reference = {"statistics_file": portable_path(self.statistics_file)} if self.statistics_file else self.reference.describe()
            context["dataset"] = {"name": config.dataset_name, "reference": reference}
            protocol["rounding"] = SAMPLE_ROUNDING
        context["protocol"] = protocol
        return context


def reading_record(reading: Any) -> dict[str, Any]:
    """One text region as the per-image CSV stores it: enough to recheck its CER by hand."""
    return {"language": reading.language, "bucket": reading.bucket, "reference": reading.reference,
            "reconstruction_ocr": reading.reconstruction_ocr, "original_ocr": reading.original_ocr}  # fmt: skip


def _select_tokens(tokens: Tokens, index: torch.Tensor) -> Tokens:
    """Keep the cost fields and ids of the images in ``index`` (data is not needed after decode)."""
    indices = tokens.indices[index.to(tokens.indices.device)] if tokens.indices is not None else None
    kept = (tokens.bits[index], tokens.counts[index], tokens.image_size, indices, tokens.codebook_size, tokens.level_sizes)
    return Tokens(None, *kept, tokens.latent_shape, tokens.latent_dtype)


def _timed_iteration(loader: DataLoader, state: RunState) -> Iterator[list[dict[str, Any]]]:
    """The loader's batches, with the time spent waiting for each added to the timings."""
    iterator = iter(loader)
    while True:
        start = time.perf_counter()
        batch = next(iterator, None)
        state.timings["load_wait_s"] += time.perf_counter() - start
        if batch is None:
            return
        yield batch.in_main_process()


def _preprocessed(pixels: torch.Tensor, preprocessing: Any) -> torch.Tensor:
    """(B, 3, H, W) uint8 samples through the run's resize/crop, as image files are."""
    from PIL import Image

    from vtbench.images import pil_to_uint8_chw

    arrays = pixels.permute(0, 2, 3, 1).cpu().numpy()
    return torch.from_numpy(np.stack([pil_to_uint8_chw(preprocessing.apply(Image.fromarray(array))) for array in arrays]))


def _is_adm_batch(reference: str) -> bool:
    """An ``.npz`` with images (``arr_0``) and their stored statistics (``mu``, ``sigma``)."""
    if not reference.endswith(".npz") or not Path(reference).is_file():
        return False
    with np.load(reference, mmap_mode="r") as archive:
        return "arr_0" in archive.files and "mu" in archive.files and "sigma" in archive.files


def _is_statistics_file(reference: str) -> bool:
    if not reference.endswith(".npz") or not Path(reference).is_file():
        return False
    with np.load(reference, mmap_mode="r") as archive:
        return "arr_0" not in archive.files and "mu" in archive.files


_INTERRUPTED = threading.Event()


@contextmanager
def _deferred_interrupt() -> Iterator[threading.Event]:
    """Ctrl-C sets a flag the pass checks between batches (it checkpoints, then stops), so an
    interrupt never lands in the middle of a metric update. Main thread only."""
    _INTERRUPTED.clear()
    if threading.current_thread() is not threading.main_thread():
        yield _INTERRUPTED
        return

    def handler(signum: int, frame: Any) -> None:
        if _INTERRUPTED.is_set():  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        _INTERRUPTED.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield _INTERRUPTED
    finally:
        signal.signal(signal.SIGINT, previous)
