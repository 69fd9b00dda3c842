"""The ``vtbench`` command: a thin Typer layer over the library API.

One module per subcommand; heavy imports happen inside command bodies so ``--help`` is fast.
"""

from __future__ import annotations

import sys

import typer

from vtbench.cli import (
    compare_cmd,
    data_cmd,
    gallery_cmd,
    leaderboard_cmd,
    list_cmd,
    merge_cmd,
    plot_cmd,
    probe_cmd,
    reference_cmd,
    report_cmd,
    run_cmd,
    show_cmd,
    validate_cmd,
    weights_cmd,
)  # fmt: skip

app = typer.Typer(
    name="vtbench",
    help="Benchmark visual tokenizers (VQ/LFQ/BSQ/FSQ, VAEs, codecs) and the generators built on them.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
app.command("run")(run_cmd.run)
app.command("list")(list_cmd.list_registered)
app.command("show")(show_cmd.show)
app.command("leaderboard")(leaderboard_cmd.leaderboard)
app.command("compare")(compare_cmd.compare)
app.command("validate")(validate_cmd.validate)
app.command("merge")(merge_cmd.merge)
app.command("plot")(plot_cmd.plot)
app.command("report")(report_cmd.report)
app.command("gallery")(gallery_cmd.gallery)
app.command("probe")(probe_cmd.probe)
app.command("reference-stats")(reference_cmd.reference_stats)
app.add_typer(weights_cmd.app, name="weights")
app.add_typer(data_cmd.app, name="data")


@app.callback(invoke_without_command=True)
def _root(
    context: typer.Context,
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
) -> None:
    if version:
        from vtbench import __version__

        typer.echo(f"vtbench {__version__}")
        raise typer.Exit()
    if context.invoked_subcommand is None:
        typer.echo(context.get_help())
        raise typer.Exit()


def main() -> None:
    """Console entry point: user errors print one clear line (no traceback) and exit 2."""
    from vtbench.errors import VtbenchError

    try:
        app()
    except VtbenchError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)
