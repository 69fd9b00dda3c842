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
from vtbench.io import atomic_write_bytes, atomic_write_json, csv_safe
from vtbench.metrics import METRICS, Metric
from vtbench.record import RunRecord, per_image_path, record_path

MAX_FAILURES_IN_RECORD = 1000
ROWS_FILE, STATE_FILE = "rows.csv", "state.safetensors"


@dataclass
class SliceResult:
    """A finished slice: state (``complete``, with ``context``), metric states and rows (CSV text)."""

    state: RunState
    metric_states: dict[str, dict[str, Any]]
    rows_text: str

    def to_bytes(self) -> bytes:
        return encode_state({**self.state.plain(), "rows_text": self.rows_text}, self.metric_states)

    @classmethod
    def from_bytes(cls, data: bytes) -> SliceResult:
        plain, tensors = decode_state(data)
        rows_text = plain.pop("rows_text")
        return cls(RunState(**plain), tensors, rows_text)

    def save(self, folder: Path) -> None:
        """Write the slice as a shard folder (``state.safetensors`` + ``rows.csv``)."""
        atomic_write_bytes(folder / ROWS_FILE, self.rows_text.encode())
        save_state(folder / STATE_FILE, self.state.plain(), self.metric_states)

    @classmethod
    def load(cls, folder: Path) -> SliceResult:
        plain, tensors = load_state(folder / STATE_FILE)
        state = RunState(**plain)
        if not state.complete:
            raise RunStateError(f"{folder}: this shard did not finish; run its command again to complete it")
        return cls(state, tensors, (folder / ROWS_FILE).read_text(encoding="utf-8"))


def _rows(text: str) -> tuple[list[str], list[list[str]]]:
    table = list(csv.reader(io.StringIO(text)))
    return (table[0], table[1:]) if table else ([], [])


def merge_slices(slices: list[SliceResult]) -> SliceResult:
    """One result from the slices of one run, in slice order."""
    if len(slices) == 1:
        return slices[0]
    first = slices[0].state
    mismatched = [i for i, s in enumerate(slices) if s.state.context.get("run_identity") != first.context.get("run_identity")]
    if mismatched:
        raise VtbenchError(f"slices {mismatched} of {first.context.get('run_name')} were made with other settings than slice 0")
    merged = RunState(identity_sha=first.identity_sha, complete=True, context=dict(first.context))
    metric_states: dict[str, dict[str, Any]] = {}
    for name in first.context["metric_names"]:
        total = _metric(name, slices[0].metric_states[name], first.context)
        for other in slices[1:]:
            total.merge_state(_metric(name, other.metric_states[name], first.context))
        metric_states[name] = total.state_dict()
    header: list[str] = []
    rows: list[list[str]] = []
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
        for note, ids in state.notes.items():
            merged.notes[note] = (merged.notes.get(note, []) + ids)[:MAX_FAILURES_IN_RECORD]
        merged.context["peak_rss_mb"] = max(merged.context.get("peak_rss_mb") or 0, state.context.get("peak_rss_mb") or 0)
        header, part_rows = _rows(part.rows_text)
        rows += part_rows
    out = io.StringIO()
    if header:
        csv.writer(out).writerows([header, *rows])
    return SliceResult(merged, metric_states, out.getvalue())


def _metric(name: str, state: dict[str, Any], context: dict[str, Any]) -> Metric:
    """The run's metric ``name`` (with the run's options) holding the merged ``state``."""
    metric = METRICS.create(name, **context.get("metric_options", {}).get(name, {}))
    metric.load_state_dict(state)
    if name in context.get("fixed_references", {}):
        metric.reference_source = context["fixed_references"][name]
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


def _cost(state: RunState) -> dict[str, Any] | None:
    """What the tokens cost, pooled over the run, and how long the tokenizer took per call."""
    info = state.context.get("cost_info")
    if info is None:
        return None
    bits, tokens, pixels, calls = (state.cost[k] for k in ("bits", "tokens", "pixels", "tokenizer_calls"))
    return {
        "tokens_per_image": tokens / state.n_evaluated if state.n_evaluated else None,
        "bits_per_token": bits / tokens if tokens else None,
        "bits_per_pixel": bits / pixels if pixels else None,
        "compression_vs_rgb24": 24.0 * pixels / bits if bits else None,
        "codebook_size": info.get("codebook_size"),
        "latent": state.latent or None,
        "parameters": info.get("parameters"),
        "encode_ms_per_call": 1000 * state.timings.get("encode_s", 0.0) / calls if calls else None,
        "decode_ms_per_call": 1000 * state.timings.get("decode_s", 0.0) / calls if calls else None,
        "calls": calls,
    }


