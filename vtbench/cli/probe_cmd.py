"""``vtbench probe -t TOKENIZER -d DATASET``: the AR probe (a small causal transformer on the codes)."""

from __future__ import annotations

import os
from pathlib import Path

import typer


def probe(
    tokenizer: str = typer.Option(..., "--tokenizer", "-t", help="A discrete tokenizer (NAME or NAME:key=value)."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="A dataset name or image folder (NAME or NAME:key=value)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the probe record (TOKENIZER__DATASET.probe.json)."),
    recipe: str = typer.Option("tiny", "--recipe", help="tiny (CPU, minutes), small, or gpt-b (GPU)."),
    steps: int | None = typer.Option(None, "--steps", help="Training steps (default: the recipe's)."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the initialisation and the batches (default: the recipe's, 0)."),
    resolution: int | None = typer.Option(None, "--resolution", help="Evaluation side in pixels (default: the tokenizer's native)."),
    limit: int | None = typer.Option(None, "--limit", help="Use only the first N images."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    restart: bool = typer.Option(False, "--restart", help="Discard a partial probe of this run instead of resuming it."),
) -> None:
    """Encode a dataset once (ids cached by content), train a small causal transformer on the ids
    for a fixed recipe, and report the validation NLL in bits per token and per image.

    Example:

      vtbench probe -t resample-x8 -d samples --resolution 64 --recipe tiny --steps 200 --out results/probe
    """
    from vtbench.leaderboard import format_value
    from vtbench.probe import run_probe
    from vtbench.recipe import Component

    tok, data = Component.from_cli(tokenizer), Component.from_cli(dataset)
    record = run_probe(tok.name, data.name, out, recipe, steps, seed, device, restart, options=dict(tok.options),
                       dataset_options=dict(data.options), resolution=resolution, limit=limit)  # fmt: skip
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, rank 0 reports
        return
    tokens = record["tokens"]
    typer.echo(
        f"{record['run_name']}: validation NLL {format_value(record['validation_bits_per_token'])} bits/token "
        f"({format_value(record['validation_bits_per_image'])} bits/image; uniform {format_value(record['uniform_bits_per_token'])}), "
        f"{tokens['train_images']} train / {tokens['validation_images']} held-out images, {tokens['tokens_per_image']} tokens each, "
        f"{record['recipe']['steps']} steps at {format_value(record['steps_per_s'])} steps/s"
    )
    typer.echo(f"wrote {Path(out) / (record['run_name'] + '.probe.json')}")
