"""``vtbench plot KIND RESULTS... --out FILE``: figures from run records."""

from __future__ import annotations

from pathlib import Path

import typer


def plot(
    kind: str = typer.Argument(..., help="rate-distortion, frequency, distribution, text or codebook."),
    results: list[Path] = typer.Argument(..., help="Record files or folders of records."),
    out: Path = typer.Option(..., "--out", "-o", help="The figure to write: .png, .svg or .pdf."),
    metric: str | None = typer.Option(
        None,
        "--metric",
        "-m",
        help="rate-distortion: the quality metric (psnr); distribution: the per-image metric (psnr); text: the text metric (cer).",
    ),
    rate: str = typer.Option("bpp", "--rate", help="rate-distortion x axis: bpp (bits per pixel) or tokens (tokens per image)."),
    allow_protocol_mismatch: bool = typer.Option(
        False, "--allow-protocol-mismatch", help="Draw records made under different protocols together."
    ),
) -> None:
    """Draw a figure from run records (colour-blind-safe, sized for a paper column).

    Examples:

      vtbench plot rate-distortion results/quickstart --out rd.svg

      vtbench plot distribution results/quickstart -m ssim --out ssim.png

      vtbench plot text runs/text -m cer --out cer.pdf
    """
    from vtbench import plots

    if kind not in plots.KINDS:
        from vtbench.errors import VtbenchError

        raise VtbenchError(f"unknown plot {kind!r}; choose from {', '.join(plots.KINDS)}")
    allow = allow_protocol_mismatch
    if kind == "rate-distortion":
        figure = plots.rate_distortion(results, metric or "psnr", rate, allow)
    elif kind == "frequency":
        figure = plots.frequency_response(results, allow)
    elif kind == "distribution":
        figure = plots.distribution(results, metric or "psnr", allow)
    elif kind == "text":
        figure = plots.text_errors(results, metric or "cer", allow)
    else:
        figure = plots.codebook_usage(results, allow)
    typer.echo(f"wrote {plots.save(figure, out)}")
