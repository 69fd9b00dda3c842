"""A run as a pipeline: sources of images, a transform, scorers and sinks, one per task.

- :class:`ReconstructionPipeline`: a dataset (source) through a tokenizer round trip
  (transform); both sides scored by the features, OCR and metrics (scorers); per-image rows
  and saved reconstructions (sinks).
- :class:`GenerationPipeline`: a reference (a dataset, or fixed statistics entered through
  each metric's :meth:`~vtbench.metrics.base.Metric.set_reference`) and the generator's
  samples (a dataset of sample files, or the generator itself), each side scored on its own.

A pipeline declares its phases (the streams the loop in :mod:`vtbench.engine.loop` walks
through, checkpointing between batches), the identity of the run and the record's context.
"""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from vtbench.datasets.video import ClipDataset
from vtbench.engine.components import (
    COST_METRICS,
    compile_tokenizer,
    create_dataset,
    create_generator,
    default_num_workers,
    prepare_metrics,
    weights_digests,
)  # fmt: skip
from vtbench.engine.distributed import slice_bounds
from vtbench.engine.features import SharedFeatures
from vtbench.engine.finish import RunContext
from vtbench.engine.loading import LoadedBatch, LoadedItem
from vtbench.engine.partial import RunState, identity_sha
from vtbench.engine.sources import DatasetSource, GeneratorSource, reference_kind
from vtbench.engine.text_reading import TextReader
from vtbench.engine.transforms import Clock, TokenizerRoundTrip, finite_images, select_tokens, to_8bit_levels
from vtbench.errors import TokenizerOutputError, VtbenchError
from vtbench.faces.base import faces_at_evaluation
from vtbench.generators.base import TO_8BIT
from vtbench.images import CONVERSION_POLICY
from vtbench.io import atomic_write_bytes
from vtbench.metrics.base import Metric, MetricBatch
from vtbench.provenance import environment, portable_path
from vtbench.reference import load_statistics
from vtbench.schema import ImageRow
from vtbench.settings import GenerationConfig, RunConfig
from vtbench.tokenizers import TOKENIZERS, Tokens

ROUNDING = "reconstructions clamped to [0, 1] and rounded to 8-bit levels before every metric"
MULTI_FRAME = "multi-frame files: the first frame was used"
SAMPLE_ROUNDING = (
    "samples at 8-bit levels before feature extraction (files as they are; made here: as the generator's release "
    "converts them, generator.info.to_8bit)"
)
MAX_FAILURES = 1000


class StrictStop(VtbenchError):
    """A bad image under ``--strict``: the run stops, its progress kept for a resume."""


class MetricFailure(VtbenchError):
    """A metric raised while scoring; the run fails with the metric's name."""


Rows = list[ImageRow]


@dataclass
class Phase:
    """One stream of a run: ``source``'s images at ``positions``, scored by ``score``."""

    name: str
    positions: range
    source: DatasetSource | GeneratorSource
    score: Callable[[RunState, Rows, LoadedBatch], None]
    workers: int = 0


def run_identity(config: RunConfig | GenerationConfig, digests: dict[str, str | None]) -> dict[str, Any]:
    """What a finished record must match to be reused: every identity setting of the config
    (the metrics asked for among them) and the digest of every weights file the metrics need."""
    return {**config.identity(), "weights": digests, **config.preprocessing.geometry()}


