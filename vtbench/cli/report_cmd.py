"""``vtbench report RESULTS... --out report.html``: one self-contained HTML report."""

from __future__ import annotations

from pathlib import Path

import typer


def report(
    results: list[Path] = typer.Argument(..., help="Record files or folders of records."),
    out: Path = typer.Option(..., "--out", "-o", help="The HTML file to write (self-contained: no network needed to view it)."),
    title: str = typer.Option("vtbench report", "--title", help="The page title."),
) -> None:
    """Write one HTML page: sortable leaderboard, figures, warnings, each run's protocol and environment.

    Example:

      vtbench report results/quickstart --out results/report.html
    """
    from vtbench.report import write_report

    typer.echo(f"wrote {write_report(results, out, title)}")
