"""``vtbench leaderboard RESULTS...``: every record under the given folders in one ranked table."""

from __future__ import annotations

from pathlib import Path

import typer


def leaderboard(
    paths: list[Path] = typer.Argument(..., help="Folders of run records (searched recursively) or record files."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, md, csv, json, html or latex (booktabs, best bold)."),
    as_json: bool = typer.Option(False, "--json", help="The same as --format json."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="With --out: no 'wrote' line."),
    rank_by: str | None = typer.Option(None, "--rank-by", "-r", help="Metric to rank by (default: the first quality metric)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write to this file instead of standard output."),
    intervals: bool = typer.Option(False, "--ci", help="Show 95% bootstrap intervals beside per-image metrics."),
    allow_protocol_mismatch: bool = typer.Option(False, "--allow-protocol-mismatch", help="Rank records made under different protocols."),
    bd_baseline: str | None = typer.Option(
        None,
        "--bd-baseline",
        help="A tokenizer family (e.g. jpeg): add each family's BD-rate and BD-quality against it (4+ points per curve).",
    ),
    bd_metric: str | None = typer.Option(None, "--bd-metric", help="The quality metric of the Bjøntegaard deltas (default: --rank-by)."),
) -> None:
    """Turn run records into one comparative table, ranked within each dataset.

    Examples:

      vtbench leaderboard results/quickstart

      vtbench leaderboard results/ --format md --rank-by lpips-vgg --out leaderboard.md

      vtbench leaderboard results/quickstart --bd-baseline jpeg --format latex

      vtbench leaderboard runs/jpeg runs/mytok --format md
    """
    if as_json:
        fmt = "json"
    from vtbench.io import write_output
    from vtbench.leaderboard import build_leaderboard as build
    from vtbench.leaderboard import print_rich_table
    from vtbench.schema import find_records

    records = [record for path in paths for record in find_records(path)]
    board = build(records, rank_by=rank_by, allow_protocol_mismatch=allow_protocol_mismatch, bd_baseline=bd_baseline,
                  bd_metric=bd_metric)  # fmt: skip
    board.show_intervals = intervals
    if fmt == "table" and out is None:
        print_rich_table(board)
        return
    text = board.render(fmt)
    if out is None:
        typer.echo(text, nl=False)
    else:
        write_output(out, text.encode())
        if not quiet:
            typer.echo(f"wrote {out}")