class RunPipeline:
    """What every task shares: its metrics (prepared, with the weights found), the shared
    feature extractors, the OCR reader, the scoring of one batch and failures."""

    task: ClassVar[str] = ""
    always: ClassVar[tuple[str, ...]] = ()  # metrics every run of the task records

    def __init__(self, config: RunConfig | GenerationConfig, device: torch.device, slice_: tuple[int, int], clock: Clock) -> None:
        self.config, self.device, self.slice, self.clock = config, device, slice_, clock
        names = list(dict.fromkeys([*config.metrics, *self.always]))
        prepared = prepare_metrics(names, device, config.skip_unavailable, options=config.metric_options)
        self.metrics, self.unavailable, self.located = prepared.active, prepared.unavailable, prepared.located
        self.weights = weights_digests({**self.metrics, **{name: metric for name, (metric, _) in self.unavailable.items()}})
        self.features = SharedFeatures(prepared.extractors)
        self.text: TextReader | None = None
        self.phases: list[Phase] = []
        self.total = 0
        self.out_dir = self.partial_folder = Path(".")  # set by the loop

    @property
    def with_ocr(self) -> bool:
        return self.text is not None

    # -- what the run is ---------------------------------------------------------------------
    def subject_options(self) -> dict[str, Any]:
        raise NotImplementedError

    def source_description(self) -> dict[str, Any]:
        raise NotImplementedError

    def identity(self) -> dict[str, Any]:
        """The run's identity (:func:`run_identity`) with what the components resolved to."""
        return {**run_identity(self.config, self.weights), "active_metrics": sorted(self.metrics), "subject": self.subject_options(),
                "source": self.source_description()}  # fmt: skip

    def open(self, state: RunState, fresh: bool) -> None:
        """Before streaming: enter fixed references and open the feature cache (``fresh``: a new
        state; else a resumed one, whose loaded metric states hold what was entered)."""

    def committed_ids(self) -> list[str]:
        """The ids whose originals' features this run may publish to the cache."""
        return []

    def finish(self, out_dir: Path) -> None:
        """After the record is written (rank 0, whole runs only)."""

    # -- scoring -----------------------------------------------------------------------------
    def fail(self, state: RunState, rows: Rows, item: LoadedItem, stage: str, error: str) -> None:
        if self.config.strict:
            raise StrictStop(f"{item.id}: {stage}: {error} (--strict; progress kept in {self.partial_folder})")
        state.n_failed += 1
        state.failures.append({"id": item.id, "stage": stage, "error": error})
        del state.failures[MAX_FAILURES:]
        rows.append(ImageRow(item.index, item.id, "failed", f"{stage}: {error}", item.source_size, "", item.sha256))

    def update_metrics(self, batch: MetricBatch, extractor: str | None = None) -> dict[str, torch.Tensor | None]:
        """Every metric (of one ``extractor``, when given) updated with ``batch``; per-image values."""
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

    # -- what the record says ------------------------------------------------------------------
    def context(self, recipe: dict[str, Any] | None) -> RunContext:
        """The record's descriptive parts, as this slice knows them at its end."""
        config = self.config
        unavailable = {name: {"value": None, "n": 0, "status": "unavailable", "reason": reason, **metric.describe(),
                              "weights": self._weights_of(metric)} for name, (metric, reason) in self.unavailable.items()}  # fmt: skip
        protocol: dict[str, Any] = {
            "preprocessing": self.preprocessing.to_dict(),
            "conversion": CONVERSION_POLICY,
            "value_range": "[0, 1] float32 RGB, NCHW",
            "feature_extractors": [extractor.describe() for extractor in self.features.extractors.values()],
            "reference_cache": self.features.status,
            "weights": [located.to_dict() for located in self.located.values()],
        }
        return RunContext(
            task=config.task,
            run_name=config.run_name,
            slice_identity=identity_sha(self.identity()),
            identity_sha=identity_sha(run_identity(config, self.weights)),
            config=config.to_dict(),
            recipe=recipe,
            metric_names=list(self.metrics),
            metric_options=config.metric_options,
            unavailable=unavailable,
            weights={name: self._weights_of(metric) for name, metric in self.metrics.items()},
            requested=self.total,
            subject={},
            dataset={},
            protocol=protocol,
            environment=environment(self.device),
            peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            cuda_peak_mb=torch.cuda.max_memory_allocated(self.device) / 2**20 if self.device.type == "cuda" else None,
            shard=list(config.shard) if config.shard else None,
            listing_sha=identity_sha({"ids": [i for phase in self.listing() for i in phase]}),
        )

    def listing(self) -> list[list[str]]:
        """Every image id the whole run covers (all slices), one list per source."""
        raise NotImplementedError

    def _weights_of(self, metric: Metric) -> list[dict[str, Any]]:
        """The files behind ``metric``'s value (its own and its extractor's), as records store them."""
        from vtbench.engine.components import weights_of

        return [self.located[name].to_dict() for name in weights_of(metric) if name in self.located]


