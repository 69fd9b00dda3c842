"""``vtbench run [RECIPE]``: evaluate tokenizers over datasets, with or without a recipe."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import typer

_RUN = "Run settings (override the recipe)"
_PREP = "Preprocessing"
_GEN = "Generation (gFID and co.)"


def run(
    recipe: Path | None = typer.Argument(None, help="Recipe YAML (see recipes/). Without one, give --tokenizer and --dataset."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the run records; written exactly there."),
    tokenizer: list[str] = typer.Option(
        [],
        "--tokenizer",
        "-t",
        help="Tokenizer name, NAME:key=value,... for options, label=NAME to name the run (repeatable). `vtbench list tokenizers`.",
        rich_help_panel=_RUN,
    ),
    weights: Path | None = typer.Option(
        None, "--weights", help="A checkpoint file or model folder for the tokenizer(s), instead of the preset's.", rich_help_panel=_RUN
    ),
    dataset: list[str] = typer.Option(
        [], "--dataset", "-d", help="Dataset name or image folder; NAME:key=value,... for options (repeatable).", rich_help_panel=_RUN
    ),
    protocol: str | None = typer.Option(
        None, "--protocol", "-p", help="A paper protocol's settings as the starting point (`vtbench list protocols`).", rich_help_panel=_RUN
    ),
    stored_statistics: bool | None = typer.Option(
        None,
        "--stored-statistics/--computed-statistics",
        help="Generation against an ADM batch: FID/sFID from its stored mu/sigma (default, as the ADM evaluator) or from its images.",
        rich_help_panel=_GEN,
    ),  # fmt: skip
    metric: list[str] = typer.Option(
        [], "--metric", "-m", help="Metric, repeatable or comma-separated (-m psnr,ssim). `vtbench list metrics`.", rich_help_panel=_RUN
    ),
    generator: list[str] = typer.Option(
        [], "--generator", "-g", help="Generator name, or a folder / .npz of samples (repeatable): a generation run.", rich_help_panel=_GEN
    ),
    reference: str | None = typer.Option(
        None, "--reference", help="Reference set (folder, .npz arr_0, dataset name) or mu/sigma .npz.", rich_help_panel=_GEN
    ),
    expected_samples: int | None = typer.Option(
        None, "--expected-samples", help="Fail unless the generator yields exactly this many samples.", rich_help_panel=_GEN
    ),
    limit: int | None = typer.Option(None, "--limit", help="Evaluate only the first N images of each dataset.", rich_help_panel=_RUN),
    batch_size: int | None = typer.Option(None, "--batch-size", "-b", help="Images per batch (default 8).", rich_help_panel=_RUN),
    workers: int | None = typer.Option(None, "--workers", help="DataLoader worker processes.", rich_help_panel=_RUN),
    device: str | None = typer.Option(None, "--device", help="auto, cpu, cuda, cuda:1 ...", rich_help_panel=_RUN),
    strict: bool | None = typer.Option(
        None, "--strict/--no-strict", help="Fail on the first bad image instead of recording it.", rich_help_panel=_RUN
    ),
    save_reconstructions: bool | None = typer.Option(
        None,
        "--save-reconstructions/--no-save-reconstructions",
        help="Write each reconstruction as OUT/RUN.recon/ID.png; a generation run's samples as OUT/RUN.samples/N.png and "
        "OUT/RUN.samples.npz (ADM layout).",
        rich_help_panel=_RUN,
    ),  # fmt: skip
    checkpoint_seconds: float | None = typer.Option(
        None, "--checkpoint-seconds", help="Least time between checkpoints (default 30).", rich_help_panel=_RUN
    ),
    checkpoint_every: int | None = typer.Option(
        None, "--checkpoint-every", help="Least batches between checkpoints.", rich_help_panel=_RUN
    ),
    skip_unavailable: bool | None = typer.Option(
        None,
        "--skip-unavailable/--no-skip-unavailable",
        help="Record metrics whose weights are missing as not computed.",
        rich_help_panel=_RUN,
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor write the reference feature cache.", rich_help_panel=_RUN),
    ocr_engine: str | None = typer.Option(
        None, "--ocr-engine", help="OCR engine for text metrics (default tesseract). `vtbench list ocr`.", rich_help_panel=_RUN
    ),
    compile_tokenizer: bool | None = typer.Option(
        None, "--compile/--no-compile", help="torch.compile network tokenizers (recorded in the record).", rich_help_panel=_RUN
    ),
    shard: str | None = typer.Option(
        None,
        "--shard",
        help="K/N: evaluate only the K-th (0-based) of N slices, for job arrays; `vtbench merge` joins them.",
        rich_help_panel=_RUN,
    ),  # fmt: skip
    offline: bool = typer.Option(False, "--offline", help="Never download weights (also: VTBENCH_OFFLINE=1).", rich_help_panel=_RUN),
    restart: bool = typer.Option(False, "--restart", help="Discard partial progress and redo finished runs.", rich_help_panel=_RUN),
    resolution: int | None = typer.Option(
        None, "--resolution", help="Evaluation side in pixels (default: tokenizer native, else image size).", rich_help_panel=_PREP
    ),
    resize_mode: str | None = typer.Option(
        None,
        "--resize-mode",
        help="center-crop, adm-center-crop, resize, pad (aspect kept, padded for the tokenizer), tile (own size, "
        "tokenizer-sized tiles) or none.",
        rich_help_panel=_PREP,
    ),
    resize_filter: str | None = typer.Option(None, "--filter", help="bicubic, lanczos, bilinear, box or nearest.", rich_help_panel=_PREP),
    rank_by: str | None = typer.Option(None, "--rank-by", help="Metric to rank the final table by."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON summary (runs, metric values, record files) instead of tables."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or table; errors only."),
) -> None:
    """Evaluate tokenizers over datasets (or generators against a reference); writes one record per run into --out.

    Examples:

      vtbench run recipes/quickstart.yaml --out results/quickstart

      vtbench run -t jpeg-q50 -t jpeg:quality=75,label=jpeg-q75 -d samples --out results/jpeg

      torchrun --nproc-per-node 2 -m vtbench run -t jpeg-q50 -d samples --out results/ddp
    """
    from dataclasses import asdict, replace

    from vtbench.engine.settings import SettingsError, parse_shard
    from vtbench.errors import RecipeError
    from vtbench.recipe import Component, Recipe, load_recipe

    if offline:
        os.environ["VTBENCH_OFFLINE"] = "1"
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
        if expected_samples is not None:
            for component in plan.generators:
                component.options["expected_samples"] = expected_samples
        if not tokenizer and recipe is None:
            plan.tokenizers, plan.datasets = [], []
    metric_names, metric_options = _metric_arguments(metric)
    if protocol is not None:
        from vtbench import protocols

        task = "generation" if plan.generators else "reconstruction"
        settings = protocols.apply(protocol, task, {})
        prep_defaults, expected_default = settings.pop("preprocessing", {}), settings.pop("expected_samples", None)
        stored_default = settings.pop("stored_statistics", None)
        plan = replace(plan, **settings, preprocessing=type(plan.preprocessing)(**{**asdict(plan.preprocessing), **prep_defaults}))
        if stored_default is not None:
            plan = replace(plan, stored_statistics=stored_default)
        if expected_default is not None:
            for component in plan.generators:
                component.options.setdefault("expected_samples", expected_default)
    if stored_statistics is not None:
        plan = replace(plan, stored_statistics=stored_statistics)
    overrides = {
        "metrics": metric_names or None,
        "metric_options": {**plan.metric_options, **metric_options} if metric_options else None,
        "limit": limit,
        "batch_size": batch_size,
        "num_workers": workers,
        "device": device,
        "strict": strict,
        "save_reconstructions": save_reconstructions,
        "checkpoint_every": checkpoint_every,
        "checkpoint_seconds": checkpoint_seconds,
        "skip_unavailable": skip_unavailable,
        "use_cache": False if no_cache else None,
        "ocr_engine": ocr_engine,
        "compile": compile_tokenizer,
        "shard": parse_shard(shard) if shard else None,
    }
    prep = {k: v for k, v in {"resolution": resolution, "mode": resize_mode, "filter": resize_filter}.items() if v is not None}
    if generator and recipe is None and protocol is None and "mode" not in prep:
        prep["mode"] = "center-crop" if resolution else "none"
    try:
        if prep:
            overrides["preprocessing"] = type(plan.preprocessing)(**{**asdict(plan.preprocessing), **prep})
        plan = replace(plan, **{k: v for k, v in overrides.items() if v is not None})
    except (SettingsError, ValueError) as exc:
        raise RecipeError(f"command line: {exc}") from None
    _run_plan(plan, out, restart, rank_by, as_json, quiet)


def _metric_arguments(values: list[str]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """``-m`` values -> metric names and options: ``psnr,ssim`` (comma lists) or
    ``isc:split_size=5000`` (options as for tokenizers; one metric per value then)."""
    from vtbench.recipe import Component

    names: list[str] = []
    options: dict[str, dict[str, Any]] = {}
    for value in values:
        if ":" in value and "=" in value.partition(":")[2]:
            component = Component.from_cli(value)
            names.append(component.name)
            options[component.name] = component.options
        else:
            names += [name.strip() for name in value.split(",") if name.strip()]
    return names, options


def summary(records: list[dict[str, Any]], out: Path, skipped: list[str], failed: dict[str, str]) -> dict[str, Any]:
    """What ``vtbench run --json`` prints: per run, its metric values, counts and record file."""
    runs = [
        {"run_name": r["run_name"], "task": r.get("task"), "record": str(out / f"{r['run_name']}.json"),
         "metrics": {name: entry.get("value") for name, entry in r["metrics"].items()},
         "evaluated": r["samples"]["evaluated"], "failed": r["samples"]["failed"]}
        for r in records
    ]  # fmt: skip
    return {"out": str(out), "runs": runs, "skipped": skipped, "failed": failed}


def _run_plan(plan: Any, out: Path, restart: bool, rank_by: str | None, as_json: bool = False, quiet: bool = False) -> None:
    from rich.console import Console

    from vtbench.engine.distributed import Ranks
    from vtbench.errors import VtbenchError
    from vtbench.leaderboard import build_leaderboard, print_rich_table
    from vtbench.progress import RichProgress
    from vtbench.recipe import run_recipe

    console = Console(stderr=False)
    main_rank = Ranks.from_environment(plan.device).is_main
    say = console.print if main_rank and not (as_json or quiet) else (lambda *a, **k: None)
    show_progress = main_rank and not (as_json or quiet)
    try:
        with RichProgress() if show_progress else contextlib.nullcontext() as progress:
            outcome = run_recipe(plan, out, progress=progress, restart=restart,
                                 on_skip=lambda name: say(f"{name}: already done (same settings); --restart to redo it"))  # fmt: skip
    except KeyboardInterrupt:
        say("[yellow]interrupted[/yellow]: progress up to the last complete batch is kept; run the same command again to resume")
        raise typer.Exit(130) from None
    if not main_rank:
        return
    records = outcome.records
    for record in records:
        for note in record["dataset"].get("warnings", []):
            say(f"[yellow]{record['run_name']}: {note}[/yellow]")
        for name, entry in record["metrics"].items():
            for note in entry.get("warnings", []):
                say(f"[yellow]{record['run_name']}: {name}: {note}[/yellow]")
        samples = record["samples"]
        if samples["failed"]:
            say(f"[yellow]{record['run_name']}: {samples['failed']} of {samples['requested']} images failed[/yellow]"
                f" (see {record['per_image_file']})")  # fmt: skip
            for failure in samples["failures"][:5]:
                say(f"  {failure['id']}: {failure['stage']}: {failure['error']}")
    if plan.shard is not None:
        shard = f"{plan.shard[0]}/{plan.shard[1]}"
        say(f"shard {shard} of {len(plan.runs())} run(s) written to {out}/; join the shards with `vtbench merge {out} --out DIR`")
    elif as_json:
        from vtbench.io import to_json

        typer.echo(to_json(summary(records, out, outcome.skipped, outcome.failed)), nl=False)
    elif records and not quiet:
        try:
            board = build_leaderboard(records, rank_by=rank_by)
        except VtbenchError as exc:  # these runs were asked for together: show them, but say why they may not compare
            say(f"[yellow]warning:[/yellow] {exc}")
            board = build_leaderboard(records, rank_by=rank_by, allow_protocol_mismatch=True)
        print_rich_table(board, title=f"{plan.name}: ranked by {board.rank_by}")
        say(f"{len(records)} record(s) in {out}/")
    for name, error in outcome.failed.items():
        typer.secho(f"error: run {name} failed: {error}", fg=typer.colors.RED, err=True)
    empty = [r["run_name"] for r in records if r["samples"]["evaluated"] == 0]
    if empty:
        say(f"[red]no image could be evaluated in: {', '.join(empty)}[/red]")
    if outcome.failed or empty:
        raise typer.Exit(1)
