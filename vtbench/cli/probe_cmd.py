"""``vtbench probe -t TOKENIZER -d DATASET``: the AR probe (a small causal transformer on the codes)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from vtbench.cli.options import settings_options
from vtbench.settings import ProbeConfig


@settings_options("probe", ProbeConfig)
def probe(
    tokenizer: str = typer.Option(..., "--tokenizer", "-t", help="A discrete tokenizer (NAME or NAME:key=value)."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="A dataset name or image folder (NAME or NAME:key=value)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the probe record (TOKENIZER__DATASET.probe.json)."),
    restart: bool = typer.Option(False, "--restart", help="Discard a partial probe of this run instead of resuming it."),
    settings: dict[str, Any] | None = None,
) -> None:
    """Encode a dataset once (ids cached by content), train a small causal transformer on the ids
    for a fixed recipe, and report the validation NLL in bits per token and per image.

    Example:

      vtbench probe -t resample-x8 -d samples --resolution 64 --recipe tiny --steps 200 --out results/probe
    """
    from vtbench.leaderboard import format_value
    from vtbench.probe import run_probe
    from vtbench.recipe import Component
    from vtbench.settings import SettingsError

    tok, data = Component.from_cli(tokenizer), Component.from_cli(dataset)
    given = settings or {}
    try:
        config = ProbeConfig(tokenizer=tok.name, tokenizer_options=dict(tok.options), dataset=data.name,
                             dataset_options=dict(data.options), **given)  # fmt: skip
    except SettingsError as exc:
        raise SettingsError(*(f"command line: {problem}" for problem in exc.problems)) from None
    record = run_probe(config, out, restart)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, rank 0 reports
        return
    tokens = record.tokens
    typer.echo(
        f"{record.run_name}: validation NLL {format_value(record.validation_bits_per_token)} bits/token "
        f"({format_value(record.validation_bits_per_image)} bits/image; uniform {format_value(record.uniform_bits_per_token)}), "
        f"{tokens['train_images']} train / {tokens['validation_images']} held-out images, {tokens['tokens_per_image']} tokens each, "
        f"{record.steps} steps at {format_value(record.steps_per_s)} steps/s"
    )
    typer.echo(f"wrote {Path(out) / (record.run_name + '.probe.json')}")
