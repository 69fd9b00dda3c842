"""``vtbench validate RECIPE...``: check recipes without running them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from vtbench.cli.options import settings_options
from vtbench.settings import Settings


@settings_options("validate", Settings)
def validate(
    recipes: list[Path] = typer.Argument(..., help="Recipe YAML file(s)."),
    weights: bool = typer.Option(True, "--weights/--no-weights", help="Also check that every weights file the runs need is here."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document: per recipe, its runs, problems and notes."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print problems only; the exit code says the rest."),
    settings: dict[str, Any] | None = None,
) -> None:
    """Check each recipe's keys, settings, names, options and weights files, reporting every
    problem at once; print the runs it would make. Exit 2 if any recipe has a problem. The
    run settings' options check the recipe as `vtbench run` with the same options would run it.

    Example:

      vtbench validate recipes/quickstart.yaml recipes/tokbench.yaml
    """
    from vtbench.errors import RecipeError
    from vtbench.recipe import load_recipe, recipe_problems

    results = []
    for path in recipes:
        try:
            names, problems, notes = recipe_problems(load_recipe(path), check_weights=weights, overrides=settings or {})
        except RecipeError as exc:  # the file itself: unreadable, unknown keys, bad settings
            lines = str(exc).splitlines()
            names, problems, notes = [], [line.strip() for line in (lines[1:] if len(lines) > 1 else lines)], []
        results.append({"recipe": str(path), "ok": not problems, "runs": names, "problems": problems, "notes": notes})
    if as_json:
        typer.echo(json.dumps({"ok": all(r["ok"] for r in results), "recipes": results}, indent=2))
    else:
        for result in results:
            for problem in result["problems"]:
                typer.secho(f"error: {problem}", fg=typer.colors.RED, err=True)
            if quiet:
                continue
            for note in result["notes"]:
                typer.echo(f"{result['recipe']}: note: {note}")
            if result["ok"]:
                typer.echo(f"{result['recipe']}: OK, {len(result['runs'])} run(s): {', '.join(result['runs'])}")
            else:
                typer.echo(f"{result['recipe']}: {len(result['problems'])} problem(s)")
    if not all(r["ok"] for r in results):
        raise typer.Exit(2)
