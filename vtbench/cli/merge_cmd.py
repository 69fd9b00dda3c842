"""``vtbench merge SHARDS_DIR --out OUT``: join ``--shard K/N`` results into records."""

from __future__ import annotations

from pathlib import Path

import typer


def merge(
    shards: Path = typer.Argument(..., help="The --out folder the `vtbench run --shard K/N` jobs wrote to."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the merged run records."),
) -> None:
    """Combine every run's shards into the one record a single run would write.

    Missing or unfinished shards, or shards made with other settings, are refused by name.

    Example (a job array of 4):

      vtbench run recipes/quickstart.yaml --shard $K/4 --out shards/    # for K in 0..3

      vtbench merge shards/ --out results/quickstart
    """
    from vtbench.engine import merge_shards

    records = merge_shards(shards, out)
    for record in records:
        typer.echo(f"{record.run_name}: {record.samples.evaluated} images, {record.memory.processes} shards -> {out}/")
