"""Records as tables for analysis: one row per run and metric (``load_records``), the
per-image rows of many runs (``load_images``), and Bjøntegaard deltas between rate–quality
curves (``bd_rate``, ``bd_quality``), with the curves taken from the records
(``rate_quality_curves``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vtbench.errors import VtbenchError
from vtbench.schema import RunRecord, find_records


def _records(paths: str | Path | Iterable[str | Path | RunRecord]) -> list[RunRecord]:
    """The records under ``paths`` (files or folders); records already loaded pass through."""
    roots = [paths] if isinstance(paths, (str, Path)) else list(paths)
    return [record for root in roots for record in ([root] if isinstance(root, RunRecord) else find_records(root))]


def curve_name(record: RunRecord) -> str:
    """The family a run belongs to on a rate–quality plot: the registered name of its
    tokenizer class without preset options (``jpeg-q50`` -> ``jpeg``), else its preset."""
    from vtbench.tokenizers import TOKENIZERS

    preset = record.subject.preset or record.subject_name
    if preset not in TOKENIZERS:
        return preset
    target = _target_name(TOKENIZERS.get(preset).target)
    bare = [e.name for e in TOKENIZERS.entries() if _target_name(e.target) == target and not e.defaults]
    return bare[0] if bare else preset


def _target_name(target: Any) -> str:
    """``module:attribute`` of a registry target, imported (a class) or not yet (a string)."""
    return target if isinstance(target, str) else f"{target.__module__}:{target.__qualname__}"


def load_records(paths: str | Path | Iterable[str | Path]) -> pd.DataFrame:
    """Every record under ``paths`` (files or folders) as a tidy table: one row per run and
    metric with its value, 95% interval, count, direction, unit, status, and the run's cost
    (pooled bits per pixel, tokens per image), dataset, protocol preset and curve family."""
    return records_frame(_records(paths))


RECORD_COLUMNS = ["run", "task", "subject", "curve", "dataset", "metric", "value", "ci_low", "ci_high", "n", "higher_is_better", "unit",
                  "kind", "status", "bits_per_pixel", "tokens_per_image", "protocol", "created"]  # fmt: skip


def records_frame(records: Iterable[RunRecord]) -> pd.DataFrame:
    """The :func:`load_records` table of records already loaded."""
    rows = []
    for record in records:
        cost = record.cost
        for metric, entry in record.metrics.items():
            low, high = entry.ci95 or (None, None)
            rows.append({
                "run": record.run_name, "task": record.task, "subject": record.subject_name, "curve": curve_name(record),
                "dataset": record.dataset_name, "metric": metric, "value": entry.value, "ci_low": low, "ci_high": high, "n": entry.n,
                "higher_is_better": entry.higher_is_better, "unit": entry.unit, "kind": entry.kind, "status": entry.status,
                "bits_per_pixel": cost.bits_per_pixel if cost else None, "tokens_per_image": cost.tokens_per_image if cost else None,
                "protocol": record.protocol_name, "created": record.created,
            })  # fmt: skip
    return pd.DataFrame(rows, columns=RECORD_COLUMNS)


def load_images(paths: str | Path | Iterable[str | Path]) -> pd.DataFrame:
    """The per-image rows of every record under ``paths``, concatenated (each CSV names its
    run in its first columns), in dataset order within each run."""
    frames = [images_frame(record) for record in _records(paths) if record.images_path.is_file()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def images_frame(record: RunRecord) -> pd.DataFrame:
    """One run's per-image CSV as a table (ids as text, as the run saw them)."""
    from vtbench.io import csv_unsafe

    frame = pd.read_csv(record.images_path, keep_default_na=False, na_values=[""], dtype={"id": str, "error": str})
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].map(csv_unsafe)
    return frame


