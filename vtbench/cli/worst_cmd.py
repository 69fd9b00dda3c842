"""``vtbench worst RESULTS... -m METRIC``: the images every run finds hardest, as text."""

from __future__ import annotations

from pathlib import Path

import typer


def worst(
    paths: list[Path] = typer.Argument(..., help="Folders of run records or record files (their per-image CSVs beside them)."),
    metric: str = typer.Option("psnr", "--metric", "-m", help="The per-image metric that ranks the images (by its direction)."),
    k: int = typer.Option(10, "--k", "-k", min=1, help="How many images."),
    as_json: bool = typer.Option(False, "--json", help="Print the list as JSON."),
) -> None:
    """List the K images that are worst by a metric across runs (their mean over the runs),
    with the worst and best run for each: where to look first, without drawing anything.

    Examples:

      vtbench worst results/quickstart -m psnr -k 5

      vtbench worst runs/ -m lpips-alex --json
    """
    from vtbench.analysis import worst_images
    from vtbench.leaderboard import format_value

    table = worst_images(paths, metric, k)
    if as_json:
        from vtbench.io import to_json

        typer.echo(to_json({"metric": metric, "images": table.to_dict(orient="records")}), nl=False)
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    listing = Table(title=escape(f"worst images by {metric} (mean over runs)"))
    for column in ("id", "runs", "mean", "worst", "worst run", "best", "best run"):
        listing.add_column(column, justify="left" if column in ("id", "worst run", "best run") else "right")
    for row in table.itertuples():
        listing.add_row(escape(row.id), str(row.runs), format_value(row.mean), format_value(row.worst), escape(row.worst_run),
                        format_value(row.best), escape(row.best_run))  # fmt: skip
    console = Console()
    needed = 8 + sum(max([len(column), *(len(str(value)) for value in table[key])]) + 3
                     for column, key in (("id", "id"), ("worst run", "worst_run"), ("best run", "best_run"))) + 40  # fmt: skip
    Console(width=max(console.width, needed)).print(listing)  # ids and run names whole, never cut to an ellipsis