class ReconstructionPipeline(RunPipeline):
    """A dataset's images through a tokenizer; originals and reconstructions scored in pairs."""

    task = "reconstruction"
    always = COST_METRICS

    def __init__(self, config: RunConfig, device: torch.device, slice_: tuple[int, int], clock: Clock) -> None:
        super().__init__(config, device, slice_, clock)
        self.tokenizer = TOKENIZERS.create(config.tokenizer, **config.tokenizer_options).to(device)
        if config.compile:
            compile_tokenizer(self.tokenizer, config.tokenizer)
        self.dataset = create_dataset(config.dataset, config.dataset_options)
        self.clips = isinstance(self.dataset, ClipDataset)
        self._check_metrics_fit_the_data()
        self.preprocessing = config.preprocessing.resolved(self.tokenizer.info.native_resolution)
        self.round_trip = TokenizerRoundTrip(self.tokenizer, self.preprocessing, config.batch_size, config.subject_name, clock)
        self.text = TextReader.for_metrics(self.metrics, self.unavailable, config.ocr_engine, list(self.dataset.languages or ["en"]),
                                           self.preprocessing, config.skip_unavailable, config.use_cache)  # fmt: skip
        self.total = len(self.dataset) if config.limit is None else min(config.limit, len(self.dataset))
        workers = default_num_workers(self.dataset, device) if config.num_workers is None else config.num_workers
        positions = range(*slice_bounds(self.total, *slice_))
        self.phases = [Phase("images", positions, DatasetSource(self.dataset, self.preprocessing), self.score_pairs, workers)]

    def subject_options(self) -> dict[str, Any]:
        return self.tokenizer.options()

    def _check_metrics_fit_the_data(self) -> None:
        """Clips take metrics of frames or of clips; images refuse the metrics defined for clips only."""
        name = self.config.dataset_name
        if self.clips:
            refused = [n for n, m in self.metrics.items() if m.on_clips == "no" or m.extractor is not None or m.needs_ocr]
            if refused:
                raise VtbenchError(f"{', '.join(refused)}: scored on single images, not clips (dataset {name!r} holds video clips)")
        else:
            refused = [n for n, m in self.metrics.items() if m.needs_clips]
            if refused:
                raise VtbenchError(f"{', '.join(refused)}: defined for video clips; dataset {name!r} holds images (use clips or videos)")

    def source_description(self) -> dict[str, Any]:
        return self.dataset.describe()

    def open(self, state: RunState, fresh: bool) -> None:
        if not fresh:
            self.features.open_cache(self.dataset, self.total, self.preprocessing, False, False, "off (resumed run)")
            return
        why_not = "off (a sharded or multi-process run)" if self.slice[1] > 1 else ""
        self.features.open_cache(self.dataset, self.total, self.preprocessing, self.config.use_cache, True, why_not)

    def committed_ids(self) -> list[str]:
        return list(self.dataset.ids[: self.total])

    def listing(self) -> list[list[str]]:
        return [self.committed_ids()]

    def score_pairs(self, state: RunState, rows: Rows, batch: LoadedBatch) -> None:
        for item in batch.items:
            if item.error is not None:
                self.fail(state, rows, item, "load", item.error)
            elif item.frames > 1:
                noted = state.notes.setdefault(MULTI_FRAME, [])
                if len(noted) < MAX_FAILURES:
                    noted.append(f"{item.id} ({item.frames} frames)")
        for positions, pixels in batch.groups:
            self._score_group(state, rows, [batch.items[p] for p in positions], pixels)

    def _score_group(self, state: RunState, rows: Rows, items: list[LoadedItem], pixels: torch.Tensor) -> None:
        """Score same-sized images: ``pixels`` (B, 3, H, W) uint8 on the host."""
        height, width = pixels.shape[-2:]
        too_small = [(name, metric.min_size) for name, metric in self.metrics.items() if min(height, width) < metric.min_size]
        if too_small:
            needs = ", ".join(f"{name} needs at least {size}x{size}" for name, size in too_small)
            for item in items:
                self.fail(state, rows, item, "size", f"image is {width}x{height} at evaluation; {needs} (set --resolution)")
            return
        originals = pixels.to(self.device, non_blocking=True).float().div_(255.0)
        calls = self.round_trip.calls
        try:
            recon, tokens = (self.round_trip.clips if self.clips else self.round_trip)(originals, items[0].id)
        except TokenizerOutputError:
            raise
        except Exception as exc:
            if len(items) > 1:  # find the image that breaks the tokenizer; the others go on
                for i, item in enumerate(items):
                    self._score_group(state, rows, [item], pixels[i : i + 1])
                return
            self.fail(state, rows, items[0], "tokenizer", f"{type(exc).__name__}: {exc}")
            return
        finally:
            state.cost["tokenizer_calls"] += self.round_trip.calls - calls
        if not self.tokenizer.info.exact_levels:  # decoded 8-bit levels (codecs, identity) need no check or rounding
            finite = finite_images(recon)
            for i, ok in enumerate(finite):
                if not ok:
                    self.fail(state, rows, items[i], "tokenizer", "reconstruction contains NaN or inf")
            keep = [i for i, ok in enumerate(finite) if ok]
            if not keep:
                return
            if len(keep) < len(items):
                index = torch.tensor(keep)
                originals, recon = originals[index.to(self.device)], recon[index.to(self.device)]
                tokens, items = select_tokens(tokens, index), [items[i] for i in keep]
            recon = to_8bit_levels(recon)
        self._score_reconstructions(state, rows, items, originals, recon, tokens)

    def _score_reconstructions(self, state: RunState, rows: Rows, items: list[LoadedItem], originals: torch.Tensor,
                               recon: torch.Tensor, tokens: Tokens) -> None:  # fmt: skip
        """Features, OCR and metrics of same-sized originals and their 8-bit reconstructions. An
        image whose features or text cannot be read (an extractor or OCR error) is recorded as
        failed; the other images of the batch go on."""
        features = text = None
        if self.clips:
            return self._score_clips(state, rows, items, originals, recon, tokens)
        try:
            features = self.clock("features_s", lambda: self.features(items, originals, recon))
            text = self.clock("ocr_s", lambda: self.text.read(items, originals, recon)) if self.text else None
        except VtbenchError:
            raise
        except Exception as exc:
            if len(items) > 1:
                for i, item in enumerate(items):
                    one = torch.tensor([i])
                    self._score_reconstructions(state, rows, [item], originals[i : i + 1], recon[i : i + 1], select_tokens(tokens, one))
                return
            self.fail(state, rows, items[0], "features" if features is None else "ocr", f"{type(exc).__name__}: {exc}")
            return
        height, width = originals.shape[-2:]
        faces = [
            faces_at_evaluation(item.meta, item.source_dimensions, self.preprocessing) if "faces" in item.meta else None for item in items
        ]
        batch = MetricBatch([item.id for item in items], originals, recon, tokens=tokens, features=features, text=text,
                            faces=faces, tokenizer=self.tokenizer)  # fmt: skip
        values = self.clock("metrics_s", lambda: self.update_metrics(batch))
        size = f"{width}x{height}"
        state.eval_sizes[size] = state.eval_sizes.get(size, 0) + len(items)
        columns = {name: (None if values[name] is None else values[name].tolist()) for name in self.metrics}
        for position, item in enumerate(items):
            readings = json.dumps([reading_record(r) for r in text[position]], ensure_ascii=False) if text is not None else None
            per_image = {name: None if column is None else column[position] for name, column in columns.items()}
            rows.append(ImageRow(item.index, item.id, "ok", "", item.source_size, size, item.sha256, per_image, readings))
        state.n_evaluated += len(items)
        state.cost["bits"] += float(tokens.bits.sum())
        state.cost["tokens"] += int(tokens.counts.sum())
        state.cost["pixels"] += len(items) * height * width
        if tokens.latent_shape and not state.latent:
            state.latent = {"shape_per_image": list(tokens.latent_shape), "dtype": tokens.latent_dtype, "at_size": size}
        if self.config.save_reconstructions:
            self._save_reconstructions(items, recon)

    def _score_clips(self, state: RunState, rows: Rows, items: list[LoadedItem], originals: torch.Tensor, recon: torch.Tensor,
                     tokens: Tokens) -> None:  # fmt: skip
        """Metrics of same-shaped clips (N, T, 3, H, W) and their 8-bit reconstructions: metrics of
        frames score each frame and the row holds each clip's mean over its frames."""
        n, frames, _, height, width = originals.shape
        fps = [float(item.meta.get("fps") or 0) or None for item in items]
        batch = MetricBatch([item.id for item in items], originals.flatten(0, 1), recon.flatten(0, 1), tokens=tokens,
                            tokenizer=self.tokenizer, frames_per_clip=frames, fps=None if None in fps else fps)  # fmt: skip
        values = self.clock("metrics_s", lambda: self.update_metrics(batch))
        size = f"{width}x{height}"
        state.eval_sizes[size] = state.eval_sizes.get(size, 0) + n
        columns = {}
        for name, value in values.items():
            if value is not None and value.numel() == n * frames and frames > 1:  # per frame: each clip's mean
                value = value.reshape(n, frames).mean(dim=1)
            columns[name] = None if value is None else value.tolist()
        for position, item in enumerate(items):
            per_clip = {name: None if column is None else column[position] for name, column in columns.items()}
            rows.append(ImageRow(item.index, item.id, "ok", "", item.source_size, size, item.sha256, per_clip))
        state.n_evaluated += n
        state.cost["bits"] += float(tokens.bits.sum())
        state.cost["tokens"] += int(tokens.counts.sum())
        state.cost["pixels"] += n * frames * height * width
        if tokens.latent_shape and not state.latent:
            state.latent = {"shape_per_image": list(tokens.latent_shape), "dtype": tokens.latent_dtype, "at_size": size}
        if self.config.save_reconstructions:  # a clip as one film strip: its frames side by side
            from vtbench.engine.outputs import film_strip

            self._save_reconstructions(items, film_strip(recon))

    def _save_reconstructions(self, items: list[LoadedItem], recon: torch.Tensor) -> None:
        from vtbench.engine.outputs import png_bytes, reconstruction_path

        arrays = (recon * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        for item, array in zip(items, arrays, strict=True):
            atomic_write_bytes(reconstruction_path(self.out_dir, self.config.run_name, item.id), png_bytes(array))

    def context(self, recipe: dict[str, Any] | None) -> RunContext:
        context = super().context(recipe)
        info = self.tokenizer.info
        context.subject = {
            "name": self.config.subject_name,
            "preset": self.config.tokenizer,
            "options": self.tokenizer.options(),
            "info": info.to_dict(),
            "preset_metadata": TOKENIZERS.get(self.config.tokenizer).tags,  # source, license, paper, as the preset states them
        }
        context.dataset = {**self.dataset.describe(), "name": self.config.dataset_name}
        context.cost_info = {"codebook_size": info.codebook_size, "parameters": info.extra.get("parameters")}
        from vtbench import aspect

        context.protocol.update({"tokenizer_input": aspect.describe(self.preprocessing), "rounding": ROUNDING})
        if self.text is not None:
            context.protocol["ocr"] = self.text.protocol()
        if self.clips:
            context.protocol["value_range"] = "[0, 1] float32 RGB, clips (N, T, 3, H, W)"
            context.protocol["clips"] = {
                "frames_per_clip": self.dataset.frames,
                "stride": self.dataset.stride,
                "tokenizer_input": "whole clips" if self.tokenizer.info.video else "frame by frame (an image tokenizer)",
                "frame_metrics": "each frame scored as an image; a clip's value: the mean of its frames; the run's: of all frames",
                "clip_metrics": "scored per clip (video-psnr, flicker, FVD, cost); the run's value is the mean over clips",
            }
        return context


def reading_record(reading: Any) -> dict[str, Any]:
    """One text region as the per-image CSV stores it: enough to recheck its CER by hand."""
    return {"language": reading.language, "bucket": reading.bucket, "reference": reading.reference,
            "reconstruction_ocr": reading.reconstruction_ocr, "original_ocr": reading.original_ocr}  # fmt: skip


class GenerationPipeline(RunPipeline):
    """A generator's samples against a reference, each side fed to the distributional metrics."""

    task = "generation"

    def __init__(self, config: GenerationConfig, device: torch.device, slice_: tuple[int, int], clock: Clock) -> None:
        super().__init__(config, device, slice_, clock)
        paired = [name for name, metric in self.metrics.items() if metric.kind != "distribution" and not metric.scores_samples]
        if paired:
            raise VtbenchError(f"{', '.join(paired)} compare image pairs; a generation run takes distributional metrics")
        self.generator = create_generator(config.generator, config.generator_options).to(device)
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
        self.dataset = self.generator.as_dataset()
        self.kind = reference_kind(config.reference)
        self.reference = None
        self.reference_total = 0
        workers = 0 if config.num_workers is None else config.num_workers
        if self.kind == "statistics":
            cannot = [name for name, metric in self.metrics.items() if metric.reference_keys is None]
            if cannot:
                raise VtbenchError(f"{config.reference} holds mu/sigma statistics: it can score FID only, not {', '.join(cannot)}")
        else:
            self.reference = create_dataset(config.reference, config.reference_options)
            self.reference_total = len(self.reference) if config.limit is None else min(config.limit, len(self.reference))
            reference_workers = default_num_workers(self.reference, device) if config.num_workers is None else workers
            positions = range(*slice_bounds(self.reference_total, *slice_))
            self.phases.append(Phase("reference", positions, DatasetSource(self.reference, self.preprocessing), self.score_reference,
                                     reference_workers))  # fmt: skip
        if self.dataset is not None:
            source: DatasetSource | GeneratorSource = DatasetSource(self.dataset, self.preprocessing)
            workers = default_num_workers(self.dataset, device) if config.num_workers is None else workers
        else:
            source = GeneratorSource(self.generator, self.preprocessing, self._save_samples if config.save_reconstructions else None)
        self.phases.append(Phase("samples", range(*slice_bounds(self.total, *slice_)), source, self.score_samples, workers))

    def subject_options(self) -> dict[str, Any]:
        return self.generator.options()

    def source_description(self) -> dict[str, Any]:
        return self.reference.describe() if self.reference is not None else {"statistics_file": self.config.reference}

    @property
    def fixed_reference(self) -> str | None:
        """The file whose stored statistics stand for the reference side, if any."""
        if self.kind == "statistics" or (self.kind == "adm-batch" and self.config.stored_statistics):
            return self.config.reference
        return None

    def open(self, state: RunState, fresh: bool) -> None:
        if not fresh:  # the loaded metric states hold any fixed reference already
            self.features.open_cache(self.dataset, self.total, self.preprocessing, False, False, "off (resumed run)")
            return
        if self.fixed_reference is not None:
            self._enter_fixed_reference(first=self.slice[0] == 0)
        if self.reference is None:
            return
        why_not = "off (a sharded or multi-process run)" if self.slice[1] > 1 else ""
        started = time.perf_counter()  # hashing the reference's files counts as reference time too
        self.features.open_cache(self.reference, self.reference_total, self.preprocessing, self.config.use_cache, True, why_not)
        if self.features.all_cached():  # fed in the loader's batches, so the sums add up as in the run that filled the cache
            for name in self.features.extractors:
                cached = self.features.cached_features(name)
                for start in range(0, self.reference_total, self.config.batch_size):
                    chunk = {feature: values[start : start + self.config.batch_size] for feature, values in cached.items()}
                    self.update_metrics(MetricBatch([], torch.zeros(0), torch.zeros(0), features={name: {"originals": chunk}}), name)
            state.reference["evaluated"] = self.reference_total
            state.progress["reference"] = len(self.phases[0].positions)
            state.reference_manifest = self.features.manifest
        state.timings["reference_s"] = state.timings.get("reference_s", 0.0) + time.perf_counter() - started

    def _enter_fixed_reference(self, first: bool) -> None:
        """The statistics file's (or ADM batch's stored) mean and covariance as the reference
        side of every metric that takes them (the ADM evaluator's FID and sFID); one slice
        enters the arrays, the others only stop accumulating the reference."""
        from vtbench.reference import statistics_extractor

        path = self.config.reference
        summarised = statistics_extractor(path)
        for metric in self.metrics.values():
            if metric.reference_keys is None:
                continue
            if metric.extractor != summarised:
                if self.kind == "adm-batch":  # its stored statistics are Inception's: this metric reads the batch's images
                    continue
                raise VtbenchError(f"{path} holds {summarised} statistics; {metric.name} needs {metric.extractor}'s: write them with "
                                   f"`vtbench reference-stats REFERENCE --extractor {metric.extractor} --out FILE`")  # fmt: skip
            statistics = load_statistics(path, metric.reference_keys, missing_ok=self.kind == "adm-batch")
            if statistics is None:  # the evaluator stops here too: FID from stored statistics beside sFID from images is no protocol
                raise VtbenchError(f"{path}: an ADM reference batch without {'/'.join(metric.reference_keys)}: {metric.name} cannot use "
                                   "stored statistics as the other metrics do; pass --computed-statistics to score every metric from "
                                   f"the batch's images, or leave {metric.name} out")  # fmt: skip
            keys = "/".join(metric.reference_keys)
            source = f"{portable_path(path)}: stored {keys} (as the ADM evaluator)" if self.kind == "adm-batch" else portable_path(path)
            metric.set_reference(source, *(statistics if first else (None, None)))

    def committed_ids(self) -> list[str]:
        return list(self.reference.ids[: self.reference_total]) if self.reference is not None else []

    def listing(self) -> list[list[str]]:
        samples = list(self.dataset.ids[: self.total]) if self.dataset is not None else []
        return [self.committed_ids(), samples]

    def score_reference(self, state: RunState, rows: Rows, batch: LoadedBatch) -> None:
        for item in batch.items:
            if item.error is not None:
                state.reference["failed"] += 1
                state.failures.append({"id": item.id, "stage": "reference", "error": item.error})
            else:
                state.reference_hashes.append([item.id, item.sha256])
        if len(batch.groups) > 1:
            sizes = sorted(f"{pixels.shape[-1]}x{pixels.shape[-2]}" for _, pixels in batch.groups)
            raise VtbenchError(f"reference {self.config.reference}: images differ in size ({', '.join(sizes)}); set a --resolution")
        for positions, pixels in batch.groups:
            self._score_side([batch.items[p] for p in positions], pixels, "originals")
            state.reference["evaluated"] += len(positions)

    def _score_side(self, items: list[LoadedItem], pixels: torch.Tensor, side: str) -> None:
        """Feed one side (``originals``: the reference; ``reconstructions``: the samples)
        through the extractors and the metrics."""
        images = pixels.to(self.device, non_blocking=True).float().div_(255.0)
        originals, samples = (images, None) if side == "originals" else (None, images)
        features = self.clock("features_s", lambda: self.features(items, originals, samples))
        meta = [{**item.meta, "index": item.index} for item in items]
        batch = MetricBatch([item.id for item in items], torch.zeros(0), images if samples is not None else torch.zeros(0),
                            meta=meta, features=features)  # fmt: skip
        self.clock("metrics_s", lambda: self.update_metrics(batch))

    def score_samples(self, state: RunState, rows: Rows, batch: LoadedBatch) -> None:
        for item in batch.items:
            if item.error is not None:
                self.fail(state, rows, item, "sample", item.error)
        for positions, pixels in batch.groups:
            group = [batch.items[p] for p in positions]
            self._score_side(group, pixels, "reconstructions")
            size = f"{pixels.shape[-1]}x{pixels.shape[-2]}"
            state.eval_sizes[size] = state.eval_sizes.get(size, 0) + len(group)
            rows += [ImageRow(item.index, item.id, "ok", "", item.source_size or size, size, item.sha256) for item in group]
            state.n_evaluated += len(group)

    def _save_samples(self, indices: list[int], pixels: torch.Tensor) -> None:
        from vtbench.engine.outputs import png_bytes, sample_path

        for index, array in zip(indices, pixels.permute(0, 2, 3, 1).cpu().numpy(), strict=True):
            atomic_write_bytes(sample_path(self.out_dir, self.config.run_name, index), png_bytes(array))

    def finish(self, out_dir: Path) -> None:
        """A run that saved its samples also writes them as one ADM-format batch,
        ``OUT/RUN.samples.npz`` (``arr_0`` images, ``arr_1`` class labels when the generator has them)."""
        if not self.config.save_reconstructions or self.dataset is not None:
            return
        from vtbench.engine.outputs import sample_path, write_adm_npz

        indices = [i for i in range(self.total) if sample_path(out_dir, self.config.run_name, i).is_file()]
        if indices:
            pngs = [sample_path(out_dir, self.config.run_name, i) for i in indices]
            write_adm_npz(out_dir / f"{self.config.run_name}.samples.npz", pngs, self.generator.labels(indices))

    def context(self, recipe: dict[str, Any] | None) -> RunContext:
        context = super().context(recipe)
        config = self.config
        context.subject = {"name": config.subject_name, "preset": config.generator, "options": self.generator.options()}
        if self.dataset is None:  # samples made here: how they became 8-bit is the generator's, as its release does it
            context.subject["info"] = {"to_8bit": TO_8BIT[self.generator.to_8bit]}
        if self.reference is not None:
            reference = self.reference.describe()
        else:
            from vtbench.weights import sha256_file

            reference = {"statistics_file": portable_path(config.reference), "sha256": sha256_file(Path(config.reference))}
        context.dataset = {"name": config.dataset_name, "reference": reference}
        context.protocol["rounding"] = SAMPLE_ROUNDING
        return context


PIPELINES: dict[str, type[RunPipeline]] = {"reconstruction": ReconstructionPipeline, "generation": GenerationPipeline}
