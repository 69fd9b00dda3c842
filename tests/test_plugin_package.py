"""The example plugin package installs with pip and its tokenizer runs through the CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
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


EXAMPLE = REPO / "examples" / "vtbench-plugin-example"


def test_contributing_shows_the_example_files_verbatim() -> None:
    """Every code block of CONTRIBUTING.md headed by an example file's path is that file."""
    text = (REPO / "CONTRIBUTING.md").read_text()
    blocks = re.findall(r"```(?:python|toml)\n# (examples/vtbench-plugin-example/\S+)\n(.*?)```", text, flags=re.DOTALL)
    shown = {path for path, _ in blocks}
    files = ("pyproject.toml", "src/vtbench_example/tokenizer.py", "src/vtbench_example/dataset.py", "src/vtbench_example/metric.py")
    assert shown == {f"examples/vtbench-plugin-example/{p}" for p in files}
    for path, body in blocks:
        assert body == (REPO / path).read_text(), f"CONTRIBUTING.md's copy of {path} differs from the file"


def test_example_plugins_are_listed_and_run_as_documented(installed_example: dict[str, str], tmp_path: Path) -> None:
    listing = json.loads(run_cli("list", "tokenizers", "--json", env=installed_example, process=True).stdout)  # as installed by pip
    entry = next(e for e in listing["entries"] if e["name"] == "posterize-4bit")
    assert entry["source"] == "plugin vtbench-plugin-example" and entry["family"] == "discrete"
    for kind, name in (("datasets", "gradients"), ("metrics", "mean-abs-error")):
        names = [e["name"] for e in json.loads(run_cli("list", kind, "--json", env=installed_example).stdout)["entries"]]
        assert name in names

    # the command of CONTRIBUTING's step 4 and the example's README, as written there
    readme = (EXAMPLE / "README.md").read_text()
    command = re.search(r"^vtbench run (.*?)$\n\s+(.*?)$", readme, flags=re.MULTILINE)
    assert command is not None
    arguments = (command.group(1).rstrip(" \\") + " " + command.group(2)).split()
    assert arguments[arguments.index("--out") + 1] == "results/posterize"
    arguments[arguments.index("--out") + 1] = str(tmp_path)
    contributing = (REPO / "CONTRIBUTING.md").read_text()
    assert f"vtbench run {command.group(1)}" in contributing and command.group(2) in contributing
    run_cli("run", *arguments, env=installed_example)

    four, two = (json.loads((tmp_path / f"{run}__gradients.json").read_text()) for run in ("posterize-4bit", "posterize-2bit"))
    assert four["metrics"]["bpp"]["value"] == pytest.approx(12.0) and two["metrics"]["bpp"]["value"] == pytest.approx(6.0)
    assert four["tokenizer"]["info"]["codebook_size"] == 16 and two["tokenizer"]["options"] == {"bits": 2}
    assert four["dataset"]["n_images"] == 8
    # mean-abs-error against numpy, on the same ramps posterized by hand
    ramp = np.linspace(0, 255, 64).round().astype(np.uint8)
    for record, bits in ((four, 4), (two, 2)):
        errors = []
        for i in range(8):
            pixels = np.empty((64, 64, 3), dtype=np.uint8)
            pixels[..., 0], pixels[..., 1], pixels[..., 2] = ramp[None, :], ramp[:, None], (i * 37) % 256
            levels = np.minimum(np.floor(pixels / 255 * 2**bits), 2**bits - 1)
            decoded = np.round((levels + 0.5) / 2**bits * 255)  # the engine keeps 8-bit reconstructions
            errors.append(np.abs(decoded - pixels).mean())
        assert record["metrics"]["mean-abs-error"]["value"] == pytest.approx(np.mean(errors), rel=1e-6)  # float32 pixels
        assert record["metrics"]["psnr"]["value"] > (30.1 if bits == 4 else 18.0)


def test_plugin_option_errors_name_the_component(installed_example: dict[str, str], tmp_path: Path) -> None:
    result = run_cli("run", "-t", "posterize-4bit:bits=12", "-d", "gradients", "--out", tmp_path, env=installed_example, check=2)
    assert "posterize-4bit" in result.stderr and "bits must be in 1..8, got 12" in result.stderr
    result = run_cli("run", "-t", "posterize-4bit", "-d", "gradients:cuont=3", "--out", tmp_path, env=installed_example, check=2)
    assert "cuont" in result.stderr and "count" in result.stderr
