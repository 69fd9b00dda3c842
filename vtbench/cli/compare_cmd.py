"""``vtbench compare BASELINE CANDIDATE``: a CI gate that exits 1 on a regression."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from vtbench.compare import PairedTest


def compare(
    baseline: Path = typer.Argument(..., help="Baseline record (.json) or folder of records."),
    candidate: Path = typer.Argument(..., help="Candidate record (.json) or folder of records."),
    tolerance: list[str] = typer.Option([], "--tolerance", help="METRIC=VALUE, absolute (psnr=0.1) or relative (fid=2%). Repeatable."),
    default_tolerance: str = typer.Option(
        "0", "--default-tolerance", help="Tolerance for metrics not named by --tolerance (never below the metric's noise floor)."
    ),
    allow_protocol_mismatch: bool = typer.Option(
        False, "--allow-protocol-mismatch", help="Compare records made under different protocols."
    ),
    require_significance: bool = typer.Option(
        False,
        "--require-significance",
        help="A change past the tolerance counts only if the paired test on the per-image rows rejects no change.",
    ),
    alpha: float = typer.Option(0.05, "--alpha", help="Significance level of the paired tests (and 1 - the interval's coverage)."),
    test: str = typer.Option(
        "bootstrap", "--test", help="The test that decides with --require-significance: bootstrap (of the mean) or wilcoxon."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document (every metric's diff and status) instead of the table."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing; the exit code says whether anything regressed."),
) -> None:
    """Print a diff table; exit 1 if any metric regressed past its tolerance (or went missing).

    Example (a CI gate against committed results):

      vtbench compare results/quickstart new-results/ --tolerance psnr=0.05 --tolerance fid=2%

      vtbench compare old/ new/ --tolerance psnr=0.05 --require-significance --alpha 0.01
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from vtbench.compare import compare_runs, parse_tolerances
    from vtbench.leaderboard import format_value

    tolerances = parse_tolerances(tolerance)
    parse_tolerances([f"default={default_tolerance}"])
    result = compare_runs(baseline, candidate, tolerances, default_tolerance, allow_protocol_mismatch, alpha, require_significance, test)
    if as_json or quiet:
        if as_json:
            from vtbench.io import to_json

            typer.echo(to_json({"baseline": str(baseline), "candidate": str(candidate), **result.to_dict()}), nl=False)
        raise typer.Exit(1 if result.regressed else 0)
    console = Console()
    if console.width < 160:  # numbers are never squeezed into ellipses
        console = Console(width=160)
    for note in result.protocol_notes:
        console.print(f"[yellow]warning:[/yellow] {escape(note)}")
    table = Table(title=escape(f"{baseline} -> {candidate}"))
    tested = any(diff.test is not None for diff in result.diffs)
    level = f"{100 * (1 - alpha):.3g}%"
    columns = ("run", "metric", "baseline", "candidate", "delta", *((f"{level} interval of delta", f"p ({test})") if tested else ()),
               "tolerance", "status")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column in ("run", "metric", "tolerance", "status") else "right")
    colours = {"regressed": "red", "missing": "red", "improved": "green", "noise": "yellow"}
    for diff in result.diffs:
        arrow = "" if diff.higher_is_better is None else (" ↑" if diff.higher_is_better else " ↓")
        status = f"[{colours[diff.status]}]{diff.status}[/]" if diff.status in colours else diff.status
        table.add_row(
            escape(diff.run),
            escape(diff.metric) + arrow,
            format_value(diff.baseline),
            format_value(diff.candidate),
            format_value(diff.delta),
            *(_test_cells(diff.test) if tested else ()),
            diff.tolerance if diff.tolerance not in ("", "0") else ("floor" if diff.status not in ("new",) else ""),
            status,
        )
    console.print(table)
    console.print("floor: no tolerance given, so the metric's noise floor applies (1e-12 relative; 1e-6 for feature-space metrics)")
    if tested:
        console.print(f"interval and p: paired tests on the per-image values (n images both runs scored; {test} p shown)")
    if require_significance:
        console.print(f"noise: past the tolerance, but not a significant paired difference at alpha = {alpha}")
    if result.regressed:
        console.print("[red]REGRESSION[/red]: at least one metric got worse than its tolerance allows")
        raise typer.Exit(1)
    console.print("no regression")


def _test_cells(test: PairedTest | None) -> tuple[str, str]:
    from vtbench.leaderboard import format_value

    if test is None:
        return ("", "")
    low, high = test.interval
    return (f"[{format_value(low)}, {format_value(high)}]", f"{test.p_value:.3g} (n={test.pairs})")
