"""``vtbench plot KIND RESULTS... --out FILE``: figures from run records."""

from __future__ import annotations

from pathlib import Path

import typer


def plot(
    kind: str = typer.Argument(..., help="rate-distortion, frequency or distribution."),
    results: list[Path] = typer.Argument(..., help="Record files or folders of records."),
    out: Path = typer.Option(..., "--out", "-o", help="The figure to write: .png, .svg or .pdf."),
    metric: str = typer.Option("psnr", "--metric", "-m", help="The quality metric (rate-distortion) or per-image metric (distribution)."),
    rate: str = typer.Option("bits_per_pixel", "--rate", help="rate-distortion x axis: bits_per_pixel or tokens_per_image."),
) -> None:
    """Draw a figure from run records (colour-blind-safe, sized for a paper column).

    Examples:

      vtbench plot rate-distortion results/quickstart --out rd.svg

      vtbench plot distribution results/quickstart -m ssim --out ssim.png
    """
    from vtbench import plots

    if kind not in plots.KINDS:
        from vtbench.errors import VtbenchError

        raise VtbenchError(f"unknown plot {kind!r}; choose from {', '.join(plots.KINDS)}")
    if kind == "rate-distortion":
        figure = plots.rate_distortion(results, metric, rate)
    elif kind == "frequency":
        figure = plots.frequency_response(results)
    else:
        figure = plots.distribution(results, metric)
    typer.echo(f"wrote {plots.save(figure, out)}")
