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
    reproduce_cmd,
    run_cmd,
    show_cmd,
    validate_cmd,
    weights_cmd,
    worst_cmd,
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
app.command("worst")(worst_cmd.worst)
app.command("reproduce")(reproduce_cmd.reproduce)
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
    """Console entry point: user errors print one clear line (no traceback) and exit 2. With
    ``--json``, a failure also prints one JSON object on stdout: ``{"error": ..., "exit": N}``."""
    if "--json" in sys.argv[1:]:
        _main_json()
        return
    from vtbench.errors import VtbenchError

    try:
        app()
    except VtbenchError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)


def _main_json() -> None:
    """:func:`main` for a script: the error line still goes to stderr, and a JSON error object
    to stdout unless the command already printed its own JSON document (``run``'s summary)."""
    import contextlib
    import io
    import json

    from vtbench.errors import VtbenchError

    stdout, stderr = io.StringIO(), io.StringIO()
    code, message = 0, ""
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            app()
    except VtbenchError as exc:
        code, message = 2, str(exc)
        stderr.write(f"error: {exc}\n")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        lines = stderr.getvalue().splitlines()
        panel = next((i for i, line in enumerate(lines) if line.startswith("╭─ Error")), None)
        if panel is not None:  # click's usage error, drawn by rich as a panel that may wrap
            body = [line.strip(" │") for line in lines[panel + 1 :] if not line.startswith("╰")]
            message = " ".join(line for line in body if line)
        else:
            message = next((line for line in reversed(lines) if line.strip()), f"exit {code}")
    finally:
        sys.stdout.write(stdout.getvalue())
        sys.stderr.write(stderr.getvalue())
    if code and not stdout.getvalue().strip():
        sys.stdout.write(json.dumps({"error": message.removeprefix("error: "), "exit": code}) + "\n")
    if code:
        sys.exit(code)
