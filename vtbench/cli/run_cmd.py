"""``vtbench run [RECIPE]``: evaluate tokenizers over datasets, with or without a recipe."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import typer

from vtbench.cli.options import settings_options
from vtbench.declaration import RUN_PANEL
from vtbench.schema import RunRecord, record_path
from vtbench.settings import GENERATION_PANEL, Settings


@settings_options("run", Settings)
def run(
    recipe: Path | None = typer.Argument(None, help="Recipe YAML (see recipes/). Without one, give --tokenizer and --dataset."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the run records; written exactly there."),
    tokenizer: list[str] = typer.Option(
        [],
        "--tokenizer",
        "-t",
        help="Tokenizer name, NAME:key=value,... for options, label=NAME to name the run (repeatable). `vtbench list tokenizers`.",
        rich_help_panel=RUN_PANEL,
    ),
    weights: Path | None = typer.Option(
        None,
        "--weights",
        help="A checkpoint file or model folder for the tokenizer(s), instead of the preset's.",
        rich_help_panel=RUN_PANEL,
    ),
    dataset: list[str] = typer.Option(
        [], "--dataset", "-d", help="Dataset name or image folder; NAME:key=value,... for options (repeatable).", rich_help_panel=RUN_PANEL
    ),
    generator: list[str] = typer.Option(
        [],
        "--generator",
        "-g",
        help="Generator name, or a folder / .npz of samples (repeatable): a generation run.",
        rich_help_panel=GENERATION_PANEL,
    ),  # fmt: skip
    reference: str | None = typer.Option(
        None, "--reference", help="Reference set (folder, .npz arr_0, dataset name) or mu/sigma .npz.", rich_help_panel=GENERATION_PANEL
    ),
    offline: bool = typer.Option(False, "--offline", help="Never download weights (also: VTBENCH_OFFLINE=1).", rich_help_panel=RUN_PANEL),
    restart: bool = typer.Option(False, "--restart", help="Discard partial progress and redo finished runs.", rich_help_panel=RUN_PANEL),
    rank_by: str | None = typer.Option(None, "--rank-by", help="Metric to rank the final table by."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON summary (runs, metric values, record files) instead of tables."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or table; errors only."),
    settings: dict[str, Any] | None = None,
) -> None:
    """Evaluate tokenizers over datasets (or generators against a reference); writes one record per run into --out.

    Examples:

      vtbench run recipes/quickstart.yaml --out results/quickstart

      vtbench run -t jpeg-q50 -t jpeg:quality=75,label=jpeg-q75 -d samples --out results/jpeg

      torchrun --nproc-per-node 2 -m vtbench run -t jpeg-q50 -d samples --out results/ddp
    """
    if offline:
        os.environ["VTBENCH_OFFLINE"] = "1"
    plan = command_line_plan(recipe, tokenizer, weights, dataset, generator, reference)
    _run_plan(plan, settings or {}, out, restart, rank_by, as_json, quiet)


def command_line_plan(recipe: Path | None, tokenizer: list[str], weights: Path | None, dataset: list[str], generator: list[str],
                      reference: str | None) -> Any:  # fmt: skip
    """The recipe a command line describes: a recipe file with its components replaced by
    ``-t``/``-d``/``-g``/``--reference`` where given, or the components alone."""
    from vtbench.errors import RecipeError
    from vtbench.recipe import Component, Recipe, load_recipe

    if recipe is not None:
        plan = load_recipe(recipe)
    elif (tokenizer and dataset) or generator:
        plan = Recipe(name="command-line", source="command line")
    else:
        raise RecipeError(
            "give a recipe file, or both --tokenizer and --dataset, or --generator and --reference (see `vtbench run --help`)"
        )
    if tokenizer:
        plan.tokenizers = [Component.from_cli(name) for name in tokenizer]
    if weights is not None:
        if len(plan.tokenizers) != 1:
            raise RecipeError("--weights is for one tokenizer; for several, give each its own: -t NAME:weights=PATH")
        plan.tokenizers[0].options["weights"] = str(weights)
    if dataset:
        plan.datasets = [Component.from_cli(name) for name in dataset]
    if generator:
        if reference is None:
            raise RecipeError("a generation run (--generator) needs --reference: a folder, an .npz, a dataset name or mu/sigma statistics")
        plan.generators = [Component.from_cli(name) for name in generator]
        plan.references = [Component(reference)]
        if not tokenizer and recipe is None:
            plan.tokenizers, plan.datasets = [], []
    return plan


def summary(records: list[RunRecord], out: Path, skipped: list[str], failed: dict[str, str]) -> dict[str, Any]:
    """What ``vtbench run --json`` prints: per run, its metric values, counts and record file."""
    runs = [
        {"run_name": r.run_name, "task": r.task, "record": str(record_path(out, r.run_name)),
         "metrics": {name: entry.value for name, entry in r.metrics.items()}, "evaluated": r.samples.evaluated, "failed": r.samples.failed}
        for r in records
    ]  # fmt: skip
    return {"out": str(out), "runs": runs, "skipped": skipped, "failed": failed}


def _run_plan(plan: Any, overrides: dict[str, Any], out: Path, restart: bool, rank_by: str | None, as_json: bool = False,
              quiet: bool = False) -> None:  # fmt: skip
    from rich.console import Console
    from rich.markup import escape

    from vtbench.engine.distributed import Ranks
    from vtbench.errors import VtbenchError
    from vtbench.leaderboard import build_leaderboard, print_rich_table
    from vtbench.progress import for_this_output
    from vtbench.recipe import run_recipe

    console = Console(stderr=False)
    main_rank = Ranks.from_environment(overrides.get("device") or plan.device).is_main
    say = console.print if main_rank and not (as_json or quiet) else (lambda *a, **k: None)
    show_progress = main_rank and not (as_json or quiet)

    def skipped(name: str) -> None:
        say(f"{escape(name)}: already done (same settings); --restart to redo it")

    try:
        display = for_this_output() if show_progress else contextlib.nullcontext()
        with display as progress:
            outcome = run_recipe(plan, out, progress=progress, restart=restart, overrides=overrides, on_skip=skipped)
    except KeyboardInterrupt:
        say("[yellow]interrupted[/yellow]: progress up to the last complete batch is kept; run the same command again to resume")
        raise typer.Exit(130) from None
    if not main_rank:
        return
    records = outcome.records
    for record in records:
        name = escape(record.run_name)
        for note in record.dataset.warnings:
            say(f"[yellow]{name}: {escape(note)}[/yellow]")
        for metric, entry in record.metrics.items():
            for note in entry.warnings:
                say(f"[yellow]{name}: {escape(metric)}: {escape(note)}[/yellow]")
        samples = record.samples
        if samples.failed:
            say(
                f"[yellow]{name}: {samples.failed} of {samples.requested} images failed[/yellow] (see {escape(str(record.per_image_file))})"
            )
            for failure in samples.failures[:5]:
                say(f"  {escape(failure.id)}: {escape(failure.stage)}: {escape(failure.error)}")
    shard = overrides.get("shard")
    if shard is not None:
        say(f"shard {shard[0]}/{shard[1]} of {len(plan.runs(overrides))} run(s) written to {escape(str(out))}/; "
            f"join the shards with `vtbench merge {escape(str(out))} --out DIR`")  # fmt: skip
    elif as_json:
        from vtbench.io import to_json

        typer.echo(to_json(summary(records, out, outcome.skipped, outcome.failed)), nl=False)
    elif records and not quiet:
        try:
            board = build_leaderboard(records, rank_by=rank_by)
        except VtbenchError as exc:  # these runs were asked for together: show them, but say why they may not compare
            say(f"[yellow]warning:[/yellow] {escape(str(exc))}")
            board = build_leaderboard(records, rank_by=rank_by, allow_protocol_mismatch=True)
        print_rich_table(board, title=f"{plan.name}: ranked by {board.rank_by}")
        say(f"{len(records)} record(s) in {escape(str(out))}/")
    for name, error in outcome.failed.items():
        typer.secho(f"error: run {name} failed: {error}", fg=typer.colors.RED, err=True)
    empty = [r.run_name for r in records if r.samples.evaluated == 0]
    if empty:
        say(f"[red]no image could be evaluated in: {escape(', '.join(empty))}[/red]")
    if outcome.failed or empty:
        raise typer.Exit(1)
