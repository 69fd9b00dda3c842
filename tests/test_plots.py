"""Figures from records: the plotted points are the records' numbers, and the files are
real PNG / SVG images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from conftest import run_cli


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sweep")
    tokenizers = [f"{codec}:quality={q},label={codec}-q{q}" for codec in ("jpeg", "webp") for q in (30, 70)] + ["resample-x4"]
    run_cli("run", *[a for t in tokenizers for a in ("-t", t)], "-d", "detail", "--limit", "3", "--resize-mode", "none",
            "-m", "psnr,hf-fidelity", "--out", out)  # fmt: skip
    return out


def test_rate_distortion_plots_the_records_points(sweep: Path, tmp_path: Path) -> None:
    from vtbench import plots

    figure = plots.rate_distortion(sweep, "psnr")
    lines = {container.get_label(): container.lines[0] for container in figure.axes[0].containers}  # error-bar lines
    assert set(lines) == {"jpeg", "webp", "resample"}
    records = {p.stem: json.loads(p.read_text()) for p in sweep.glob("*.json")}
    expected = sorted((r["cost"]["bits_per_pixel"], r["metrics"]["psnr"]["value"]) for n, r in records.items() if n.startswith("webp"))
    plotted = sorted(zip(lines["webp"].get_xdata(), lines["webp"].get_ydata(), strict=True))
    assert [value for point in plotted for value in point] == pytest.approx([value for point in expected for value in point])
    assert lines["jpeg"].get_linestyle() == "--"  # codecs are reference curves
    run_cli("plot", "rate-distortion", sweep, "--out", tmp_path / "rd.png")
    with Image.open(tmp_path / "rd.png") as image:
        assert image.format == "PNG" and image.size == (680, 520)  # 3.4 x 2.6 inches at 200 dpi


def test_frequency_and_distribution_plots(sweep: Path, tmp_path: Path) -> None:
    run_cli("plot", "frequency", sweep, "--out", tmp_path / "freq.svg")
    svg = (tmp_path / "freq.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "cycles/pixel" in svg
    run_cli("plot", "distribution", sweep, "-m", "psnr", "--out", tmp_path / "psnr.pdf")
    assert (tmp_path / "psnr.pdf").read_bytes().startswith(b"%PDF")
    result = run_cli("plot", "distribution", sweep, "-m", "lpips-vgg", "--out", tmp_path / "x.png", check=2)
    assert "no per-image 'lpips-vgg' values" in result.stderr
    assert "unknown plot 'bars'" in run_cli("plot", "bars", sweep, "--out", tmp_path / "x.png", check=2).stderr
