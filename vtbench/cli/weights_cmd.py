"""``vtbench weights list | path | verify | fetch``: the pretrained files vtbench uses."""

from __future__ import annotations

import json

import typer

app = typer.Typer(help="Pretrained files: where they are, whether they verify, and fetching them.", no_args_is_help=True)


@app.command("list")
def list_weights(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Every known weights file: name, file, size, SHA-256, what uses it, and whether it is here
    (a file that is present but does not match its digest is BAD).

    Example:

      vtbench weights list --json
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from vtbench import weights

    rows = []
    for entry in weights.WEIGHTS.values():
        try:
            found, status, problem = str(weights.locate(entry.name, fetch=False).path), "here", None
        except weights.WeightsUnavailableError as exc:
            missing = "not on this machine" in str(exc)
            found, status, problem = None, "missing" if missing else "BAD", None if missing else str(exc)
        rows.append({"name": entry.name, "file": entry.filename, "size_mb": entry.size_mb, "sha256": entry.sha256,
                     "url": entry.url, "used_by": entry.used_by, "path": found, "status": status, "problem": problem})  # fmt: skip
    if as_json:
        typer.echo(json.dumps({"home": str(weights.home()), "offline": weights.offline(), "weights": rows}, indent=2))
        return
    table = Table(title=escape(f"vtbench weights (store: {weights.home() / 'weights'})"))
    for column in ("name", "file", "MB", "used by", "here"):
        table.add_column(column)
    for row in rows:
        here = (
            escape(row["path"])
            if row["path"]
            else ("[red]missing[/red]" if row["status"] == "missing" else f"[red]BAD[/red]: {escape(row['problem'])}")
        )
        table.add_row(escape(row["name"]), escape(row["file"]), f"{row['size_mb']:.1f}", escape(row["used_by"]), here)
    Console().print(table)


@app.command("path")
def path(name: str = typer.Argument(..., help="Weights name (see `vtbench weights list`).")) -> None:
    """Print the path of a weights file (exit 2 with the fix if it is missing).

    Example:

      vtbench weights path inception-v3-compat
    """
    from vtbench import weights

    typer.echo(str(weights.locate(name, fetch=False).path))


@app.command("verify")
def verify() -> None:
    """Hash every weights file that is present; exit 1 if any present file does not match its published digest.

    Files whose source publishes no digest are listed as ``unknown``: their hash is recorded, not checked.

    Example:

      vtbench weights verify
    """
    from vtbench import weights

    bad = 0
    for entry in weights.WEIGHTS.values():
        try:
            located = weights.locate(entry.name, fetch=False)
            if entry.sha256:
                typer.echo(f"ok       {entry.name}: {located.path} (sha256 {located.sha256[:16]}... matches the published digest)")
            else:
                typer.echo(f"unknown  {entry.name}: {located.path}: no published digest, recorded hash only ({located.sha256[:16]}...)")
        except weights.WeightsUnavailableError as exc:
            missing = "not on this machine" in str(exc)
            bad += 0 if missing else 1
            typer.echo(f"{'missing' if missing else 'BAD':8} {entry.name}: {exc}")
    raise typer.Exit(1 if bad else 0)


@app.command("fetch")
def fetch(name: str = typer.Argument(..., help="Weights name (see `vtbench weights list`).")) -> None:
    """Download a weights file into the store, checking its hash (refused when offline).

    Example:

      vtbench weights fetch inception-v3-compat
    """
    from vtbench import weights

    located = weights.locate(name, fetch=True)
    typer.echo(f"{name}: {located.path}")
