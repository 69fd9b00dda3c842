"""``vtbench validate RECIPE``: check a recipe without running it."""

from __future__ import annotations

from pathlib import Path

import typer


def validate(recipe: Path = typer.Argument(..., help="Recipe YAML file.")) -> None:
    """Check a recipe's keys, names and options; print the runs it would make."""
    from vtbench.recipe import load_recipe, validate_recipe

    runs = validate_recipe(load_recipe(recipe))
    typer.echo(f"{recipe}: OK, {len(runs)} run(s): {', '.join(runs)}")
