"""Regression gate: compare a candidate run record with a baseline, metric by metric.

A metric regresses when it moves in its worse direction by more than its tolerance
(absolute, or relative to the baseline when written as ``5%``). A metric the baseline
has and the candidate lacks is a regression too. Records made under different protocols
(preprocessing, rounding, dataset manifest) are refused unless explicitly allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vtbench.errors import VtbenchError
from vtbench.io import parse_float
from vtbench.record import find_records


@dataclass
class MetricDiff:
    run: str
    metric: str
    baseline: float | None
    candidate: float | None
    tolerance: str
    higher_is_better: bool | None
    status: str  # ok | improved | regressed | missing | new

    @property
    def delta(self) -> float | None:
        if self.baseline is None or self.candidate is None:
            return None
        if self.baseline == self.candidate:  # also inf == inf
            return 0.0
        return self.candidate - self.baseline


@dataclass
class Comparison:
    diffs: list[MetricDiff] = field(default_factory=list)
    protocol_notes: list[str] = field(default_factory=list)

    @property
    def regressed(self) -> bool:
        return any(d.status in ("regressed", "missing") for d in self.diffs)


def parse_tolerances(items: list[str]) -> dict[str, str]:
    """``["psnr=0.1", "fid=2%"]`` -> ``{"psnr": "0.1", "fid": "2%"}`` (checked)."""
    tolerances = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise VtbenchError(f"tolerance {item!r} must look like METRIC=VALUE (e.g. psnr=0.1 or fid=2%)")
        try:
            number = float(value.rstrip("%"))
        except ValueError:
            raise VtbenchError(f"tolerance {item!r}: {value!r} is not a number") from None
        if number < 0:
            raise VtbenchError(f"tolerance {item!r} must not be negative")
        tolerances[name] = value
    return tolerances


def _allowed_change(tolerance: str, baseline: float) -> float:
    if tolerance.endswith("%"):
        return abs(baseline) * float(tolerance[:-1]) / 100.0
    return float(tolerance)


def protocol_key(record: dict[str, Any]) -> dict[str, Any]:
    """The parts of a record that must agree for two results to be comparable."""
    protocol = record.get("protocol", {})
    preprocessing = protocol.get("preprocessing") or protocol.get("reference_preprocessing") or {}
    if preprocessing:
        from vtbench.images import Preprocessing

        known = {k: v for k, v in preprocessing.items() if k in Preprocessing.__dataclass_fields__}
        try:  # settings without effect (a filter when nothing is resized) must not block a comparison
            preprocessing = Preprocessing(**known).canonical()
        except (TypeError, ValueError):
            preprocessing = known
    return {
        "dataset_manifest": record.get("dataset", {}).get("manifest_sha256"),
        "preprocessing": preprocessing,
        "rounding": protocol.get("rounding"),
        "extractor_weights": sorted(w["sha256"] for w in protocol.get("weights", [])),
        "extractor_versions": sorted(f"{e.get('name')} {e.get('version', '1')}" for e in protocol.get("feature_extractors", [])),
    }


def compare_records(
    baseline: dict[str, Any],
    candidate: dict[str, Any],
    tolerances: dict[str, str] | None = None,
    default_tolerance: str = "0",
) -> list[MetricDiff]:
    tolerances = tolerances or {}
    run = baseline["run_name"]
    diffs = []
    for name, base_metric in baseline["metrics"].items():
        tolerance = tolerances.get(name, default_tolerance)
        higher = base_metric.get("higher_is_better")
        base_value = parse_float(base_metric["value"])
        cand_metric = candidate["metrics"].get(name)
        if cand_metric is None:
            diffs.append(MetricDiff(run, name, base_value, None, tolerance, higher, "missing"))
            continue
        cand_value = parse_float(cand_metric["value"])
        diff = MetricDiff(run, name, base_value, cand_value, tolerance, higher, "ok")
        if cand_value is None or math.isnan(cand_value):
            diff.status = "ok" if base_value is not None and math.isnan(base_value) else "regressed"
        elif base_value is not None and not math.isnan(base_value) and diff.delta:
            worse = -diff.delta if higher else diff.delta
            allowed = _allowed_change(tolerance, base_value) if math.isfinite(base_value) else 0.0
            if worse > allowed:
                diff.status = "regressed"
            elif worse < 0:
                diff.status = "improved"
        diffs.append(diff)
    for name, cand_metric in candidate["metrics"].items():
        if name not in baseline["metrics"]:
            diffs.append(MetricDiff(run, name, None, parse_float(cand_metric["value"]), "", cand_metric.get("higher_is_better"), "new"))
    return diffs


def compare_runs(
    baseline: str | Path,
    candidate: str | Path,
    tolerances: dict[str, str] | None = None,
    default_tolerance: str = "0",
    allow_protocol_mismatch: bool = False,
) -> Comparison:
    """Compare two record files, or two folders of records matched by run name."""
    base_records = {r["run_name"]: r for r in find_records(baseline)}
    cand_records = {r["run_name"]: r for r in find_records(candidate)}
    if not base_records:
        raise VtbenchError(f"{baseline}: no run records found")
    if Path(baseline).is_file() and Path(candidate).is_file() and len(cand_records) == 1:
        cand_records = {next(iter(base_records)): next(iter(cand_records.values()))}
    result = Comparison()
    for run, base in base_records.items():
        cand = cand_records.get(run)
        if cand is None:
            result.diffs.append(MetricDiff(run, "(run)", None, None, "", None, "missing"))
            continue
        if protocol_key(base) != protocol_key(cand):
            note = f"{run}: protocols differ: baseline {protocol_key(base)} vs candidate {protocol_key(cand)}"
            if not allow_protocol_mismatch:
                raise VtbenchError(note + " — these results are not comparable (pass --allow-protocol-mismatch to compare anyway)")
            result.protocol_notes.append(note)
        result.diffs.extend(compare_records(base, cand, tolerances, default_tolerance))
    return result
