"""ADM-evaluator parity: a reference batch in the ADM layout (``arr_0`` images plus stored
``mu``/``sigma``/``mu_s``/``sigma_s``) is scored as openai/guided-diffusion's
``evaluations/evaluator.py`` scores it, checked against an independent numpy version of the
evaluator's formulas on the same Inception features; and the protocol presets apply their
settings."""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import linalg

from conftest import run_cli, skimage_rgb

ROOT = Path(__file__).resolve().parents[1]


def _crops(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    names = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field"]
    out = []
    for i in range(count):
        photo = skimage_rgb(names[i % len(names)])
        top, left = rng.integers(0, photo.shape[0] - 64), rng.integers(0, photo.shape[1] - 64)
        out.append(photo[top : top + 64, left : left + 64])
    return np.stack(out).astype(np.uint8)


def _random_statistics(dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    factor = rng.normal(size=(dim, 64)) * 0.05
    return rng.normal(size=dim) * 0.1, factor @ factor.T + np.eye(dim) * 1e-3


@pytest.fixture(scope="module")
def adm(tmp_path_factory: pytest.TempPathFactory, inception_weights: Path) -> dict:
    root = tmp_path_factory.mktemp("adm")
    weights = inception_weights
    mu, sigma = _random_statistics(2048, 1)
    mu_s, sigma_s = _random_statistics(2023, 2)
    np.savez(root / "VIRTUAL_test_labeled.npz", arr_0=_crops(12, 0), mu=mu, sigma=sigma, mu_s=mu_s, sigma_s=sigma_s)
    samples = root / "samples"
    samples.mkdir()
    for i, crop in enumerate(_crops(10, 1)):
        Image.fromarray(crop).save(samples / f"{i:03d}.png")
    env = {**os.environ, "VTBENCH_WEIGHTS_INCEPTION_V3_COMPAT": str(weights), "VTBENCH_HOME": str(root / "home")}
    out = root / "out"
    run_cli("run", "-g", samples, "--reference", root / "VIRTUAL_test_labeled.npz", "--protocol", "adm-gfid-256",
            "--resize-mode", "none", "--expected-samples", "10", "--out", out, env=env)  # fmt: skip
    record = json.loads(next(out.glob("*.json")).read_text())
    return {"root": root, "weights": weights, "samples": samples, "record": record, "env": env,
            "stats": {"mu": mu, "sigma": sigma, "mu_s": mu_s, "sigma_s": sigma_s}}  # fmt: skip


@functools.cache
def _features(path: Path, weights: Path) -> dict[str, np.ndarray]:
    import torch

    from vtbench import weights as store
    from vtbench.engine import create_dataset
    from vtbench.engine.features import dataset_features
    from vtbench.features import EXTRACTORS
    from vtbench.images import Preprocessing

    os.environ["VTBENCH_WEIGHTS_INCEPTION_V3_COMPAT"] = str(weights)
    try:
        extractor = EXTRACTORS.create("inception-v3-compat", located={"inception-v3-compat": store.locate("inception-v3-compat")},
                                      device=torch.device("cpu"))  # fmt: skip
        features, _ = dataset_features(create_dataset(str(path), {}), Preprocessing(mode="none"), extractor, use_cache=False)
    finally:
        del os.environ["VTBENCH_WEIGHTS_INCEPTION_V3_COMPAT"]
    return {name: value.double().numpy() for name, value in features.items()}


def _evaluator_fid(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """FIDStatistics.frechet_distance of the ADM evaluator: |mu1 - mu2|² + tr S1 + tr S2 - 2 tr sqrt(S1 S2).
    tr sqrt(S1 S2) is taken from the eigenvalues of S2^1/2 S1 S2^1/2 (the same number; scipy's
    ``sqrtm``, which the evaluator calls, is inaccurate when S1 is rank-deficient, as with 10
    samples in 2048 dimensions, and warns so)."""
    values, vectors = linalg.eigh(sigma2)
    root = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    trace_sqrt = np.sqrt(np.clip(linalg.eigvalsh(root @ sigma1 @ root), 0, None)).sum()
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)


def _evaluator_inception_score(logits: np.ndarray, split_size: int = 5000) -> float:
    preds = np.exp(logits - logits.max(axis=1, keepdims=True))
    preds /= preds.sum(axis=1, keepdims=True)
    scores = []
    for i in range(0, len(preds), split_size):
        part = preds[i : i + split_size]
        kl = part * (np.log(part) - np.log(np.expand_dims(np.mean(part, 0), 0)))
        scores.append(np.exp(np.mean(np.sum(kl, 1))))
    return float(np.mean(scores))


def _tensorflow_row_norms(x16: np.ndarray) -> np.ndarray:
    """``tf.reduce_sum(tf.square(x16), 1)`` for 2048-d float16 rows as TensorFlow's CPU kernel
    adds them: each square rounded to float16; each 1024-wide half summed into 32 float16 lanes,
    the lanes folded 8 at a time ((0+1)+2)+3 and the 8 left added pairwise in float32, rounded
    once; the two halves added in float16."""
    f16, f32 = np.float16, np.float32
    squares = (x16.astype(f32) ** 2).astype(f16)

    def half_sum(part: np.ndarray) -> np.ndarray:
        lanes = np.zeros((len(part), 32), f16)
        for start in range(0, part.shape[1], 32):
            lanes = (lanes.astype(f32) + part[:, start : start + 32]).astype(f16)
        folded = lanes[:, :8]
        for q in (1, 2, 3):
            folded = (folded.astype(f32) + lanes[:, 8 * q : 8 * q + 8]).astype(f16)
        pairs = folded.astype(f32)
        pairs = pairs[:, :4] + pairs[:, 4:]
        pairs = pairs[:, :2] + pairs[:, 2:]
        return (pairs[:, 0] + pairs[:, 1]).astype(f16)

    assert x16.shape[1] == 2048
    return (half_sum(squares[:, :1024]).astype(f32) + half_sum(squares[:, 1024:])).astype(f16)


def _evaluator_distances(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The evaluator's ``DistanceBlock`` in numpy float16: ``max(|u|² - 2 u·v + |v|², 0)``, every
    operation rounded to float16 (dot products summed in float64, then rounded to float32 and float16; float16 path only)."""
    f16, f32 = np.float16, np.float32
    u16, v16 = u.astype(f16), v.astype(f16)
    dots = (u16.astype(np.float64) @ v16.astype(np.float64).T).astype(f32).astype(f16)
    twice = (2 * dots.astype(f32)).astype(f16)
    first = (_tensorflow_row_norms(u16).astype(f32)[:, None] - twice).astype(f16)
    distances = np.maximum((first.astype(f32) + _tensorflow_row_norms(v16)[None, :]).astype(f16), 0)
    assert np.isfinite(distances).all()
    return distances.astype(f32)


def _evaluator_precision_recall(ref: np.ndarray, sample: np.ndarray, k: int = 3) -> tuple[float, float]:
    """The evaluator's compute_prec_recall: radii from each set's own distances (4th smallest),
    precision and recall both read off one D(ref, sample)."""
    ref_radii = np.partition(_evaluator_distances(ref, ref), k, axis=1)[:, k]
    sample_radii = np.partition(_evaluator_distances(sample, sample), k, axis=1)[:, k]
    distances = _evaluator_distances(ref, sample)
    precision = np.mean(np.any(distances <= ref_radii[:, None], axis=0))
    recall = np.mean(np.any(distances <= sample_radii[None, :], axis=1))
    return float(precision), float(recall)


def test_precision_and_recall_are_the_evaluators_own_as_tensorflow_computes_them() -> None:
    """Against the evaluator's DistanceBlock run in TensorFlow (2.21, CPU) on the same features
    (benchmarks/adm_manifold_parity.py writes the file): the float16 norms bit for bit, the
    distances but for the rare entry where TensorFlow's float32 summation order crosses a float16
    rounding boundary, and precision and recall exactly. vtbench's arithmetic before (norms
    squared and summed in float32, rounded once) gives recall 0.8667 here, the evaluator 0.8633."""
    import torch

    from vtbench.metrics.adm_manifold import adm_precision_recall, row_sums, squared_distances

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from adm_manifold_parity import features

    golden = np.load(ROOT / "tests" / "data" / "adm_evaluator_golden.npz")
    seed = int(golden["seed"])
    ref = features(str(golden["kind"]), int(golden["reference"]), seed)
    sample = features(str(golden["kind"]), int(golden["samples"]), seed + 1)
    ref_t, sample_t = torch.from_numpy(ref), torch.from_numpy(sample)
    tensorflow_norms = golden["norms"].view(np.uint16)
    assert np.array_equal(row_sums(ref_t.half().float().square().half()).numpy().view(np.uint16), tensorflow_norms)
    assert np.array_equal(_tensorflow_row_norms(ref.astype(np.float16)).view(np.uint16), tensorflow_norms)
    tensorflow_distances = golden["D"].astype(np.float32)
    for distances in (squared_distances(ref_t, sample_t).numpy(), _evaluator_distances(ref, sample)):
        differing = distances != tensorflow_distances
        assert differing.sum() <= 10  # of 90,000; 4 on the machine that made the file
        units = np.spacing(tensorflow_distances[differing].astype(np.float16)).astype(np.float32)
        assert np.all(np.abs(distances[differing] - tensorflow_distances[differing]) <= 2 * units)
    expected = tuple(golden["pr"].tolist())
    assert adm_precision_recall(ref_t, sample_t) == expected == _evaluator_precision_recall(ref, sample)
    assert expected == (0.8233333333333334, 0.8633333333333333)


def test_adm_batch_is_scored_as_the_adm_evaluator_scores_it(adm: dict) -> None:
    record, stats = adm["record"], adm["stats"]
    samples = _features(adm["samples"], adm["weights"])
    reference = _features(adm["root"] / "VIRTUAL_test_labeled.npz", adm["weights"])
    metrics = record["metrics"]
    fid = _evaluator_fid(samples["2048"].mean(0), np.cov(samples["2048"], rowvar=False), stats["mu"], stats["sigma"])
    sfid = _evaluator_fid(samples["spatial"].mean(0), np.cov(samples["spatial"], rowvar=False), stats["mu_s"], stats["sigma_s"])
    assert metrics["fid"]["value"] == pytest.approx(fid, rel=1e-5)
    assert metrics["sfid"]["value"] == pytest.approx(sfid, rel=1e-5)
    assert "stored mu/sigma" in metrics["fid"]["parameters"]["reference_statistics"]
    assert "stored mu_s/sigma_s" in metrics["sfid"]["parameters"]["reference_statistics"]
    assert metrics["isc"]["value"] == pytest.approx(_evaluator_inception_score(samples["logits_unbiased"]), rel=1e-7)  # float32 features
    assert metrics["isc"]["parameters"]["split_size"] == 5000
    precision, recall = _evaluator_precision_recall(reference["2048"], samples["2048"])
    assert (metrics["precision"]["value"], metrics["recall"]["value"]) == (precision, recall)
    assert metrics["precision"]["parameters"]["estimator"] == "adm"
    assert record["config"]["protocol"] == "adm-gfid-256" and record["samples"]["reference"]["evaluated"] == 12


def test_the_batch_images_give_their_own_statistics_when_asked(adm: dict) -> None:
    out = adm["root"] / "computed"
    run_cli("run", "-g", adm["samples"], "--reference", adm["root"] / "VIRTUAL_test_labeled.npz", "-m", "fid", "--protocol",
            "adm-gfid-256", "--resize-mode", "none", "--expected-samples", "10", "--computed-statistics", "--out", out,
            env=adm["env"])  # fmt: skip  # the fixture's settings: the batch images' features come from its cache
    record = json.loads(next(out.glob("*.json")).read_text())
    samples = _features(adm["samples"], adm["weights"])["2048"]
    reference = _features(adm["root"] / "VIRTUAL_test_labeled.npz", adm["weights"])["2048"]
    expected = _evaluator_fid(samples.mean(0), np.cov(samples, rowvar=False), reference.mean(0), np.cov(reference, rowvar=False))
    assert record["metrics"]["fid"]["value"] == pytest.approx(expected, rel=1e-4)
    assert "reference_statistics" not in record["metrics"]["fid"]["parameters"]
    assert record["protocol"]["reference_cache"] == {"inception-v3-compat": "hit"}


def test_every_protocol_applies_its_settings(tmp_path: Path) -> None:
    import vtbench
    from vtbench import protocols

    for name, protocol in protocols.PROTOCOLS.items():
        settings = protocols.apply(name, protocol.task, {"batch_size": 4})
        if protocol.task == "generation":
            config = vtbench.GenerationConfig("samples-reader", "ref.npz", **settings)
            assert config.expected_samples == protocol.settings["expected_samples"] and config.stored_statistics
        else:
            config = vtbench.RunConfig("identity", "samples", **settings)
        assert config.protocol == name and config.batch_size == 4 and config.metrics == protocol.settings["metrics"]
        for key, value in protocol.settings.get("preprocessing", {}).items():
            assert getattr(config.preprocessing, key) == value
        assert config.metric_options == protocol.settings.get("metric_options", {})
    # explicit settings win, key by key for preprocessing
    merged = protocols.apply("rfid-imagenet-256", "reconstruction", {"metrics": ["psnr"], "preprocessing": {"resolution": 128}})
    assert merged["metrics"] == ["psnr"] and merged["preprocessing"] == {"resolution": 128, "mode": "adm-center-crop", "filter": "bicubic"}
    with pytest.raises(vtbench.errors.VtbenchError, match="is for generation runs"):
        protocols.apply("adm-gfid-256", "reconstruction", {})
    listed = json.loads(run_cli("list", "protocols", "--json").stdout)
    assert {row["name"] for row in listed["entries"]} == set(protocols.PROTOCOLS)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("protocol: rfid-imagenet-256\ntokenizers: [jpeg-q50]\ndatasets: [samples]\nmetrics: [psnr]\n")
    run = vtbench.load_recipe(recipe).runs()[0]
    assert run.protocol == "rfid-imagenet-256" and run.metrics == ["psnr"] and run.preprocessing.mode == "adm-center-crop"
    result = run_cli("run", "-t", "jpeg-q50", "-d", "samples", "--protocol", "adm-gfid-256", "--out", tmp_path, check=2)
    assert "protocol 'adm-gfid-256' is for generation runs" in result.stderr


def test_metric_options_on_the_command_line_and_in_recipes(tmp_path: Path) -> None:
    from vtbench.settings import metric_names, metric_options

    given = ["psnr,ssim", "isc:split_size=500", "precision:estimator=adm"]
    assert metric_names(given) == ["psnr", "ssim", "isc", "precision"]
    assert metric_options(given) == {"isc": {"split_size": 500}, "precision": {"estimator": "adm"}}
    recipe = tmp_path / "r.yaml"
    recipe.write_text("tokenizers: [jpeg-q50]\ndatasets: [samples]\nmetrics: [psnr]\nmetric_options: {isc: {splitsize: 5}}\n")
    result = run_cli("validate", "--no-weights", recipe, check=2)
    assert "splitsize" in result.stderr and "split_size" in result.stderr
    result = run_cli("run", "-t", "jpeg-q50", "-d", "samples", "-m", "psnr", "-m", "precision:estimator=exact", "--out", tmp_path, check=2)
    assert "estimator must be torch-fidelity or adm" in result.stderr
    missing = f"clip-score:prompts={tmp_path}/none.txt"  # a component's own missing file: one line, exit 2
    result = run_cli("run", "-g", f"samples-reader:path={tmp_path}", "--reference", "samples", "-m", missing, "--out", tmp_path, check=2)
    assert "metric 'clip-score'" in result.stderr and "none.txt" in result.stderr and "Traceback" not in result.stderr


def test_the_protocol_options_apply_to_the_metrics_run_and_a_batch_without_spatial_statistics_is_refused(adm: dict) -> None:
    root = adm["root"]
    args = ["run", "-g", adm["samples"], "--protocol", "adm-gfid-256", "--resize-mode", "none", "--expected-samples", "10"]
    run_cli(*args, "--reference", root / "VIRTUAL_test_labeled.npz", "-m", "fid,isc", "--out", root / "subset", env=adm["env"])
    record = json.loads(next((root / "subset").glob("*.json")).read_text())
    assert set(record["metrics"]) == {"fid", "isc"} and record["config"]["metric_options"] == {"isc": {"split_size": 5000}}
    with np.load(root / "VIRTUAL_test_labeled.npz") as batch:
        np.savez(root / "no_spatial.npz", arr_0=batch["arr_0"], mu=batch["mu"], sigma=batch["sigma"])
    refused = run_cli(*args, "--reference", root / "no_spatial.npz", "-m", "fid,sfid", "--out", root / "x", env=adm["env"], check=2)
    assert "without mu_s/sigma_s: sfid cannot use stored statistics" in refused.stderr and "--computed-statistics" in refused.stderr
