"""Generation evaluation end to end: samples (.npz) against a reference folder, checked
against torch-fidelity computed independently; cached references; statistics files."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli, skimage_rgb
from vtbench import weights


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, inception_weights: Path) -> dict:
    root = tmp_path_factory.mktemp("generation")
    weights = inception_weights
    reference, samples_dir = root / "reference", root / "samples_png"
    reference.mkdir()
    samples_dir.mkdir()
    rng = np.random.default_rng(1)
    samples = []
    for i in range(12):
        photo = skimage_rgb(["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry"][i % 5])
        top, left = rng.integers(0, photo.shape[0] - 64, size=2), rng.integers(0, photo.shape[1] - 64, size=2)
        Image.fromarray(np.ascontiguousarray(photo[top[0] : top[0] + 64, left[0] : left[0] + 64])).save(reference / f"{i:02d}.png")
        buffer = io.BytesIO()  # a "generator" whose samples are other crops, JPEG-degraded
        Image.fromarray(np.ascontiguousarray(photo[top[1] : top[1] + 64, left[1] : left[1] + 64])).save(buffer, "JPEG", quality=30)
        sample = np.asarray(Image.open(buffer).convert("RGB"))
        samples.append(sample)
        Image.fromarray(sample).save(samples_dir / f"{i:02d}.png")
    np.savez(root / "samples.npz", arr_0=np.stack(samples))
    env = {**os.environ, "VTBENCH_WEIGHTS_INCEPTION_V3_COMPAT": str(weights), "VTBENCH_HOME": str(root / "home")}
    return {"root": root, "weights": weights, "reference": reference, "samples_png": samples_dir, "env": env}


def test_generation_metrics_equal_torch_fidelity_and_reuse_the_reference_cache(setup: dict) -> None:
    import torch_fidelity

    root, env = setup["root"], setup["env"]
    args = [
        "-g",
        root / "samples.npz",
        "--reference",
        setup["reference"],
        "-m",
        "fid",
        "-m",
        "kid",
        "-m",
        "isc",
        "--expected-samples",
        "12",
    ]
    first = run_cli("run", *args, "--out", root / "out1", env=env)
    assert "ranked by fid" in first.stdout
    record = json.loads((root / "out1" / "samples__reference.json").read_text())
    assert record["task"] == "generation" and record["samples"]["evaluated"] == 12
    assert record["protocol"]["reference_cache"]["inception-v3-compat"] == "miss"
    assert record["samples"]["reference"] == {"evaluated": 12, "failed": 0}
    expected = torch_fidelity.calculate_metrics(
        input1=str(setup["samples_png"]), input2=str(setup["reference"]), fid=True, kid=True, isc=True, kid_subset_size=12,
        cuda=False, cache=False, verbose=False, feature_extractor_weights_path=str(setup["weights"]),
    )  # fmt: skip
    metrics = record["metrics"]
    assert metrics["fid"]["value"] == pytest.approx(expected["frechet_inception_distance"], rel=1e-3)
    assert metrics["kid"]["value"] == pytest.approx(expected["kernel_inception_distance_mean"], rel=1e-3, abs=1e-6)
    assert metrics["isc"]["value"] == pytest.approx(expected["inception_score_mean"], rel=1e-4)

    from vtbench.engine import GenerationConfig, evaluate

    with pytest.MonkeyPatch.context() as patch:  # the second run in-process: no interpreter start-up to pay
        for key in ("VTBENCH_WEIGHTS_INCEPTION_V3_COMPAT", "VTBENCH_HOME"):
            patch.setenv(key, env[key])
        config = GenerationConfig(str(root / "samples.npz"), str(setup["reference"]), metrics=["fid", "kid", "isc"], expected_samples=12)
        again = evaluate(config, root / "out2")
    assert again.protocol.reference_cache["inception-v3-compat"] == "hit"
    assert again.value("fid") == metrics["fid"]["value"]


def test_reference_statistics_export_and_import(setup: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from vtbench.engine import GenerationConfig, evaluate
    from vtbench.errors import VtbenchError

    root, env = setup["root"], setup["env"]
    run_cli("reference-stats", setup["reference"], "--out", root / "stats.npz", env=env)
    with np.load(root / "stats.npz") as stats:  # no pickle: the provenance is JSON text
        assert stats["mu"].shape == (2048,) and stats["sigma"].shape == (2048, 2048)
        provenance = json.loads(stats["provenance"].item())
    assert provenance["n_images"] == 12 and provenance["preprocessing"]["mode"] == "none" and provenance["manifest_sha256"]
    assert provenance["extractor"]["weights"][0]["sha256"] == weights.sha256_file(setup["weights"])
    run_cli("reference-stats", setup["reference"], "--protocol", "adm-gfid-256", "--limit", "4", "--out", root / "adm.npz", env=env)
    with np.load(root / "adm.npz") as stats:  # a generation protocol's crop, as a generation run reads its reference
        provenance = json.loads(stats["provenance"].item())
    assert provenance["protocol"] == "adm-gfid-256" and provenance["n_images"] == 4
    assert provenance["preprocessing"] == {
        "resolution": 256,
        "mode": "adm-center-crop",
        "filter": "bicubic",
        "library": provenance["preprocessing"]["library"],
    }
    for key in ("VTBENCH_WEIGHTS_INCEPTION_V3_COMPAT", "VTBENCH_HOME"):
        monkeypatch.setenv(key, env[key])
    samples = str(setup["samples_png"])
    from_stats = evaluate(GenerationConfig(samples, str(root / "stats.npz"), metrics=["fid"]), root / "from-stats")
    from_images = evaluate(GenerationConfig(samples, str(setup["reference"]), metrics=["fid"]), root / "from-images")
    assert from_stats.value("fid") == pytest.approx(from_images.value("fid"), rel=1e-6)
    assert from_stats.dataset.reference["sha256"] == weights.sha256_file(root / "stats.npz")
    with pytest.raises(VtbenchError, match="FID only"):
        evaluate(GenerationConfig(samples, str(root / "stats.npz"), metrics=["kid"]), root / "x")


def test_generation_refuses_wrong_counts_and_paired_metrics(setup: dict) -> None:
    root, env = setup["root"], setup["env"]
    result = run_cli("run", "-g", root / "samples.npz", "--reference", setup["reference"], "-m", "fid", "--expected-samples", "50",
                     "--out", root / "y", env=env, check=2)  # fmt: skip
    assert "holds 12 samples, 50 were expected" in result.stderr
    result = run_cli(
        "run", "-g", root / "samples.npz", "--reference", setup["reference"], "-m", "psnr", "--out", root / "z", env=env, check=2
    )
    assert "psnr compare image pairs" in result.stderr