def is_lossless(record: RunRecord) -> bool:
    """Whether every image of the run was reconstructed exactly (all at the PSNR ceiling)."""
    entry = record.metrics.get("psnr")
    evaluated = record.samples.evaluated
    return bool(entry and evaluated and entry.details.get("images_at_ceiling") == evaluated)


WORST_COLUMNS = ["id", "runs", "mean", "worst", "worst_run", "best", "best_run"]


def worst_images(paths: str | Path | Iterable[str | Path], metric: str = "psnr", k: int = 10) -> pd.DataFrame:
    """The ``k`` images that are worst by ``metric`` across the runs under ``paths`` (by the
    metric's direction, on their mean over the runs that scored them; lossless runs left out):
    per image its id, how many runs scored it, the mean, and the worst and best run with their
    values."""
    return hardest_images(_records(paths), load_images(paths), metric, k)


def hardest_images(records: list[RunRecord], images: pd.DataFrame, metric: str, k: int | None = None) -> pd.DataFrame:
    """:func:`worst_images` of records already loaded, with their per-image rows ``images``
    (``run``, ``id``, ``status`` and the metric's column); ``k`` None: every image."""
    entries = [r.metrics[metric] for r in records if metric in r.metrics and r.metrics[metric].status == "ok"]
    if not entries:
        raise VtbenchError(f"no record under these paths has {metric!r} computed")
    higher = entries[0].higher_is_better is not False
    if images.empty or metric not in images.columns:
        raise VtbenchError(f"no per-image {metric!r} values in these records (it is not a per-image metric, or the CSVs are missing)")
    lossless = {r.run_name for r in records if is_lossless(r)}  # the identity at the ceiling tells nothing about an image
    scored = images[(images["status"] == "ok") & images[metric].notna() & ~images["run"].isin(lossless)][["run", "id", metric]]
    if scored.empty:
        raise VtbenchError(f"no per-image {metric!r} values in these records (it is not a per-image metric, or every run is lossless)")
    rows = []
    for image_id, group in scored.groupby("id", sort=False):
        ordered = group.sort_values(metric, ascending=higher, kind="stable")
        worst, best = ordered.iloc[0], ordered.iloc[-1]
        rows.append({"id": str(image_id), "runs": len(group), "mean": float(group[metric].mean()), "worst": float(worst[metric]),
                     "worst_run": worst["run"], "best": float(best[metric]), "best_run": best["run"]})  # fmt: skip
    table = pd.DataFrame(rows, columns=WORST_COLUMNS)
    ranked = table.sort_values(["mean", "id"], ascending=[higher, True], kind="stable")
    return (ranked if k is None else ranked.head(k)).reset_index(drop=True)


def rate_quality_curves(frame: pd.DataFrame, quality: str = "psnr", rate: str = "bits_per_pixel") -> dict[tuple[str, str], pd.DataFrame]:
    """(curve family, dataset) -> that family's points (``run``, ``rate``, ``quality`` and its
    interval ``ci_low``/``ci_high``), sorted by rate, from a :func:`load_records` table."""
    points = frame[(frame["metric"] == quality) & frame["value"].notna() & frame[rate].notna()]
    columns = ["run", rate, "value", "ci_low", "ci_high"]
    return {key: group[columns].rename(columns={"value": quality}).sort_values(rate).reset_index(drop=True)
            for key, group in points.groupby(["curve", "dataset"])}  # fmt: skip


def _interpolator(x: np.ndarray, y: np.ndarray, method: str) -> Any:
    order = np.argsort(x)
    x, y = np.asarray(x, dtype=np.float64)[order], np.asarray(y, dtype=np.float64)[order]
    if method == "cubic":  # VCEG-M33: a cubic polynomial through (at least) four points
        coefficients = np.polyfit(x, y, 3)
        primitive = np.polyint(coefficients)
        return lambda low, high: np.polyval(primitive, high) - np.polyval(primitive, low)
    if method == "pchip":  # piecewise cubic Hermite (as later JVET/AOM tools use)
        from scipy.interpolate import PchipInterpolator

        return PchipInterpolator(x, y).integrate
    raise VtbenchError(f"Bjøntegaard method must be cubic or pchip, got {method!r}")


