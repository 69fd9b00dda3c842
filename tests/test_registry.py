"""Registries: lazy built-ins, presets, suggestions, entry-point plugins and broken plugins."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import vtbench
from conftest import run_cli
from vtbench.errors import UnknownNameError
from vtbench.registry import Registry


def test_builtin_tokenizers_are_registered_without_importing_them() -> None:
    code = (
        "import sys, vtbench; n = vtbench.TOKENIZERS.names(); "
        "print('vtbench.tokenizers.codec' in sys.modules, 'torch' in sys.modules, len(n))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[:2] == ["False", "False"]
    assert int(out[2]) >= 10


def test_presets_are_data_over_one_class() -> None:
    tokenizer = vtbench.create_tokenizer("jpeg-q25")
    assert tokenizer.quality == 25 and tokenizer.options()["subsampling"] == "4:2:0"
    assert vtbench.create_tokenizer("jpeg-q25", quality=60).quality == 60
    assert vtbench.create_tokenizer("resample-x8").factor == 8


def test_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(UnknownNameError) as info:
        vtbench.create_tokenizer("jpg-q50")
    assert "jpeg-q50" in info.value.close
    assert "did you mean" in str(info.value).lower()


def test_duplicate_names_are_rejected_and_decorator_registers() -> None:
    registry: Registry = Registry("widgets", entry_point_group="vtbench.test-none")

    @registry.register("w", description="a widget", size=3)
    def make(size: int = 1) -> int:
        return size * 2

    assert registry.create("w") == 6 and registry.create("w", size=1) == 2
    with pytest.raises(ValueError, match="already registered"):
        registry.register("w", make)


def test_list_shows_builtins_and_installed_plugins(plugin_env: dict[str, str]) -> None:
    result = run_cli("list", "tokenizers", "--json", env=plugin_env, process=True)  # a fresh process imports every plugin
    listing = json.loads(result.stdout)
    by_name = {e["name"]: e for e in listing["entries"]}
    assert by_name["jpeg-q50"]["source"] == "builtin"
    assert by_name["test-slow"]["source"] == "plugin vtbench-testplugins"
    assert by_name["test-slow"]["description"].startswith("Identity that sleeps")
    # the broken plugin is named with its error, and the others still load
    assert [b["name"] for b in listing["plugin_errors"]] == ["test-broken"]
    assert "broken on purpose" in listing["plugin_errors"][0]["error"]
    metrics = json.loads(run_cli("list", "metrics", "--json", env=plugin_env).stdout)
    assert "test-mae" in {e["name"] for e in metrics["entries"]}


def test_using_a_broken_plugin_names_it(plugin_env: dict[str, str], tmp_path) -> None:
    result = run_cli("run", "-t", "test-broken", "-d", "samples", "--limit", "1", "--out", tmp_path, env=plugin_env, check=2)
    assert "test-broken" in result.stderr and "broken on purpose" in result.stderr


def test_plugin_tokenizer_and_metric_run_end_to_end(plugin_env: dict[str, str], tmp_path) -> None:
    run_cli(
        "run",
        "-t",
        "test-noisy",
        "-d",
        "samples",
        "-m",
        "psnr",
        "-m",
        "test-mae",
        "--limit",
        "3",
        "--resolution",
        "64",
        "--out",
        tmp_path,
        env=plugin_env,
    )
    record = json.loads((tmp_path / "test-noisy__samples.json").read_text())
    assert record["metrics"]["test-mae"]["higher_is_better"] is False
    assert 0.01 < record["metrics"]["test-mae"]["value"] < 0.1
    assert record["samples"]["evaluated"] == 3


BUILT_IN = {"tokenizers": "jpeg-q50", "metrics": "psnr", "datasets": "samples", "generators": "llamagen-c2i-b-256",
            "ocr": "tesseract", "extractors": "inception-v3-compat"}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(BUILT_IN))
def test_every_registry_lists(kind: str) -> None:
    listing = json.loads(run_cli("list", kind, "--json").stdout)
    assert listing["kind"] == kind
    by_name = {entry["name"]: entry for entry in listing["entries"]}
    assert BUILT_IN[kind] in by_name and by_name[BUILT_IN[kind]]["source"] == "builtin"
    assert all(entry["description"] for entry in listing["entries"]), [e["name"] for e in listing["entries"] if not e["description"]]


def test_list_filters_tokenizers_by_family() -> None:
    listing = json.loads(run_cli("list", "tokenizers", "--family", "codec", "--json").stdout)
    assert listing["entries"] and all(e["family"] == "codec" for e in listing["entries"])


def test_show_lists_the_accepted_options_and_a_preset_like_name_is_spelled_as_an_option(tmp_path) -> None:
    shown = run_cli("show", "jpeg").stdout
    assert "{}" not in shown and "none set by this name" in shown and 'quality=75, subsampling="4:2:0"' in shown
    preset = json.loads(run_cli("show", "jpeg-q50", "--json").stdout)
    assert preset["options"] == {"quality": 50} and preset["accepts"] == {"quality": 75, "subsampling": "4:2:0"}
    error = run_cli("run", "-t", "jpeg-q30", "-d", "samples", "--limit", "1", "--out", tmp_path, check=2).stderr
    assert "Did you mean: jpeg:quality=30, jpeg-q" in error
    run_cli("run", "-t", "jpeg:quality=30", "-d", "samples", "--limit", "1", "-m", "psnr", "--out", tmp_path)  # the suggestion works
    assert "jpeg:" not in run_cli("run", "-t", "jpeg-x30", "-d", "samples", "--limit", "1", "--out", tmp_path, check=2).stderr
