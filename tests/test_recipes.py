"""Recipes: parsing, include, validation errors with suggestions, the validate command."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REPO, run_cli
from vtbench.errors import RecipeError
from vtbench.recipe import load_recipe, validate_recipe


def _write(tmp_path: Path, text: str, name: str = "r.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_quickstart_recipe_is_valid() -> None:
    recipe = load_recipe(REPO / "recipes" / "quickstart.yaml")
    runs = validate_recipe(recipe)
    assert "identity__samples" in runs and len(runs) == len(recipe.tokenizers)
    assert recipe.preprocessing.resolution == 256
    assert {"psnr", "ssim"} <= set(recipe.metrics)


def test_every_shipped_recipe_validates() -> None:
    recipes = sorted((REPO / "recipes").glob("*.yaml"))
    result = run_cli("validate", *recipes)  # one process for all of them
    assert result.stdout.count(": OK, ") == len(recipes) >= 5


def test_unknown_key_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    path = _write(tmp_path, "tokenizers: [identity]\ndatasets: [samples]\nbatchsize: 4\n")
    with pytest.raises(RecipeError, match="unknown key 'batchsize'.*batch_size"):
        load_recipe(path)


def test_unknown_tokenizer_is_named_with_close_matches(tmp_path: Path) -> None:
    path = _write(tmp_path, "tokenizers: [jpeg-q5O]\ndatasets: [samples]\n")
    result = run_cli("validate", path, check=2)
    assert "jpeg-q5O" in result.stderr and "jpeg-q50" in result.stderr and str(path) in result.stderr


def test_bad_tokenizer_option_lists_the_accepted_ones(tmp_path: Path) -> None:
    path = _write(tmp_path, "tokenizers: [{name: jpeg, qualty: 40}]\ndatasets: [samples]\n")
    with pytest.raises(RecipeError, match="qualty.*accepted: quality, subsampling"):
        validate_recipe(load_recipe(path))


def test_include_inherits_and_overrides(tmp_path: Path) -> None:
    _write(tmp_path, "tokenizers: [identity]\ndatasets: [samples]\nbatch_size: 2\npreprocessing: {resolution: 64}\n", "base.yaml")
    child = _write(tmp_path, "include: base.yaml\ntokenizers: [jpeg-q50, {name: jpeg, quality: 60, label: jpeg-q60}]\n")
    recipe = load_recipe(child)
    assert recipe.batch_size == 2 and recipe.preprocessing.resolution == 64
    assert validate_recipe(recipe) == ["jpeg-q50__samples", "jpeg-q60__samples"]


def test_duplicate_run_names_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "tokenizers: [{name: jpeg, quality: 50}, {name: jpeg, quality: 60}]\ndatasets: [samples]\n")
    with pytest.raises(RecipeError, match="same record 'jpeg__samples'.*label"):
        validate_recipe(load_recipe(path))


def test_missing_folder_dataset_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, f"tokenizers: [identity]\ndatasets: [{{name: folder, root: {tmp_path}/nope}}]\n")
    with pytest.raises(RecipeError, match="nope"):
        validate_recipe(load_recipe(path))


def test_invalid_yaml_and_bad_preprocessing_are_named(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(_write(tmp_path, "tokenizers: [identity\n"))
    with pytest.raises(RecipeError, match="resize filter 'cubic'"):
        load_recipe(_write(tmp_path, "tokenizers: [identity]\ndatasets: [samples]\npreprocessing: {filter: cubic}\n", "p.yaml"))
