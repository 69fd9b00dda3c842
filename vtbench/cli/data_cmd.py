"""``vtbench data make text|detail``: write a built-in suite to a folder."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Built-in evaluation suites, generated deterministically offline.", no_args_is_help=True)


@app.command("make")
def make(
    suite: str = typer.Argument(..., help="text (5 scripts x 6 font sizes, transcripts) or detail (gratings, zone plate, ...)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Folder to write (default: the cache the `text`/`detail` datasets use)."),
) -> None:
    """Generate a suite; evaluate it with `--dataset text` / `--dataset detail`, or, written with
    --out, as that folder (`--dataset data/text`).

    Examples:

      vtbench data make text --out data/text

      vtbench run -t jpeg-q50 -d data/text -m cer --out results/text
    """
    from vtbench.errors import VtbenchError
    from vtbench.suites import SUITES, make_suite

    if suite not in SUITES:
        raise VtbenchError(f"unknown suite {suite!r}; known: {', '.join(SUITES)}")
    folder = make_suite(suite, out)
    count = sum(1 for p in folder.rglob("*.png"))
    typer.echo(f"{suite} suite: {count} images in {folder}")
