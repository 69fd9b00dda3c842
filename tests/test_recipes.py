"""Recipes: parsing, include, validation errors with suggestions, the validate command."""

from __future__ import annotations

import json
import os
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
    result = run_cli("validate", "--no-weights", *recipes)  # one process for all of them; weights: the test below
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


def test_option_variants_are_named_apart_and_true_duplicates_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "tokenizers: [{name: jpeg, quality: 50}, {name: jpeg, quality: 60}, {name: jpeg, label: mine}]\n"
                            "datasets: [samples]\n")  # fmt: skip
    names = [run.run_name for run in load_recipe(path).runs()]
    assert names == ["jpeg-quality=50__samples", "jpeg-quality=60__samples", "mine__samples"]  # a label is kept as given
    path = _write(tmp_path, "tokenizers: [{name: jpeg, quality: 50}, {name: jpeg, quality: 50}]\ndatasets: [samples]\n")
    with pytest.raises(RecipeError, match="same record 'jpeg__samples'.*label"):
        validate_recipe(load_recipe(path))


def test_missing_folder_dataset_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, f"tokenizers: [identity]\ndatasets: [{{name: folder, root: {tmp_path}/nope}}]\n")
    with pytest.raises(RecipeError, match="nope"):
        validate_recipe(load_recipe(path))


def test_invalid_yaml_and_bad_preprocessing_are_named(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(_write(tmp_path, "tokenizers: [identity\n"))
    with pytest.raises(RecipeError, match="setting 'filter' must be one of .*got 'cubic'"):
        load_recipe(_write(tmp_path, "tokenizers: [identity]\ndatasets: [samples]\npreprocessing: {filter: cubic}\n", "p.yaml"))


def test_validate_reports_every_problem_at_once(tmp_path: Path) -> None:
    path = _write(tmp_path, "tokenizers: [jpeg-q5O, {name: jpeg, qualty: 40}]\ndatasets: [samples]\nbatchsize: 4\n"
                            "checkpoint_seconds: soon\nlimit: 0\nmetrics: [psnr, ssmi]\n")  # fmt: skip
    result = run_cli("validate", path, check=2)
    for culprit in ("batchsize", "checkpoint_seconds", "soon"):
        assert culprit in result.stderr
    assert f"{path}: 3 problem(s)" in result.stdout  # the file's own problems come first
    fixed = _write(tmp_path, "tokenizers: [jpeg-q5O, {name: jpeg, qualty: 40}]\ndatasets: [samples]\nmetrics: [psnr, ssmi]\n", "names.yaml")
    report = json.loads(run_cli("validate", "--json", path, fixed, check=2).stdout)
    assert report["ok"] is False and [r["ok"] for r in report["recipes"]] == [False, False]
    names = report["recipes"][1]["problems"]
    assert len(names) == 3 and any("jpeg-q50" in p for p in names) and any("qualty" in p for p in names)
    assert any("ssmi" in p and "ssim" in p for p in names)
    assert run_cli("validate", "--quiet", fixed, check=2).stdout == ""


def test_validate_names_every_missing_weights_file_with_its_fix(tmp_path: Path) -> None:
    path = _write(tmp_path, "tokenizers: [llamagen-vq-ds16-c2i, open-magvit2-256-l]\ndatasets: [samples]\nmetrics: [psnr, lpips-vgg]\n")
    result = run_cli("validate", path, check=2)  # offline (the test environment): nothing can be fetched
    assert result.stderr.count("error: ") == 3
    assert "tokenizer llamagen-vq-ds16-c2i" in result.stderr and "vtbench weights fetch llamagen-vq-ds16-c2i" in result.stderr
    assert "tokenizer open-magvit2-256-l" in result.stderr and "metric lpips-vgg" in result.stderr
    online = run_cli("validate", path, env={**os.environ, "VTBENCH_OFFLINE": ""})
    assert online.stdout.count("will be downloaded on first use") == 3 and ": OK, 2 run(s)" in online.stdout
    assert "OK" in run_cli("validate", "--no-weights", path).stdout
