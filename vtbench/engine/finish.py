"""Finishing a run: the finished slices (one per process or per ``--shard``) merged into one
record, exactly as one process over all images would have written it.

A slice's result is its :class:`~vtbench.engine.partial.RunState` (with the record's
descriptive ``context``), its metric states and its per-image rows. Merging sums counts,
folds metric states in slice order (slices are contiguous blocks of the dataset, so
concatenated features stay in dataset order) and sorts rows by dataset index.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vtbench.engine.partial import RunState
from vtbench.engine.partial_state import decode_state, encode_state, load_state, save_state
from vtbench.errors import RunStateError, VtbenchError
from vtbench.io import atomic_write_bytes
from vtbench.metrics import METRICS, Metric
from vtbench.schema import (
    MAX_FAILURES_IN_RECORD,
    Cost,
    DataSide,
    Failure,
    ImageRow,
    Memory,
    MetricEntry,
    Protocol,
    RunRecord,
    Samples,
    Subject,
    WeightsFile,
    images_csv_text,
    per_image_path,
    rows_from_csv_text,
)  # fmt: skip

ROWS_FILE, STATE_FILE = "rows.csv", "state.safetensors"


@dataclass
class RunContext:
    """What a finished slice says about its run besides counts and states: the record's
    descriptive parts (kept with the slice's checkpoint, merged across slices).

    slice_identity: the hash slices of one run share (merging refuses others); identity_sha:
    the record's (settings, metrics asked for, weights digests); weights: per metric, the
    files behind it; unavailable: the entries of metrics not computed."""

    task: str
    run_name: str
    slice_identity: str
    identity_sha: str
    config: dict[str, Any]
    recipe: dict[str, Any] | None
    metric_names: list[str]
    metric_options: dict[str, dict[str, Any]]
    unavailable: dict[str, dict[str, Any]]
    weights: dict[str, list[dict[str, Any]]]
    requested: int
    subject: dict[str, Any]
    dataset: dict[str, Any]
    protocol: dict[str, Any]
    environment: dict[str, Any]
    cost_info: dict[str, Any] | None = None
    peak_rss_mb: float | None = None
    cuda_peak_mb: float | None = None
    slices: int = 1
    shard: list[int] | None = None  # [K, N] of a --shard run
    listing_sha: str = ""  # SHA-256 of every image id the run covers: the same in every slice of one run

    @classmethod
    def from_plain(cls, plain: dict[str, Any]) -> RunContext:
        try:
            return cls(**plain)
        except TypeError as exc:
            raise RunStateError(f"a finished slice this vtbench does not read ({exc}; made by another version?): rerun it") from None


@dataclass
class SliceResult:
    """A finished slice: state (``complete``, with ``context``), metric states and rows (CSV text)."""

    state: RunState
    metric_states: dict[str, dict[str, Any]]
    rows_text: str

    @property
    def context(self) -> RunContext:
        return RunContext.from_plain(self.state.context)

    def to_bytes(self) -> bytes:
        return encode_state({**self.state.plain(), "rows_text": self.rows_text}, self.metric_states)

    @classmethod
    def from_bytes(cls, data: bytes) -> SliceResult:
        plain, tensors = decode_state(data)
        rows_text = plain.pop("rows_text")
        return cls(RunState.from_plain(plain, Path("<a rank's slice>")), tensors, rows_text)

    def save(self, folder: Path) -> None:
        """Write the slice as a shard folder (``state.safetensors`` + ``rows.csv``)."""
        atomic_write_bytes(folder / ROWS_FILE, self.rows_text.encode())
        save_state(folder / STATE_FILE, self.state.plain(), self.metric_states)

    @classmethod
    def load(cls, folder: Path) -> SliceResult:
        plain, tensors = load_state(folder / STATE_FILE)
        state = RunState.from_plain(plain, folder / STATE_FILE)
        if not state.complete:
            raise RunStateError(f"{folder}: this shard did not finish; run its command again to complete it")
        return cls(state, tensors, (folder / ROWS_FILE).read_text(encoding="utf-8"))


def merge_slices(slices: list[SliceResult]) -> SliceResult:
    """One result from the slices of one run, in slice order."""
    if len(slices) == 1:
        return slices[0]
    first = slices[0].context
    mismatched = [i for i, s in enumerate(slices) if s.context.slice_identity != first.slice_identity]
    if mismatched:
        raise VtbenchError(f"slices {mismatched} of {first.run_name} were made with other settings than slice 0")
    merged = RunState(identity_sha=slices[0].state.identity_sha, complete=True, context=dict(slices[0].state.context))
    metric_states: dict[str, dict[str, Any]] = {}
    for name in first.metric_names:
        total = _metric(name, slices[0].metric_states[name], first)
        for other in slices[1:]:
            total.merge_state(_metric(name, other.metric_states[name], first))
        metric_states[name] = total.state_dict()
    header: list[str] = []
    rows: list[list[str]] = []
    peak = 0.0
    for part in slices:
        state = part.state
        merged.n_evaluated += state.n_evaluated
        merged.n_failed += state.n_failed
        merged.failures += state.failures
        for mapping, into in (
            (state.eval_sizes, merged.eval_sizes),
            (state.ocr_counts, merged.ocr_counts),
            (state.reference, merged.reference),
        ):
            for key, value in mapping.items():
                into[key] = into.get(key, 0) + value
        for key, value in state.timings.items():
            merged.timings[key] = merged.timings.get(key, 0.0) + value
        merged.timings["wall_s"] = max(merged.timings.get("wall_s", 0.0), state.timings.get("wall_s", state.timings.get("total_s", 0.0)))
        for key in ("tokens", "pixels", "tokenizer_calls"):
            merged.cost[key] += state.cost.get(key, 0)
        merged.cost["bits"] = math.fsum([merged.cost["bits"], state.cost.get("bits", 0.0)])
        merged.latent = merged.latent or state.latent
        merged.reference_hashes += state.reference_hashes
        merged.reference_manifest = merged.reference_manifest or state.reference_manifest
        for note, ids in state.notes.items():
            merged.notes[note] = (merged.notes.get(note, []) + ids)[:MAX_FAILURES_IN_RECORD]
        peak = max(peak, part.context.peak_rss_mb or 0)
        table = list(csv.reader(io.StringIO(part.rows_text)))
        header, rows = table[0] if table else header, rows + table[1:]
    merged.context["peak_rss_mb"] = peak
    out = io.StringIO()
    if header:
        csv.writer(out).writerows([header, *rows])
    return SliceResult(merged, metric_states, out.getvalue())


def _metric(name: str, state: dict[str, Any], context: RunContext) -> Metric:
    """The run's metric ``name`` (with the run's options) holding the merged ``state``."""
    metric = METRICS.create(name, **context.metric_options.get(name, {}))
    metric.load_state_dict(state)
    return metric


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


def _cost(state: RunState, info: dict[str, Any] | None) -> Cost | None:
    """What the tokens cost, pooled over the run, and how long the tokenizer took per call."""
    if info is None:
        return None
    bits, tokens, pixels, calls = (state.cost[k] for k in ("bits", "tokens", "pixels", "tokenizer_calls"))
    return Cost(
        tokens_per_image=tokens / state.n_evaluated if state.n_evaluated else None,
        bits_per_token=bits / tokens if tokens else None,
        bits_per_pixel=bits / pixels if pixels else None,
        compression_vs_rgb24=24.0 * pixels / bits if bits else None,
        codebook_size=info.get("codebook_size"),
        latent=state.latent or None,
        parameters=info.get("parameters"),
        encode_ms_per_call=1000 * state.timings.get("encode_s", 0.0) / calls if calls else None,
        decode_ms_per_call=1000 * state.timings.get("decode_s", 0.0) / calls if calls else None,
        calls=calls,
    )


def _entry(name: str, metric: Metric, rows: list[ImageRow], weights: list[dict[str, Any]]) -> MetricEntry:
    value = metric.compute()
    described = metric.describe()
    entry = MetricEntry(value=value, n=metric.count, status="ok", weights=[WeightsFile.from_dict(w) for w in weights], **{
        k: v for k, v in described.items() if k in ("higher_is_better", "unit", "aggregation", "kind", "extractor", "parameters")
    })  # fmt: skip
    if not math.isfinite(value):  # stored as null; the status and reason say why
        entry.value, entry.status = None, "undefined"
        entry.reason = f"{value} ({'no image contributed' if not metric.count else 'not defined for these inputs'})"
    entry.details, entry.warnings = metric.details(), metric.warnings()
    if metric.aggregation == "mean":
        values = [row.values.get(name) for row in rows if row.ok]
        finite = [v for v in values if v is not None and not math.isnan(v)]
        if len(finite) >= 2:
            entry.ci95 = bootstrap_interval(np.asarray(finite))
    return entry


def build_record(result: SliceResult) -> tuple[RunRecord, list[str], bool, list[ImageRow]]:
    """The run record of a (merged) finished result, the metric columns of its per-image rows,
    whether they carry OCR readings, and the rows in dataset order."""
    from vtbench.datasets.base import manifest_sha256

    state, context = result.state, result.context
    header, rows = rows_from_csv_text(result.rows_text)
    rows.sort(key=lambda row: row.index)
    metrics = {name: _entry(name, _metric(name, result.metric_states[name], context), rows, context.weights.get(name, []))
               for name in context.metric_names}  # fmt: skip
    metrics.update({name: MetricEntry.from_dict(entry) for name, entry in context.unavailable.items()})
    timings = dict(state.timings)
    wall = timings.pop("wall_s", timings.get("total_s", 0.0))
    timings["images_per_s"] = state.n_evaluated / wall if wall > 0 else None
    for stage in ("encode", "decode"):  # the tokenizer's own throughput, without loading or metrics
        seconds = timings.get(f"{stage}_s", 0.0)
        timings[f"{stage}_images_per_s"] = state.n_evaluated / seconds if seconds > 0 else None
    dataset = DataSide.from_dict(context.dataset)
    if "content_sha256" in header:
        dataset.manifest_sha256 = manifest_sha256([(row.id, row.content_sha256) for row in rows])
    if dataset.reference is not None and (state.reference_hashes or state.reference_manifest):
        reference_manifest = manifest_sha256([tuple(pair) for pair in state.reference_hashes]) if state.reference_hashes else ""
        dataset.reference["manifest_sha256"] = state.reference_manifest or reference_manifest
    protocol = Protocol.from_dict(context.protocol)
    protocol.evaluation_sizes = state.eval_sizes
    if protocol.ocr is not None:
        protocol.ocr = {**protocol.ocr, "counts": state.ocr_counts}
    samples = Samples(
        requested=context.requested,
        evaluated=state.n_evaluated,
        failed=state.n_failed,
        failures=[Failure.from_dict(f) for f in state.failures[:MAX_FAILURES_IN_RECORD]],
        failures_truncated=state.n_failed > MAX_FAILURES_IN_RECORD,
        notes=state.notes,
        reference=state.reference if context.task == "generation" else None,
    )
    record = RunRecord(
        task=context.task,
        run_name=context.run_name,
        identity_sha=context.identity_sha,
        config=context.config,
        recipe=context.recipe,
        subject=Subject.from_dict(context.subject),
        dataset=dataset,
        protocol=protocol,
        metrics=metrics,
        samples=samples,
        cost=_cost(state, context.cost_info),
        timings=timings,
        memory=Memory(context.peak_rss_mb, context.cuda_peak_mb, context.slices),
        environment=context.environment,
        per_image_file=per_image_path(Path("."), context.run_name).name,
    )
    metric_columns = [name for name in header if name in context.metric_names]
    return record, metric_columns, "ocr" in header, rows


def write_record(result: SliceResult, out_dir: Path) -> RunRecord:
    """Write the record and its per-image CSV into ``out_dir``; returns the record."""
    record, metric_columns, with_ocr, rows = build_record(result)
    atomic_write_bytes(per_image_path(out_dir, record.run_name), images_csv_text(record, metric_columns, with_ocr, rows).encode())
    record.write(out_dir)
    return record


# -- shards ---------------------------------------------------------------------------------
def shard_folder(out_dir: Path, run_name: str, index: int, count: int) -> Path:
    return out_dir / f"{run_name}.shards" / f"shard-{index}-of-{count}"


def merge_shards(shards_dir: str | Path, out_dir: str | Path) -> list[RunRecord]:
    """Combine the ``--shard K/N`` results under ``shards_dir`` into one record per run, in
    ``out_dir``. Missing or unfinished shards, and shards made with other settings, are
    refused by name."""
    shards_dir, out_dir = Path(shards_dir), Path(out_dir)
    runs = sorted(shards_dir.glob("*.shards"))
    if not runs:
        raise VtbenchError(f"{shards_dir}: no shard results (RUN.shards/shard-K-of-N folders written by `vtbench run --shard K/N`)")
    records = []
    for run in runs:
        found: dict[int, Path] = {}
        counts = set()
        for folder in run.iterdir():
            parts = folder.name.split("-")
            if len(parts) == 4 and parts[0] == "shard" and parts[2] == "of" and parts[1].isdigit() and parts[3].isdigit():
                found[int(parts[1])] = folder
                counts.add(int(parts[3]))
        if len(counts) != 1:
            raise VtbenchError(f"{run}: shards of different splits ({', '.join(f'of-{c}' for c in sorted(counts))}); keep one split")
        (count,) = counts
        missing = [str(k) for k in range(count) if k not in found]
        if missing:
            raise VtbenchError(f"{run}: missing shard(s) {', '.join(missing)} of {count}; run them with --shard K/{count}")
        slices = [SliceResult.load(found[k]) for k in range(count)]
        identities = {s.context.slice_identity for s in slices}
        if len(identities) > 1:
            odd = [found[k].name for k, s in enumerate(slices) if s.context.slice_identity != slices[0].context.slice_identity]
            raise VtbenchError(
                f"{run}: {', '.join(odd)} were made with other settings than {found[0].name}; rerun them with the same command"
            )
        check_shards(run, [found[k] for k in range(count)], slices)
        merged = merge_slices(slices)
        merged.state.context["slices"] = count
        out_dir.mkdir(parents=True, exist_ok=True)
        records.append(write_record(merged, out_dir))
    return records


def check_shards(run: Path, folders: list[Path], slices: list[SliceResult]) -> None:
    """Refuse shards that are not exactly the K/N slices of one run, naming the shard: a shard
    folder holding another shard's state, rows lost or repeated (each image of the run once),
    counts that disagree with the rows, or a dataset whose files changed between the jobs."""
    from vtbench.engine.distributed import slice_bounds

    count = len(slices)
    listings = {part.context.listing_sha for part in slices}
    if len(listings) > 1:
        odd = [
            folder.name for folder, part in zip(folders, slices, strict=True) if part.context.listing_sha != slices[0].context.listing_sha
        ]
        raise VtbenchError(f"{run}: the images changed between the shard jobs ({', '.join(odd)} saw another file list than "
                           f"{folders[0].name}); rerun every shard on the same data")  # fmt: skip
    for k, (folder, part) in enumerate(zip(folders, slices, strict=True)):
        shard = part.context.shard
        if shard != [k, count]:
            made = f"shard {shard[0]} of {shard[1]}" if shard else "a run without --shard"
            raise VtbenchError(
                f"{folder}: holds the state of {made}, not of shard {k} of {count} (copied?); rerun it with --shard {k}/{count}"
            )
        try:
            _, rows = rows_from_csv_text(part.rows_text)
        except (ValueError, KeyError) as exc:
            raise VtbenchError(f"{folder}/{ROWS_FILE}: not rows this vtbench wrote ({exc}); rerun it with --shard {k}/{count}") from None
        scored = part.state.n_evaluated + part.state.n_failed
        if len(rows) != scored:
            raise VtbenchError(f"{folder}/{ROWS_FILE}: {len(rows)} rows for the {scored} images its state counts (damaged or edited); "
                               f"rerun it with --shard {k}/{count}")  # fmt: skip
        low, high = slice_bounds(part.context.requested, k, count)
        indices = sorted(row.index for row in rows)
        if indices != list(range(low, high)):
            repeated = len(indices) - len(set(indices))
            detail = f"{repeated} repeated" if repeated else f"images {indices[0] if indices else '-'}..{indices[-1] if indices else '-'}"
            raise VtbenchError(f"{folder}/{ROWS_FILE}: rows are not its slice, images {low}..{high - 1} once each ({detail}); "
                               f"rerun it with --shard {k}/{count}")  # fmt: skip