def build_record(result: SliceResult) -> tuple[RunRecord, list[str], list[list[str]]]:
    """The run record of a (merged) finished result, and its per-image rows in dataset order."""
    state, context = result.state, result.state.context
    header, rows = _rows(result.rows_text)
    rows.sort(key=lambda row: int(row[0]))
    by_column = {name: i for i, name in enumerate(header)}
    metrics: dict[str, Any] = {}
    for name in context["metric_names"]:
        metric = _metric(name, result.metric_states[name], context)
        value = metric.compute()
        entry = {"value": value, "n": metric.count, "status": "ok", **metric.describe()}
        if not math.isfinite(value):  # stored as null; the status and reason say why
            entry.update(
                status="undefined", reason=f"{value} ({'no image contributed' if not metric.count else 'not defined for these inputs'})"
            )
        if metric.details():
            entry["details"] = metric.details()
        if metric.warnings():
            entry["warnings"] = metric.warnings()
        if metric.aggregation == "mean" and name in by_column:
            values = [float(row[by_column[name]]) for row in rows if row[2] == "ok" and row[by_column[name]] not in ("", "nan")]
            if len(values) >= 2:
                entry["ci95"] = bootstrap_interval(np.asarray(values))
        metrics[name] = entry
    metrics.update(context.get("unavailable", {}))
    timings = dict(state.timings)
    wall = timings.pop("wall_s", timings.get("total_s", 0.0))
    timings["images_per_s"] = state.n_evaluated / wall if wall > 0 else None
    for stage in ("encode", "decode"):  # the tokenizer's own throughput, without loading or metrics
        seconds = timings.get(f"{stage}_s", 0.0)
        timings[f"{stage}_images_per_s"] = state.n_evaluated / seconds if seconds > 0 else None
    from vtbench.datasets.base import manifest_sha256

    dataset = dict(context["dataset"])
    if "content_sha256" in by_column:
        dataset["manifest_sha256"] = manifest_sha256([(row[1], row[by_column["content_sha256"]]) for row in rows])
    protocol = dict(context["protocol"])
    protocol["evaluation_sizes"] = state.eval_sizes
    if "ocr" in protocol:
        protocol["ocr"] = {**protocol["ocr"], "counts": state.ocr_counts}
    samples = {
        "requested": context["requested"],
        "evaluated": state.n_evaluated,
        "failed": state.n_failed,
        "failures": state.failures[:MAX_FAILURES_IN_RECORD],
        "failures_truncated": state.n_failed > MAX_FAILURES_IN_RECORD,
    }
    if state.notes:
        samples["notes"] = state.notes
    if context["task"] == "generation":
        samples["reference"] = state.reference
    record = RunRecord(
        task=context["task"],
        run_name=context["run_name"],
        identity_sha=context["settings_sha"],
        config=context["config"],
        recipe=context.get("recipe"),
        subject=context["subject"],
        dataset=dataset,
        protocol=protocol,
        metrics=metrics,
        samples=samples,
        cost=_cost(state),
        timings=timings,
        memory={
            "peak_rss_mb": context.get("peak_rss_mb"),
            "cuda_peak_mb": context.get("cuda_peak_mb"),
            "processes": context.get("slices", 1),
        },
        environment=context["environment"],
        per_image_file=per_image_path(Path("."), context["run_name"]).name,
    )
    return record, header, rows


def write_record(result: SliceResult, out_dir: Path) -> dict[str, Any]:
    """Write the record and its per-image CSV into ``out_dir``; returns the record. The CSV's
    first columns name the run (run, tokenizer and dataset; or run, generator and reference),
    so the files of several runs can be concatenated."""
    record, header, rows = build_record(result)
    names = ["run", "tokenizer", "dataset"] if record.task == "reconstruction" else ["run", "generator", "reference"]
    run = [record.run_name, record.subject.get("name", ""), record.dataset.get("name", "")]
    text = io.StringIO()
    csv.writer(text).writerows([[*names, *header], *([csv_safe(cell) for cell in [*run, *row]] for row in rows)])
    atomic_write_bytes(per_image_path(out_dir, record.run_name), text.getvalue().encode())
    data = record.to_dict()
    atomic_write_json(record_path(out_dir, record.run_name), data)
    return data


# -- shards ---------------------------------------------------------------------------------
def shard_folder(out_dir: Path, run_name: str, index: int, count: int) -> Path:
    return out_dir / f"{run_name}.shards" / f"shard-{index}-of-{count}"


def merge_shards(shards_dir: str | Path, out_dir: str | Path) -> list[dict[str, Any]]:
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
        identities = {s.state.context.get("run_identity") for s in slices}
        if len(identities) > 1:
            odd = [
                found[k].name
                for k, s in enumerate(slices)
                if s.state.context.get("run_identity") != slices[0].state.context.get("run_identity")
            ]
            raise VtbenchError(
                f"{run}: {', '.join(odd)} were made with other settings than {found[0].name}; rerun them with the same command"
            )
        merged = merge_slices(slices)
        merged.state.context["slices"] = count
        out_dir.mkdir(parents=True, exist_ok=True)
        records.append(write_record(merged, out_dir))
    return records
