"""``vtbench report RESULTS... --out report.html``: one self-contained HTML report."""

from __future__ import annotations

from pathlib import Path

import typer


def report(
    results: list[Path] = typer.Argument(..., help="Record files or folders of records."),
    out: Path = typer.Option(..., "--out", "-o", help="The HTML file to write (self-contained: no network needed to view it)."),
    title: str = typer.Option("vtbench report", "--title", help="The page title."),
    allow_protocol_mismatch: bool = typer.Option(False, "--allow-protocol-mismatch", help="Report records made under different protocols."),
    bd_baseline: str | None = typer.Option(
        None, "--bd-baseline", help="Family the Bjøntegaard deltas are against (default: jpeg, if present)."
    ),
    gallery_metric: str | None = typer.Option(
        None, "--gallery-metric", help="The per-image metric that picks each run's worst images (default: psnr, where the runs have it)."
    ),
    gallery_k: int = typer.Option(2, "--gallery-k", help="Worst images shown per run (0: no gallery)."),
) -> None:
    """Write one HTML page: sortable leaderboard, BD-rates, figures, worst-case gallery, warnings, each run's protocol and environment.

    Example:

      vtbench report results/quickstart --out results/report.html
    """
    from vtbench.report import write_report

    written = write_report(results, out, title, allow_protocol_mismatch=allow_protocol_mismatch, bd_baseline=bd_baseline,
                           gallery_metric=gallery_metric, gallery_k=gallery_k)  # fmt: skip
    typer.echo(f"wrote {written}")
