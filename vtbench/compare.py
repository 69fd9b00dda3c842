"""Regression gate: compare a candidate run record with a baseline, metric by metric.

A metric regresses when it moves in its worse direction by more than its tolerance
(absolute, or relative to the baseline when written as ``5%``), and never by less than its
noise floor: the run-to-run rounding a rerun of the same command can show (``NOISE_FLOORS``).
A metric the baseline has and the candidate lacks is a regression too. Each metric is
compared only when the settings it depends on agree (:meth:`vtbench.schema.RunRecord.comparability`:
the data side (the dataset, or a generation run's reference), preprocessing and rounding;
the metric's options, its extractor and version and the digest of every weights file behind
it; the OCR engine for text metrics); otherwise the comparison is refused, naming the keys.

Where the per-image rows are beside the records, each per-image metric also gets paired
tests of the per-image differences (a bootstrap interval and p for the mean difference, and
Wilcoxon's signed-rank p); ``require_significance`` makes a change past the tolerance count
only when it is also significant, so a gate on a small set neither flaps nor needs a loose
tolerance.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vtbench.errors import VtbenchError
from vtbench.io import parse_float
from vtbench.schema import MetricEntry, RunRecord, find_records


@dataclass
class PairedTest:
    """Paired tests of the per-image differences (candidate - baseline) on the images both runs
    scored: a percentile bootstrap of their mean (interval and two-sided p) and the Wilcoxon
    signed-rank test."""

    pairs: int
    mean_difference: float
    interval: tuple[float, float]  # (1 - alpha) bootstrap interval of the mean difference
    p_bootstrap: float
    p_wilcoxon: float
    decided_by: str = "bootstrap"  # which p the gate uses

    @property
    def p_value(self) -> float:
        return self.p_bootstrap if self.decided_by == "bootstrap" else self.p_wilcoxon


@dataclass
class MetricDiff:
    run: str
    metric: str
    baseline: float | None
    candidate: float | None
    tolerance: str
    higher_is_better: bool | None
    status: str  # ok | improved | regressed | missing | new | noise (past the tolerance, not significant)
    test: PairedTest | None = None  # the paired test of the per-image values, when both runs have them

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

    def to_dict(self) -> dict[str, Any]:
        """What ``vtbench compare --json`` prints (non-finite numbers as null)."""
        return {
            "regressed": self.regressed,
            "diffs": [
                {**asdict(d), **_tolerance_fields(d), "delta": d.delta, "p_value": d.test.p_value if d.test else None} for d in self.diffs
            ],  # fmt: skip
            "protocol_notes": list(self.protocol_notes),
        }


def _tolerance_fields(diff: MetricDiff) -> dict[str, float | None]:
    """The tolerance as numbers: the allowed change in the metric's unit (``tolerance``) and,
    for one given in percent, that percentage (``tolerance_percent``; else null)."""
    percent = float(diff.tolerance[:-1]) if diff.tolerance.endswith("%") else None
    if diff.baseline is None or not math.isfinite(diff.baseline):
        allowed = None if percent is not None else float(diff.tolerance)
    else:
        allowed = _allowed_change(diff.tolerance, diff.baseline)
    return {"tolerance": allowed, "tolerance_percent": percent}


# Relative noise floors: sums over images are exact, so pixel, text and cost metrics repeat
# bit for bit; feature-space metrics go through float32 networks and float64 products whose
# rounding may differ with thread scheduling or process split (bounded by 1e-6 relative).
NOISE_FLOORS = {"distribution": 1e-6}
DEFAULT_NOISE_FLOOR = 1e-12


def noise_floor(metric: MetricEntry, baseline: float) -> float:
    """The change of ``baseline`` below which a difference is rounding, for this metric entry."""
    return abs(baseline) * NOISE_FLOORS.get(metric.kind, DEFAULT_NOISE_FLOOR)


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


def check_tolerance_names(tolerances: dict[str, str], records: list[RunRecord]) -> None:
    """A tolerance for a metric no record has is a typo: refuse it with the close names."""
    import difflib

    known = sorted({name for record in records for name in record.metrics})
    for name in tolerances:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise VtbenchError(f"--tolerance {name}=...: no compared record has a metric {name!r}.{hint} (metrics: {', '.join(known)})")


TESTS = ("bootstrap", "wilcoxon")


def paired_test(differences: Any, alpha: float = 0.05, decided_by: str = "bootstrap", resamples: int = 10_000,
                seed: int = 0) -> PairedTest:  # fmt: skip
    """Paired tests that the per-image ``differences`` have no shift: a percentile bootstrap of
    the mean (``resamples`` resamples, fixed ``seed`` so the same inputs give the same p: a gate
    that does not flap; two-sided p = twice the share of bootstrap means on the far side of 0)
    and scipy's Wilcoxon signed-rank test (zero differences dropped, exact for small samples)."""
    import numpy as np
    from scipy import stats

    if decided_by not in TESTS:
        raise VtbenchError(f"--test must be one of {', '.join(TESTS)}, got {decided_by!r}")
    d = np.asarray(differences, dtype=np.float64)
    d = d[np.isfinite(d)]
    mean = float(d.mean()) if len(d) else 0.0
    if len(d) < 2 or not np.any(d):
        return PairedTest(len(d), mean, (mean, mean), 1.0, 1.0, decided_by)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    step = max(1, 2_000_000 // len(d))  # bounded memory: at most 2M drawn indices at a time
    for start in range(0, resamples, step):
        count = min(step, resamples - start)
        means[start : start + count] = d[rng.integers(0, len(d), size=(count, len(d)))].mean(axis=1)
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    far_side = min(np.sum(means <= 0), np.sum(means >= 0))
    p_bootstrap = min(1.0, 2 * (far_side + 1) / (resamples + 1))
    p_wilcoxon = float(stats.wilcoxon(d[d != 0]).pvalue) if np.count_nonzero(d) >= 1 else 1.0
    return PairedTest(len(d), mean, (float(low), float(high)), p_bootstrap, p_wilcoxon, decided_by)


def compare_records(
    baseline: RunRecord,
    candidate: RunRecord,
    tolerances: dict[str, str] | None = None,
    default_tolerance: str = "0",
    per_image: dict[str, tuple[Any, Any]] | None = None,
    alpha: float = 0.05,
    require_significance: bool = False,
    test: str = "bootstrap",
) -> list[MetricDiff]:
    """Diffs of every metric. With ``per_image`` (metric -> the two runs' values on the same
    images, in the same order) each such metric gets a :class:`PairedTest`; with
    ``require_significance``, a change past the tolerance counts (regressed or improved) only
    when the ``test``'s p is below ``alpha``; otherwise its status is ``noise``."""
    tolerances = tolerances or {}
    run = baseline.run_name
    diffs = []
    for name, base_metric in baseline.metrics.items():
        tolerance = tolerances.get(name, default_tolerance)
        higher = base_metric.higher_is_better
        base_value = parse_float(base_metric.value)
        cand_metric = candidate.metrics.get(name)
        if cand_metric is None:
            diffs.append(MetricDiff(run, name, base_value, None, tolerance, higher, "missing"))
            continue
        cand_value = parse_float(cand_metric.value)
        diff = MetricDiff(run, name, base_value, cand_value, tolerance, higher, "ok")
        if cand_value is None or math.isnan(cand_value):  # undefined or not computed: fine only if it was so before
            diff.status = "ok" if base_value is None or math.isnan(base_value) else "regressed"
        elif base_value is not None and not math.isnan(base_value) and diff.delta:
            worse = -diff.delta if higher else diff.delta
            allowed = _allowed_change(tolerance, base_value) if math.isfinite(base_value) else 0.0
            allowed = max(allowed, noise_floor(base_metric, base_value) if math.isfinite(base_value) else 0.0)
            if worse > allowed:
                diff.status = "regressed"
            elif worse < 0:
                diff.status = "improved"
        if per_image and name in per_image:
            base_values, cand_values = per_image[name]
            differences = [c - b for b, c in zip(base_values, cand_values, strict=True)]
            diff.test = paired_test(differences, alpha, test)
            if require_significance and diff.status in ("regressed", "improved") and diff.test.p_value >= alpha:
                diff.status = "noise"
        diffs.append(diff)
    for name, cand_metric in candidate.metrics.items():
        if name not in baseline.metrics:
            diffs.append(MetricDiff(run, name, None, parse_float(cand_metric.value), "", cand_metric.higher_is_better, "new"))
    return diffs


def _per_image_values(record: RunRecord) -> dict[str, dict[str, float]] | None:
    """metric -> {image id: value} from the run's per-image rows (None when the CSV is not
    beside the record)."""
    rows = record.image_rows()
    if rows is None:
        return None
    values: dict[str, dict[str, float]] = {}
    for row in rows:
        if row.ok:
            for metric, value in row.values.items():
                if value is not None:
                    values.setdefault(metric, {})[row.id] = value
    return values


def compare_runs(
    baseline: str | Path,
    candidate: str | Path,
    tolerances: dict[str, str] | None = None,
    default_tolerance: str = "0",
    allow_protocol_mismatch: bool = False,
    alpha: float = 0.05,
    require_significance: bool = False,
    test: str = "bootstrap",
) -> Comparison:
    """Compare two record files, or two folders of records matched by run name. Per-image
    metrics of runs whose per-image CSVs are beside their records get paired tests (p and
    the interval of the mean difference at ``alpha``); with ``require_significance`` a change
    past the tolerance also has to be significant to count as regressed or improved, and a
    missing per-image file is an error naming it."""
    if not 0 < alpha < 1:
        raise VtbenchError(f"--alpha must be between 0 and 1, got {alpha}")
    if test not in TESTS:
        raise VtbenchError(f"--test must be one of {', '.join(TESTS)}, got {test!r}")
    base_records = {r.run_name: r for r in find_records(baseline)}
    cand_records = {r.run_name: r for r in find_records(candidate)}
    if not base_records:
        raise VtbenchError(f"{baseline}: no run records found")
    check_tolerance_names(tolerances or {}, [*base_records.values(), *cand_records.values()])
    if Path(baseline).is_file() and Path(candidate).is_file() and len(cand_records) == 1:
        cand_records = {next(iter(base_records)): next(iter(cand_records.values()))}
    result = Comparison()
    for run, base in base_records.items():
        cand = cand_records.get(run)
        if cand is None:
            result.diffs.append(MetricDiff(run, "(run)", None, None, "", None, "missing"))
            continue
        for metric in sorted(set(base.metrics) & set(cand.metrics)):
            mine, theirs = base.comparability(metric), cand.comparability(metric)
            if mine != theirs:
                differing = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
                detail = "; ".join(f"{k}: {mine.get(k)} vs {theirs.get(k)}" for k in differing)
                note = f"{run}: {metric} was computed under different settings ({detail})"
                if not allow_protocol_mismatch:
                    raise VtbenchError(note + "; not comparable (pass --allow-protocol-mismatch to compare anyway)")
                result.protocol_notes.append(note)
        base_images, cand_images = _per_image_values(base), _per_image_values(cand)
        if require_significance:
            for images, record in ((base_images, base), (cand_images, cand)):
                if images is None:
                    raise VtbenchError(f"--require-significance needs the per-image rows of run {run}: {record.images_path} is missing "
                                       "(vtbench run writes it beside the record; copy it with the record, or rerun)")  # fmt: skip
        per_image = {}
        for metric, entry in base.metrics.items():
            if entry.aggregation == "mean" and base_images and cand_images and metric in base_images and metric in cand_images:
                shared = [i for i in base_images[metric] if i in cand_images[metric]]
                per_image[metric] = ([base_images[metric][i] for i in shared], [cand_images[metric][i] for i in shared])
        result.diffs.extend(compare_records(base, cand, tolerances, default_tolerance, per_image, alpha, require_significance, test))
    return result
