"""What a run is, declared once: the settings (CLI options, recipe keys, identity derived from
one declaration), the records (typed, comparable by what their numbers depend on), and the
three ways the hand-kept lists had drifted: a stale result reused, generators that could not
be compared, and the weights behind a metric never compared."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from weights_factory import make_torchvision_weights

from conftest import REPO, run_cli, skimage_rgb
from vtbench.declaration import declared
from vtbench.images import Preprocessing
from vtbench.schema import WeightsFile, load_record
from vtbench.settings import GenerationConfig, RunConfig, Settings
from vtbench.weights import sha256_file

LPIPS_RUN = ["-t", "jpeg-q50", "-d", "samples", "--limit", "2", "--resolution", "64", "-m", "psnr", "-m", "lpips-alex"]


def test_a_metric_recorded_unavailable_is_computed_once_its_weights_are_here(tmp_path: Path, alexnet_weights: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    args = ["run", *LPIPS_RUN, "--skip-unavailable", "--out", tmp_path]
    monkeypatch.delenv("VTBENCH_WEIGHTS_ALEXNET", raising=False)
    run_cli(*args)
    first = load_record(tmp_path / "jpeg-q50__samples.json")
    assert first.metrics["lpips-alex"].status == "unavailable" and first.metrics["psnr"].status == "ok"
    monkeypatch.setenv("VTBENCH_WEIGHTS_ALEXNET", str(alexnet_weights))
    second = run_cli(*args)
    assert "already done" not in second.stdout
    record = load_record(tmp_path / "jpeg-q50__samples.json")
    assert record.metrics["lpips-alex"].status == "ok" and record.value("lpips-alex") > 0
    assert record.metrics["lpips-alex"].weights == [WeightsFile("alexnet", alexnet_weights.name, sha256_file(alexnet_weights), True)]
    assert record.value("psnr") == first.value("psnr") and record.identity_sha != first.identity_sha
    assert "jpeg-q50__samples: already done (same settings)" in run_cli(*args).stdout


def test_compare_refuses_a_metric_computed_with_other_weights(tmp_path: Path, alexnet_weights: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    other = make_torchvision_weights("alexnet", tmp_path / "alexnet-other.pth", seed=1)
    for name, weights in (("a", alexnet_weights), ("b", other)):
        monkeypatch.setenv("VTBENCH_WEIGHTS_ALEXNET", str(weights))
        run_cli("run", *LPIPS_RUN, "--out", tmp_path / name)
    a, b = (tmp_path / name / "jpeg-q50__samples.json" for name in ("a", "b"))
    refused = run_cli("compare", a, b, check=2)
    assert "lpips-alex was computed under different settings (weights:" in refused.stderr
    assert "psnr" not in refused.stderr  # PSNR depends on no weights: it is comparable
    allowed = run_cli("compare", a, b, "--allow-protocol-mismatch", "--json", check=None)
    diffs = {d["metric"]: d for d in json.loads(allowed.stdout)["diffs"]}
    assert diffs["psnr"]["status"] == "ok" and diffs["lpips-alex"]["delta"] != 0


@pytest.fixture(scope="module")
def two_generators(tmp_path_factory: pytest.TempPathFactory, inception_weights: Path) -> Path:
    """Two generators' samples (.npz: lightly and heavily JPEG-degraded crops) scored against
    one reference folder of other crops; returns the output folder."""
    root = tmp_path_factory.mktemp("two-generators")
    reference = root / "reference"
    reference.mkdir()
    rng = np.random.default_rng(3)
    batches: dict[str, list[np.ndarray]] = {"model-a": [], "model-b": []}
    for i in range(10):
        photo = skimage_rgb(["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry"][i % 5])
        top, left = rng.integers(0, photo.shape[0] - 64, size=3), rng.integers(0, photo.shape[1] - 64, size=3)
        Image.fromarray(np.ascontiguousarray(photo[top[0] : top[0] + 64, left[0] : left[0] + 64])).save(reference / f"{i:02d}.png")
        for k, (name, quality) in enumerate((("model-a", 60), ("model-b", 2)), start=1):
            buffer = io.BytesIO()
            Image.fromarray(np.ascontiguousarray(photo[top[k] : top[k] + 64, left[k] : left[k] + 64])).save(buffer, "JPEG", quality=quality)
            batches[name].append(np.asarray(Image.open(buffer).convert("RGB")))
    for name, images in batches.items():
        np.savez(root / f"{name}.npz", arr_0=np.stack(images))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VTBENCH_WEIGHTS_INCEPTION_V3_COMPAT", str(inception_weights))
        run_cli("run", "-g", root / "model-a.npz", "-g", root / "model-b.npz", "--reference", reference, "-m", "fid",
                "-m", "kid:subset_size=10", "--expected-samples", "10", "--out", root / "out")  # fmt: skip
    return root / "out"


def test_two_generators_against_one_reference_compare_rank_and_report(two_generators: Path, tmp_path: Path) -> None:
    a, b = (load_record(two_generators / f"{name}__reference.json") for name in ("model-a", "model-b"))
    assert a.dataset.manifest_sha256 != b.dataset.manifest_sha256  # the samples differ ...
    assert a.comparability("fid") == b.comparability("fid")  # ... the reference, settings and weights do not
    assert a.dataset.reference["manifest_sha256"] == b.dataset.reference["manifest_sha256"]
    worse = "regressed" if b.value("fid") > a.value("fid") else "improved"
    compared = run_cli("compare", a.path, b.path, "--json", check=1 if worse == "regressed" else 0)
    assert {d["metric"]: d["status"] for d in json.loads(compared.stdout)["diffs"]}["fid"] == worse
    board = json.loads(run_cli("leaderboard", two_generators, "--format", "json").stdout)
    assert board["rank_by"] == "fid" and [row["rank"] for row in board["rows"]] == [1, 2]
    assert [row["fid"] for row in board["rows"]] == sorted([a.value("fid"), b.value("fid")])  # lower is better: first
    assert "| rank | generator | reference |" in run_cli("leaderboard", two_generators, "--format", "md").stdout
    latex = run_cli("leaderboard", two_generators, "--format", "latex").stdout
    assert "Generator & FID $\\downarrow$ & KID $\\downarrow$" in latex and "rFID" not in latex  # against a reference: FID
    run_cli("report", two_generators, "--out", tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text()
    assert "different settings" not in page and ">generator</th>" in page and "FID ↓" in page  # a generation table, not tokenizer/dataset
    assert "Bjøntegaard" not in page and "Worst images" not in page  # neither applies to generators


# -- settings declared once -------------------------------------------------------------------
def _all_settings() -> dict[str, Any]:
    """Every declared run setting, the preprocessing's fields as ``preprocessing.NAME``."""
    found = {}
    for name, declaration in declared(Settings).items():
        if name == "preprocessing":
            found.update({f"preprocessing.{k}": d for k, d in declared(Preprocessing).items()})
        else:
            found[name] = declaration
    return found


