"""The example plugin package installs with pip and its tokenizer runs through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, run_cli


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    target = tmp_path_factory.mktemp("example-install")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(REPO / "examples" / "vtbench-plugin-example")],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return {**os.environ, "PYTHONPATH": str(target)}


def test_example_plugin_is_listed_and_runs(installed_example: dict[str, str], tmp_path: Path) -> None:
    listing = json.loads(run_cli("list", "tokenizers", "--json", env=installed_example).stdout)
    entry = next(e for e in listing["entries"] if e["name"] == "posterize-4bit")
    assert entry["source"] == "plugin vtbench-plugin-example" and entry["family"] == "discrete"
    run_cli("run", "-t", "posterize-4bit", "-d", "samples", "--limit", "2", "--resolution", "32", "--out", tmp_path, env=installed_example)
    record = json.loads((tmp_path / "posterize-4bit__samples.json").read_text())
    assert record["metrics"]["bpp"]["value"] == pytest.approx(12.0)
    # uniform 4-bit quantisation error is at most half a level: PSNR above 20*log10(2*16) = 30.1 dB
    assert record["metrics"]["psnr"]["value"] > 30.1
    assert record["tokenizer"]["info"]["codebook_size"] == 16
