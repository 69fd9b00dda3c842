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
    from rich.markup import escape
    from rich.table import Table

    from vtbench.leaderboard import print_whole

    header = ["id", "runs", "mean", "worst", "worst run", "best", "best run"]
    cells = [[row.id, str(row.runs), format_value(row.mean), format_value(row.worst), row.worst_run, format_value(row.best), row.best_run]
             for row in table.itertuples()]  # fmt: skip
    listing = Table(title=escape(f"worst images by {metric} (mean over runs)"))
    for column in header:
        listing.add_column(column, justify="left" if column in ("id", "worst run", "best run") else "right")
    for row in cells:
        listing.add_row(*(escape(cell) for cell in row))
    print_whole(listing, header, cells)  # ids and run names whole, never cut to an ellipsis