def _delta(x_a: Any, y_a: Any, x_b: Any, y_b: Any, method: str) -> float:
    """Average of y_b - y_a over the overlap of the x ranges."""
    if min(len(x_a), len(x_b)) < 4:
        raise VtbenchError(f"a Bjøntegaard delta needs at least 4 points per curve, got {len(x_a)} and {len(x_b)}")
    low, high = max(np.min(x_a), np.min(x_b)), min(np.max(x_a), np.max(x_b))
    if high <= low:
        raise VtbenchError("the two curves do not overlap: no Bjøntegaard delta")
    return float((_interpolator(x_b, y_b, method)(low, high) - _interpolator(x_a, y_a, method)(low, high)) / (high - low))


def bd_rate(rate_anchor: Any, quality_anchor: Any, rate_test: Any, quality_test: Any, method: str = "cubic") -> float:
    """Bjøntegaard delta rate (%): the test curve's average rate change against the anchor at
    equal quality (negative: fewer bits), log10 rate fitted as a function of quality."""
    log_delta = _delta(quality_anchor, np.log10(rate_anchor), quality_test, np.log10(rate_test), method)
    return (10**log_delta - 1) * 100


def bd_quality(rate_anchor: Any, quality_anchor: Any, rate_test: Any, quality_test: Any, method: str = "cubic") -> float:
    """Bjøntegaard delta quality (BD-PSNR for PSNR): the test curve's average quality change
    against the anchor at equal rate, quality fitted as a function of log10 rate."""
    return _delta(np.log10(rate_anchor), quality_anchor, np.log10(rate_test), quality_test, method)


BD_COLUMNS = ["curve", "dataset", "baseline", "quality", "points", "bd_rate", "bd_quality", "note"]


def bd_table(frame: pd.DataFrame, baseline: str, quality: str = "psnr", rate: str = "bits_per_pixel",
             method: str = "cubic") -> pd.DataFrame:  # fmt: skip
    """Bjøntegaard deltas of every curve family against the ``baseline`` family on the same
    dataset (from a :func:`load_records` table): BD-rate in % (negative: fewer bits for the
    same quality) and the quality delta at equal rate (BD-PSNR for PSNR). A family that
    cannot be compared (fewer than four points, no overlap) has no numbers and a ``note``."""
    curves = rate_quality_curves(frame, quality, rate)
    if not any(curve == baseline for curve, _ in curves):
        known = sorted({curve for curve, _ in curves})
        raise VtbenchError(
            f"no {quality} vs {rate} curve for baseline {baseline!r} in these records (curves: {', '.join(known) or 'none'})"
        )
    rows = []
    for (curve, dataset), points in sorted(curves.items()):
        anchor = curves.get((baseline, dataset))
        row = {"curve": curve, "dataset": dataset, "baseline": baseline, "quality": quality, "points": len(points),
               "bd_rate": None, "bd_quality": None, "note": ""}  # fmt: skip
        if anchor is None:
            row["note"] = f"no {baseline} curve on {dataset}"
        elif curve == baseline:
            row.update(bd_rate=0.0, bd_quality=0.0, note="baseline")
        else:
            try:
                row["bd_rate"] = bd_rate(anchor[rate], anchor[quality], points[rate], points[quality], method)
                row["bd_quality"] = bd_quality(anchor[rate], anchor[quality], points[rate], points[quality], method)
            except VtbenchError as exc:
                row["note"] = str(exc)
        rows.append(row)
    table = pd.DataFrame(rows, columns=BD_COLUMNS)
    for column in ("bd_rate", "bd_quality"):  # a missing delta is None (n/a in tables), not NaN
        table[column] = table[column].astype(object).where(table[column].notna(), None)
    return table
