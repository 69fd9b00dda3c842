"""Figures from records: the plotted points are the records' numbers, and the files are
real PNG / SVG images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from conftest import figure_layout_problems, run_cli


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sweep")
    tokenizers = [f"{codec}:quality={q},label={codec}-q{q}" for codec in ("jpeg", "webp") for q in (30, 70)] + [
        "resample-x4",
        "resample-x16",
        "identity",
    ]
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
    axes = figure.axes[0]
    assert axes.get_ylabel() == "PSNR (dB)" and axes.get_xlabel() == "rate (bits per pixel)"
    assert axes.get_xscale() == "log"  # resample-x16's 0.09 bpp to 3 bpp: a log axis, its labels checked below
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert legend == ["jpeg", "resample", "webp", "identity: lossless, not drawn"]  # 100 dB would squash the curves
    assert figure_layout_problems(figure) == []
    tokens = plots.rate_distortion(sweep, "psnr", rate="Tokens")  # the names users know, in any case
    assert tokens.axes[0].get_xlabel() == "rate (tokens per image)" and figure_layout_problems(tokens) == []
    run_cli("plot", "rate-distortion", sweep, "--out", tmp_path / "rd.png")
    with Image.open(tmp_path / "rd.png") as image:
        assert image.format == "PNG" and image.size == (680, 520)  # 3.4 x 2.6 inches at 200 dpi


def test_a_log_rate_axis_has_plain_decade_labels(sweep: Path, tmp_path: Path) -> None:
    """Mathtext is off for user text, so the log axis must not use matplotlib's mathtext tick labels."""
    run_cli("plot", "rate-distortion", sweep, "--out", tmp_path / "rd.svg")  # 0.09 to 3 bpp: a log axis
    svg = (tmp_path / "rd.svg").read_text()
    assert "mathdefault" not in svg and "$" not in svg


def test_every_family_has_one_colour_in_every_figure_and_no_figure_has_overlaps(sweep: Path) -> None:
    from matplotlib.colors import to_hex

    from vtbench import plots

    curves = {c.get_label(): to_hex(c.lines[0].get_color()) for c in plots.rate_distortion(sweep, "psnr").axes[0].containers}
    frequency = plots.frequency_response(sweep)
    lines = {
        line.get_label(): to_hex(line.get_color()) for line in frequency.axes[0].lines if line.get_label().startswith(("jpeg", "webp"))
    }
    assert lines["jpeg-q30"] == curves["jpeg"] and lines["webp-q30"] == curves["webp"]  # the first run of a family: its colour
    assert lines["jpeg-q70"] != lines["jpeg-q30"]  # further runs of a family: lighter shades of it
    distribution = plots.distribution(sweep, "psnr")
    boxes = [to_hex(patch.get_facecolor(), keep_alpha=False) for patch in distribution.axes[0].patches]
    names = [label.get_text() for label in distribution.axes[0].get_yticklabels()]  # one row per run, top down
    assert "identity" not in names and boxes[names.index("webp-q30")] == curves["webp"] != boxes[names.index("jpeg-q30")]
    assert frequency.axes[0].get_yscale() == "log"  # the synthetic patterns' empty bands give ratios over 20 decades
    for figure in (frequency, distribution):
        assert figure_layout_problems(figure) == []


def test_frequency_and_distribution_plots(sweep: Path, tmp_path: Path) -> None:
    run_cli("plot", "frequency", sweep, "--out", tmp_path / "freq.svg")
    svg = (tmp_path / "freq.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "cycles/pixel" in svg
    run_cli("plot", "distribution", sweep, "-m", "psnr", "--out", tmp_path / "psnr.pdf")
    assert (tmp_path / "psnr.pdf").read_bytes().startswith(b"%PDF")
    result = run_cli("plot", "distribution", sweep, "-m", "lpips-vgg", "--out", tmp_path / "x.png", check=2)
    assert "no per-image 'lpips-vgg' values" in result.stderr
    assert "unknown plot 'bars'" in run_cli("plot", "bars", sweep, "--out", tmp_path / "x.png", check=2).stderr
    assert "no record has 'cer'" in run_cli("plot", "text", sweep, "--out", tmp_path / "x.png", check=2).stderr


def test_codebook_plot_and_protocol_refusal(tmp_path: Path) -> None:
    from vtbench import plots

    run_cli("run", "-t", "resample-x4", "-t", "resample-x8", "-d", "samples", "--limit", "3", "--resolution", "64",
            "-m", "psnr,codebook-usage,codebook-perplexity", "--out", tmp_path / "codes")  # fmt: skip
    figure = plots.codebook_usage(tmp_path / "codes")
    assert figure_layout_problems(figure) == []
    used, perplexity = figure.axes[0].containers
    records = {p.stem.split("__")[0]: json.loads(p.read_text()) for p in (tmp_path / "codes").glob("*.json")}
    names = [tick.get_text() for tick in figure.axes[0].get_xticklabels()]
    assert [bar.get_height() for bar in used] == pytest.approx([records[n]["metrics"]["codebook-usage"]["value"] for n in names])
    assert [bar.get_height() for bar in perplexity] == pytest.approx(
        [records[n]["metrics"]["codebook-perplexity"]["value"] / 256 for n in names]
    )
    # records of the same dataset made at another resolution are not drawn together unless asked
    run_cli("run", "-t", "resample-x2", "-d", "samples", "--limit", "3", "--resolution", "32", "-m", "psnr", "--out", tmp_path / "small")
    both = [tmp_path / "codes", tmp_path / "small"]
    error = run_cli("plot", "distribution", *both, "-m", "psnr", "--out", tmp_path / "x.png", check=2).stderr
    assert "different settings (preprocessing" in error and "--allow-protocol-mismatch" in error
    run_cli("plot", "distribution", *both, "-m", "psnr", "--allow-protocol-mismatch", "--out", tmp_path / "x.png")


def test_the_layout_check_finds_crowded_ticks_and_a_legend_over_data() -> None:
    """The check the figure tests rely on fails where a reader would stumble."""
    from vtbench.plots import _pyplot

    figure, axes = _pyplot().subplots(figsize=(2, 2))
    axes.plot(range(20), range(20), label="a line through the middle")
    axes.set_xticks(range(20), [f"label {i}" for i in range(20)])
    axes.legend(loc="center")
    problems = figure_layout_problems(figure)
    assert any("x tick labels" in p for p in problems) and any("legend covers a point" in p for p in problems)