def _options(command: str) -> set[str]:
    from typer.main import get_command

    from vtbench.cli import app

    params = get_command(app).commands[command].params
    return {option for param in params for option in (*param.opts, *param.secondary_opts)}


def test_every_setting_has_its_command_line_options_and_recipe_key() -> None:
    from vtbench.recipe import RECIPE_SETTINGS, parse_recipe

    options = {command: _options(command) for command in ("run", "validate", "probe", "reference-stats")}
    for name, declaration in _all_settings().items():
        top = name.split(".")[0]
        commands = declared(Settings)["preprocessing"].commands if top == "preprocessing" else declaration.commands
        flag = declaration.flag or _all_settings()[declaration.via].flag
        for command in commands:
            assert flag in options[command], f"{name}: no {flag} in `vtbench {command}`"
            if declaration.negative:
                assert declaration.negative in options[command]
        if declaration.recipe:
            assert top in RECIPE_SETTINGS, f"{name}: no recipe key"
    readme = (REPO / "README.md").read_text()
    listed = readme[readme.index("and every setting: `metrics`") : readme.index("is a command-line setting only")]
    assert {key for key in RECIPE_SETTINGS if f"`{key}`" not in listed} == set(), "the README's recipe keys are incomplete"
    for key in sorted(RECIPE_SETTINGS):  # each key is accepted with its default value
        value = Settings().settings()[key]
        value = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
        parse_recipe({"tokenizers": ["identity"], "datasets": ["samples"], key: value}, "r.yaml")


