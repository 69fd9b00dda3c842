"""The README's main job: the quickstart recipe through the CLI, checked against references."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from conftest import REPO, run_cli, skimage_rgb


def _metric(out: Path, tokenizer: str, name: str) -> float:
    return float(json.loads((out / f"{tokenizer}__samples.json").read_text())["metrics"][name]["value"])


def test_quickstart_prints_a_ranked_table_and_writes_every_record(quickstart: tuple[Path, str]) -> None:
    out, stdout = quickstart
    assert "ranked by psnr" in stdout and "10 record(s) in" in stdout
    assert len(list(out.glob("*__samples.json"))) == 10 and len(list(out.glob("*.images.csv"))) == 10
    assert not (out / ".partial").exists()
    header = run_cli("leaderboard", out, "-f", "latex", "--bd-baseline", "jpeg").stdout.splitlines()[2]
    assert header == (REPO / "results" / "quickstart" / "table.tex").read_text().splitlines()[2]  # the README's paper table's header


def test_quickstart_numbers_are_ordered_as_codecs_behave(quickstart: tuple[Path, str]) -> None:
    out, _ = quickstart
    for codec in ("jpeg", "webp"):
        psnrs = [_metric(out, f"{codec}-q{q}", "psnr") for q in (25, 50, 75, 90)]
        bpps = [_metric(out, f"{codec}-q{q}", "bpp") for q in (25, 50, 75, 90)]
        assert psnrs == sorted(psnrs) and bpps == sorted(bpps)
    assert _metric(out, "identity", "psnr") == 100.0 and _metric(out, "identity", "ssim") == 1.0
    assert _metric(out, "identity", "bpp") == 24.0 and _metric(out, "resample-x4", "bpp") == 1.5


def test_quickstart_per_image_values_match_an_independent_computation(quickstart: tuple[Path, str]) -> None:
    out, _ = quickstart
    with open(out / "jpeg-q50__samples.images.csv", newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["id"] == "coffee")
    image = Image.fromarray(skimage_rgb("coffee"))  # 600x400 -> shorter side 256, centre crop
    scaled = image.resize((384, 256), Image.Resampling.BICUBIC)
    reference = np.asarray(scaled.crop((64, 0, 320, 256)))
    buffer = io.BytesIO()
    Image.fromarray(reference).save(buffer, format="JPEG", quality=50, subsampling="4:2:0")
    decoded = np.asarray(Image.open(buffer).convert("RGB"))
    assert float(row["psnr"]) == pytest.approx(peak_signal_noise_ratio(reference, decoded, data_range=255), abs=1e-4)
    expected_ssim = structural_similarity(
        reference, decoded, channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    assert float(row["ssim"]) == pytest.approx(expected_ssim, abs=1e-4)
    assert float(row["bpp"]) == pytest.approx(len(buffer.getvalue()) * 8 / 256**2)


def test_record_documents_protocol_environment_and_timings(quickstart: tuple[Path, str]) -> None:
    out, _ = quickstart
    record = json.loads((out / "webp-q50__samples.json").read_text())
    assert record["schema"] == "vtbench.run-record" and record["schema_version"] == 4 and record["task"] == "reconstruction"
    assert record["protocol"]["preprocessing"]["resolution"] == 256 and record["protocol"]["evaluation_sizes"] == {"256x256": 6}
    assert record["recipe"]["name"] == "quickstart"
    assert record["metrics"]["psnr"] == {**record["metrics"]["psnr"], "higher_is_better": True, "n": 6, "unit": "dB"}
    assert set(record["timings"]) >= {"encode_s", "decode_s", "metrics_s", "total_s", "images_per_s"}
    assert record["memory"]["peak_rss_mb"] > 0 and record["environment"]["torch"]
    assert len(record["dataset"]["manifest_sha256"]) == 64
    assert record["per_image_file"] == "webp-q50__samples.images.csv"
    # what an auditor needs: the parameters behind each number and the libraries that computed them
    assert record["metrics"]["ssim"]["parameters"] == {**record["metrics"]["ssim"]["parameters"], "sigma": 1.5, "k1": 0.01, "k2": 0.03}
    assert record["metrics"]["psnr"]["parameters"]["ceiling_db"] == 100.0
    assert record["metrics"]["fd-efficientnet-lite0"]["parameters"]["dim"] == 1280
    assert {"torch-fidelity", "lpips", "timm", "scipy"} <= set(record["environment"]["libraries"])
    extractor = record["protocol"]["feature_extractors"][0]
    assert extractor["name"] == "efficientnet-lite0" and extractor["version"].startswith("2")
    # portable: no path of the machine that made it, weights named by file and digest
    assert "/" not in json.dumps(record["protocol"]["weights"]).replace("\\/", "")
    assert record["protocol"]["weights"][0]["file"] == "efficientnet-lite0-57934424.pth"
    with open(out / "webp-q50__samples.images.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["index"] for r in rows] == [str(i) for i in range(6)]
    assert {(r["run"], r["tokenizer"], r["dataset"]) for r in rows} == {("webp-q50__samples", "webp-q50", "samples")}


def test_run_without_a_recipe_and_with_a_limit(tmp_path: Path) -> None:
    run_cli(
        "run", "--tokenizer", "jpeg-q50", "--dataset", "samples", "--metric", "psnr", "--metric", "ssim", "--limit", "3", "--out", tmp_path
    )
    record = json.loads((tmp_path / "jpeg-q50__samples.json").read_text())
    assert record["samples"]["requested"] == 3 and record["metrics"]["psnr"]["n"] == 3
    assert set(record["metrics"]) == {"psnr", "ssim", "bpp", "tokens"}


def test_runner_result_is_independent_of_batch_size(photo_folder: Path, tmp_path: Path) -> None:
    values = []
    for batch_size in (1, 5):
        out = tmp_path / f"b{batch_size}"
        run_cli("run", "-t", "jpeg-q25", "-d", photo_folder, "--resolution", "48", "-b", batch_size, "--out", out)
        metrics = json.loads(next(out.glob("*.json")).read_text())["metrics"]
        values.append({k: v["value"] for k, v in metrics.items()})
    for key in values[0]:
        assert values[0][key] == pytest.approx(values[1][key], abs=1e-5)


def test_save_reconstructions_writes_pngs(tmp_path: Path) -> None:
    run_cli("run", "-t", "resample-x8", "-d", "samples", "--limit", "2", "--resolution", "64", "--save-reconstructions", "--out", tmp_path)
    pngs = sorted((tmp_path / "resample-x8__samples.recon").glob("*.png"))
    assert [p.name for p in pngs] == ["astronaut.png", "brick.png"]
    assert Image.open(pngs[0]).size == (64, 64)
