"""``vtbench validate RECIPE...``: check recipes without running them."""

from __future__ import annotations

from pathlib import Path

import typer


def validate(recipes: list[Path] = typer.Argument(..., help="Recipe YAML file(s).")) -> None:
    """Check each recipe's keys, names and options; print the runs it would make."""
    from vtbench.recipe import load_recipe, validate_recipe

    for recipe in recipes:
        runs = validate_recipe(load_recipe(recipe))
        typer.echo(f"{recipe}: OK, {len(runs)} run(s): {', '.join(runs)}")