# A different valid value for every field of the run configs: a new field without one here fails
# the test below, so whether it belongs to the run's identity is decided when it is added.
CHANGED: dict[str, Any] = {
    "metrics": ["psnr"], "metric_options": {"psnr": {}}, "protocol": "tokbench", "preprocessing.resolution": 64,
    "preprocessing.mode": "pad", "preprocessing.filter": "lanczos", "batch_size": 3, "num_workers": 0, "device": "cpu", "limit": 2,
    "strict": True, "save_reconstructions": True, "skip_unavailable": True, "ocr_engine": "easyocr", "compile": True,
    "use_cache": False, "checkpoint_every": 5, "checkpoint_seconds": 1.0, "shard": (0, 2), "stored_statistics": False,
    "expected_samples": 5, "tokenizer": "jpeg-q90", "dataset": "text", "tokenizer_options": {"quality": 3},
    "dataset_options": {"limit": 1}, "label": "mine", "dataset_label": "theirs", "generator": "b.npz", "reference": "ref2",
    "generator_options": {"seed": 1}, "reference_options": {"root": "x"},
}  # fmt: skip


@pytest.mark.parametrize("config", [RunConfig("identity", "samples"), GenerationConfig("a.npz", "ref")], ids=lambda c: c.task)
def test_the_identity_is_every_field_but_those_declared_otherwise(config: RunConfig | GenerationConfig) -> None:
    settings = declared(type(config))
    names = [f.name for f in dataclasses.fields(config) if f.name != "preprocessing"] + [
        f"preprocessing.{k}" for k in declared(Preprocessing)
    ]
    assert sorted(set(names) - set(CHANGED)) == [], "give the new field a changed value in CHANGED"
    before = config.identity()
    for name in names:
        if name.startswith("preprocessing."):
            changed = dataclasses.replace(config, preprocessing=dataclasses.replace(config.preprocessing, **{name[14:]: CHANGED[name]}))
            declaration = declared(Preprocessing)[name[14:]]
        else:
            changed = dataclasses.replace(config, **{name: CHANGED[name]})
            declaration = settings.get(name)
        applies = declaration is None or (declaration.identity and config.task in declaration.tasks)
        assert (changed.identity() != before) == applies, f"{name}: in the identity: {applies}"
    assert "skip_unavailable" in before and "batch_size" not in before and "device" not in before


def test_protocol_recipe_command_line_and_component_resolve_in_that_order(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("protocol: rfid-imagenet-256\ntokenizers: [identity]\nmetrics: [psnr]\nbatch_size: 2\n"
                      "datasets: [{name: samples, preprocessing: {filter: lanczos}}]\n")  # fmt: skip
    from vtbench.recipe import load_recipe

    (run,) = load_recipe(recipe).runs({"preprocessing": {"resolution": 128}, "batch_size": 4})
    assert run.protocol == "rfid-imagenet-256" and run.metrics == ["psnr"] and run.batch_size == 4
    assert run.preprocessing == Preprocessing(128, "adm-center-crop", "lanczos")
    listed = run_cli("validate", "--no-weights", recipe, "--resolution", "0", check=2)
    assert "setting 'resolution' must be at least 1, got 0" in listed.stderr


def test_contributings_example_setting_is_an_option_a_checked_value_and_part_of_the_identity() -> None:
    """CONTRIBUTING's "a setting is one declared field" example, as written there."""
    import re
    from dataclasses import dataclass

    from vtbench.cli.options import command_options
    from vtbench.declaration import setting
    from vtbench.settings import SettingsError

    line = re.search(r"```python\n\s*(stride: .*)\n\s*```", (REPO / "CONTRIBUTING.md").read_text()).group(1)
    namespace: dict[str, Any] = {"setting": setting, "Settings": Settings, "dataclass": dataclass}
    exec(f"@dataclass(kw_only=True)\nclass WithStride(Settings):\n    {line}\n", namespace)
    with_stride = namespace["WithStride"]
    assert "--stride" in {option.declaration.flag for option in command_options("run", with_stride)}
    assert declared(with_stride)["stride"].identity and with_stride(stride=3).stride == 3
    with pytest.raises(SettingsError, match="setting 'stride' must be at least 1, got 0"):
        with_stride(stride=0)
