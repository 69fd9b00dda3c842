"""``vtbench run [RECIPE]``: evaluate tokenizers over datasets, with or without a recipe."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import typer

_RUN = "Run settings (override the recipe)"
_PREP = "Preprocessing"
_GEN = "Generation (gFID and co.)"


class RichProgress:
    """One rich progress display for the session, a bar per run: images done, images/s."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
        )
        self._task: Any = None
        self._started = 0.0
        self._images = 0

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def start(self, run_name: str, total: int, done: int) -> None:
        self._task = self._progress.add_task(run_name, total=total, completed=done, rate="")
        self._started, self._images = time.perf_counter(), 0

    def advance(self, images: int) -> None:
        self._images += images
        rate = self._images / max(time.perf_counter() - self._started, 1e-9)
        self._progress.update(self._task, advance=images, rate=f"{rate:.1f} img/s")

    def finish(self) -> None:
        self._progress.refresh()


def run(
    recipe: Path | None = typer.Argument(None, help="Recipe YAML (see recipes/). Without one, give --tokenizer and --dataset."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the run records; written exactly there."),
    tokenizer: list[str] = typer.Option(
        [],
        "--tokenizer",
        "-t",
        help="Tokenizer name, NAME:key=value,... for options (repeatable). `vtbench list tokenizers`.",
        rich_help_panel=_RUN,
    ),
    weights: Path | None = typer.Option(
        None, "--weights", help="A checkpoint file or model folder for the tokenizer(s), instead of the preset's.", rich_help_panel=_RUN
    ),
    dataset: list[str] = typer.Option(
        [], "--dataset", "-d", help="Dataset name or image folder; NAME:key=value,... for options (repeatable).", rich_help_panel=_RUN
    ),
    metric: list[str] = typer.Option([], "--metric", "-m", help="Metric name (repeatable). `vtbench list metrics`.", rich_help_panel=_RUN),
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
    batch_size: int | None = typer.Option(None, "--batch-size", "-b", min=1, rich_help_panel=_RUN),
    workers: int | None = typer.Option(None, "--workers", min=0, help="DataLoader worker processes.", rich_help_panel=_RUN),
    device: str | None = typer.Option(None, "--device", help="auto, cpu, cuda, cuda:1 ...", rich_help_panel=_RUN),
    strict: bool | None = typer.Option(
        None, "--strict/--no-strict", help="Fail on the first bad image instead of recording it.", rich_help_panel=_RUN
    ),
    save_reconstructions: bool | None = typer.Option(None, "--save-reconstructions/--no-save-reconstructions", rich_help_panel=_RUN),
    checkpoint_seconds: float | None = typer.Option(
        None, "--checkpoint-seconds", min=0, help="Least time between checkpoints (default 30).", rich_help_panel=_RUN
    ),
    checkpoint_every: int | None = typer.Option(
        None, "--checkpoint-every", min=1, help="Batches between checkpoints.", rich_help_panel=_RUN
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
    offline: bool = typer.Option(False, "--offline", help="Never download weights (also: VTBENCH_OFFLINE=1).", rich_help_panel=_RUN),
    restart: bool = typer.Option(False, "--restart", help="Discard partial progress instead of resuming it.", rich_help_panel=_RUN),
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
) -> None:
    """Evaluate tokenizers over datasets; writes one record per (tokenizer, dataset) into --out."""
    from dataclasses import asdict, replace

    from rich.console import Console

    from vtbench.errors import RecipeError, VtbenchError
    from vtbench.images import Preprocessing
    from vtbench.leaderboard import build_leaderboard, print_rich_table
    from vtbench.recipe import Component, Recipe, load_recipe, run_recipe

    if offline:
        os.environ["VTBENCH_OFFLINE"] = "1"
    if generator:
        _run_generation(generator, reference, metric, out, resolution, resize_mode, resize_filter, batch_size, device,
                        expected_samples, bool(skip_unavailable), rank_by)  # fmt: skip
        return
    if recipe is not None:
        plan = load_recipe(recipe)
    elif tokenizer and dataset:
        plan = Recipe(tokenizers=[], datasets=[], name="command-line", source="command line")
    else:
        raise RecipeError("give a recipe file, or both --tokenizer and --dataset (see `vtbench run --help`)")
    if tokenizer:
        plan.tokenizers = [Component.from_cli(name) for name in tokenizer]
    if weights is not None:
        if len(plan.tokenizers) != 1:
            raise RecipeError("--weights is for one tokenizer; for several, give each its own: -t NAME:weights=PATH")
        plan.tokenizers[0].options["weights"] = str(weights)
    if dataset:
        plan.datasets = [Component.from_cli(name) for name in dataset]
    if metric:
        plan.metrics = list(metric)
    overrides = {
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
    }
    plan = replace(plan, **{k: v for k, v in overrides.items() if v is not None})
    prep = {k: v for k, v in {"resolution": resolution, "mode": resize_mode, "filter": resize_filter}.items() if v is not None}
    if prep:
        try:
            plan.preprocessing = Preprocessing(**{**asdict(plan.preprocessing), **prep})
        except ValueError as exc:
            raise RecipeError(str(exc)) from None

    console = Console()
    try:
        with RichProgress() as progress:
            records = run_recipe(plan, out, progress=progress, restart=restart)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]: progress is kept; run the same command again to resume")
        raise typer.Exit(130) from None
    for record in records:
        for note in record["dataset"].get("warnings", []):
            console.print(f"[yellow]{record['run_name']}: {note}[/yellow]")
        samples = record["samples"]
        if samples["failed"]:
            console.print(
                f"[yellow]{record['run_name']}: {samples['failed']} of {samples['requested']} images failed[/yellow]"
                f" (see {record['per_image_file']})"
            )
            for failure in samples["failures"][:5]:
                console.print(f"  {failure['id']}: {failure['stage']}: {failure['error']}")
    try:
        board = build_leaderboard(records, rank_by=rank_by)
    except VtbenchError as exc:  # these runs were asked for together: show them, but say why they may not compare
        console.print(f"[yellow]warning:[/yellow] {exc}")
        board = build_leaderboard(records, rank_by=rank_by, allow_protocol_mismatch=True)
    print_rich_table(board, title=f"{plan.name}: ranked by {board.rank_by}")
    console.print(f"{len(records)} record(s) written to {out}/")
    empty = [r["run_name"] for r in records if r["samples"]["evaluated"] == 0]
    if empty:
        console.print(f"[red]no image could be evaluated in: {', '.join(empty)}[/red]")
        raise typer.Exit(1)


def _run_generation(
    generators: list[str],
    reference: str | None,
    metrics: list[str],
    out: Path,
    resolution: int | None,
    resize_mode: str | None,
    resize_filter: str | None,
    batch_size: int | None,
    device: str | None,
    expected_samples: int | None,
    skip_unavailable: bool,
    rank_by: str | None,
) -> None:
    from vtbench.errors import RecipeError
    from vtbench.generation import GENERATION_METRICS, GenerationConfig, evaluate_generation
    from vtbench.images import Preprocessing
    from vtbench.leaderboard import build_leaderboard, print_rich_table

    if reference is None:
        raise RecipeError("a generation run (--generator) needs --reference: a folder, an .npz, a dataset name or mu/sigma statistics")
    try:
        preprocessing = Preprocessing(resolution, resize_mode or ("center-crop" if resolution else "none"), resize_filter or "bicubic")
    except ValueError as exc:
        raise RecipeError(str(exc)) from None
    records = []
    for name in generators:
        config = GenerationConfig(
            generator=name, reference=reference, metrics=list(metrics) or list(GENERATION_METRICS), preprocessing=preprocessing,
            batch_size=batch_size or 32, device=device or "auto", expected_samples=expected_samples, skip_unavailable=skip_unavailable,
        )  # fmt: skip
        records.append(evaluate_generation(config, out))
    board = build_leaderboard(records, rank_by=rank_by)
    print_rich_table(board, title=f"generation vs {Path(reference).name}: ranked by {board.rank_by}")
    typer.echo(f"{len(records)} record(s) written to {out}/")
