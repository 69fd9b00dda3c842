"""Records as tables, and Bjøntegaard deltas checked against the `bjontegaard` package
(an independent implementation of VCEG-M33 and its piecewise-cubic variant)."""

from __future__ import annotations

import json
from pathlib import Path

import bjontegaard
import numpy as np
import pandas as pd
import pytest

import vtbench
from conftest import run_cli

# two rate–PSNR curves (kbit/s, dB) in the shape of the codec-comparison examples
RATE_A, PSNR_A = [9487.76, 4593.60, 2543.00, 1360.90], [40.037, 38.615, 36.845, 34.851]
RATE_B, PSNR_B = [9787.80, 4469.00, 2451.40, 1356.10], [40.121, 38.651, 36.838, 34.787]


@pytest.mark.parametrize("method", ["cubic", "pchip"])
def test_bd_rate_and_bd_psnr_equal_an_independent_implementation(method: str) -> None:
    assert vtbench.bd_rate(RATE_A, PSNR_A, RATE_B, PSNR_B, method) == pytest.approx(
        bjontegaard.bd_rate(RATE_A, PSNR_A, RATE_B, PSNR_B, method=method), rel=1e-9)  # fmt: skip
    assert vtbench.bd_quality(RATE_A, PSNR_A, RATE_B, PSNR_B, method) == pytest.approx(
        bjontegaard.bd_psnr(RATE_A, PSNR_A, RATE_B, PSNR_B, method=method), rel=1e-9)  # fmt: skip
    # a curve against itself: 0; the same PSNR at half the rate: -50 %
    assert vtbench.bd_rate(RATE_A, PSNR_A, RATE_A, PSNR_A, method) == pytest.approx(0, abs=1e-9)
    assert vtbench.bd_rate(RATE_A, PSNR_A, [r / 2 for r in RATE_A], PSNR_A, method) == pytest.approx(-50, abs=1e-9)
    with pytest.raises(vtbench.errors.VtbenchError, match="at least 4 points"):
        vtbench.bd_rate(RATE_A[:3], PSNR_A[:3], RATE_B, PSNR_B, method)


def test_curve_families_do_not_depend_on_what_was_imported_before() -> None:
    from vtbench.analysis import curve_name
    from vtbench.schema import DataSide, Protocol, RunRecord, Samples, Subject

    def record(preset: str) -> RunRecord:
        return RunRecord("reconstruction", f"{preset}__d", "", {}, Subject(preset, preset), DataSide("d"), Protocol(), {}, Samples())

    vtbench.create_tokenizer("resample-x4")  # imports the preset's class (the registry entry then holds it)
    assert curve_name(record("resample-x4")) == "resample"
    assert curve_name(record("jpeg-q50")) == "jpeg"
    assert curve_name(record("my-plugin-tokenizer")) == "my-plugin-tokenizer"


def test_records_load_as_tidy_tables_and_give_codec_curves(tmp_path: Path) -> None:
    tokenizers = [f"{codec}:quality={q},label={codec}-q{q}" for codec in ("jpeg", "webp") for q in (20, 40, 60, 80)]
    run_cli("run", *[a for t in tokenizers for a in ("-t", t)], "-d", "samples", "--limit", "4", "--resolution", "64",
            "-m", "psnr,ssim", "--out", tmp_path)  # fmt: skip
    frame = vtbench.load_records(tmp_path)
    assert isinstance(frame, pd.DataFrame) and len(frame) == 8 * 4  # psnr, ssim, bpp, tokens per run
    row = frame[(frame["run"] == "webp-q40__samples") & (frame["metric"] == "psnr")].iloc[0]
    assert row["curve"] == "webp" and row["n"] == 4 and row["ci_low"] <= row["value"] <= row["ci_high"] and row["higher_is_better"]
    images = vtbench.load_images(tmp_path)
    assert len(images) == 32 and set(images["tokenizer"]) == {t.split("label=")[1] for t in tokenizers}
    from vtbench.analysis import rate_quality_curves

    curves = rate_quality_curves(frame)
    jpeg, webp = curves[("jpeg", "samples")], curves[("webp", "samples")]
    assert len(jpeg) == len(webp) == 4 and np.all(np.diff(jpeg["bits_per_pixel"]) > 0)
    ours = vtbench.bd_rate(jpeg["bits_per_pixel"], jpeg["psnr"], webp["bits_per_pixel"], webp["psnr"])
    expected = bjontegaard.bd_rate(jpeg["bits_per_pixel"].to_numpy(), jpeg["psnr"].to_numpy(), webp["bits_per_pixel"].to_numpy(),
                                   webp["psnr"].to_numpy(), method="cubic", min_overlap=0)  # fmt: skip
    assert ours == pytest.approx(expected, rel=1e-9) and ours < 0  # WebP needs fewer bits than JPEG for the same PSNR
    # the leaderboard's Bjøntegaard columns: each family against the baseline family, n/a where no curve
    board = json.loads(run_cli("leaderboard", tmp_path, "--bd-baseline", "jpeg", "-f", "json").stdout)
    by_tokenizer = {row["tokenizer"]: row for row in board["rows"]}
    assert by_tokenizer["webp-q40"]["bd-rate"] == pytest.approx(ours, rel=1e-9) and by_tokenizer["jpeg-q80"]["bd-rate"] == 0.0
    expected_psnr = bjontegaard.bd_psnr(jpeg["bits_per_pixel"].to_numpy(), jpeg["psnr"].to_numpy(), webp["bits_per_pixel"].to_numpy(),
                                        webp["psnr"].to_numpy(), method="cubic", min_overlap=0)  # fmt: skip
    assert by_tokenizer["webp-q20"]["bd-psnr"] == pytest.approx(expected_psnr, rel=1e-9) and expected_psnr > 0
    latex = run_cli("leaderboard", tmp_path, "--bd-baseline", "jpeg", "--bd-metric", "ssim", "-f", "latex").stdout
    assert "BD-rate (\\%) $\\downarrow$" in latex and "BD-SSIM $\\uparrow$" in latex
    rows = [line.split(" & ") for line in latex.splitlines() if line.startswith("webp-q")]
    assert len(rows) == 4 and sum(bool(row[-3]) for row in rows) == 1  # a family's BD-rate once, on its best-ranked row
    error = run_cli("leaderboard", tmp_path, "--bd-baseline", "avif", check=2).stderr
    assert "baseline 'avif'" in error and "jpeg, webp" in error
