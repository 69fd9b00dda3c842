"""Worst-case galleries: the right images, their reconstructions equal to what the run scored
(saved or recomputed), the zoom on the worst window, and clear errors for missing inputs."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio

from conftest import run_cli
from vtbench.gallery import build_gallery, largest_window


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, photo_folder: Path) -> Path:
    out = tmp_path_factory.mktemp("gallery")
    common = ["-d", str(photo_folder), "--resolution", "64", "-m", "psnr,ssim"]
    run_cli("run", "-t", "jpeg-q25", *common, "--save-reconstructions", "--out", out / "saved")
    run_cli("run", "-t", "jpeg-q25", "-t", "webp-q25", *common, "--out", out / "plain")
    return out


def _rows(record: Path) -> list[dict[str, str]]:
    with open(record.with_name(record.name.replace(".json", ".images.csv")), newline="") as handle:
        return [row for row in csv.DictReader(handle) if row["status"] == "ok"]


def test_the_worst_images_with_the_reconstructions_the_run_scored(runs: Path) -> None:
    record = next((runs / "plain").glob("jpeg-q25__*.json"))
    entries = build_gallery(record, "psnr", k=3)
    rows = sorted(_rows(record), key=lambda row: float(row["psnr"]))
    assert [e.image_id for e in entries] == [row["id"] for row in rows[:3]]  # lowest PSNR first
    for entry, row in zip(entries, rows, strict=False):
        # recomputed from the record's tokenizer, dataset and preprocessing: the PSNR the run recorded
        assert peak_signal_noise_ratio(entry.original, entry.reconstructions[0]) == pytest.approx(float(row["psnr"]), abs=1e-4)
        assert entry.original.shape == (64, 64, 3) and entry.values == [float(row["psnr"])]
    saved = build_gallery(next((runs / "saved").glob("jpeg-q25__*.json")), "psnr", k=3)  # read from RUN.recon/
    for a, b in zip(saved, entries, strict=True):
        assert a.image_id == b.image_id and np.array_equal(a.reconstructions[0], b.reconstructions[0])
    best_first = build_gallery(record, "ssim", k=1)  # direction from the record: the lowest SSIM is the worst
    assert best_first[0].image_id == min(_rows(record), key=lambda row: float(row["ssim"]))["id"]


def test_versus_shows_where_two_runs_differ_most_and_the_cli_draws_it(runs: Path, tmp_path: Path) -> None:
    jpeg, webp = next((runs / "plain").glob("jpeg-q25__*.json")), next((runs / "plain").glob("webp-q25__*.json"))
    entries = build_gallery(jpeg, "psnr", k=2, versus=webp)
    gaps = {a["id"]: abs(float(a["psnr"]) - float(b["psnr"])) for a, b in zip(_rows(jpeg), _rows(webp), strict=True)}
    assert [e.image_id for e in entries] == sorted(gaps, key=gaps.get, reverse=True)[:2]
    assert len(entries[0].reconstructions) == 2 and entries[0].labels[1].startswith("webp-q25")
    run_cli("gallery", jpeg, "--versus", webp, "-m", "psnr", "-k", "2", "--out", tmp_path / "g.png")
    with Image.open(tmp_path / "g.png") as image:
        assert image.format == "PNG" and image.width > image.height  # 2 rows of 6 panels


def test_the_zoom_window_is_where_the_error_is_largest() -> None:
    error = np.zeros((64, 48))
    error[40:50, 5:15] = 1.0
    assert largest_window(error, 10) == (40, 5, 10)
    assert largest_window(error) == (34, 0, 16)  # default side 16 (a quarter of 48 is 12, at least 16); first in raster order


def test_missing_inputs_are_named(runs: Path, tmp_path: Path, photo_folder: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(runs / "plain", copy)
    record = next(copy.glob("jpeg-q25__*.json"))
    csv_file = record.with_name(record.name.replace(".json", ".images.csv"))
    error = run_cli("gallery", record, "-m", "lpips-vgg", "--out", tmp_path / "x.png", check=2).stderr
    assert "no per-image 'lpips-vgg' values" in error
    assert "--crop 0" in run_cli("gallery", record, "--crop", "0", "--out", tmp_path / "x.png", check=2).stderr
    csv_file.unlink()
    error = run_cli("gallery", record, "--out", tmp_path / "x.png", check=2).stderr
    assert csv_file.name in error and "missing" in error
