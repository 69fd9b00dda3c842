"""Varying resolution: the pad and tile aspect policies, checked against a hand-made
numpy pipeline (pad with edge replication, cut tiles, code each, stitch, crop)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio

from conftest import load_json, run_cli, skimage_rgb
from vtbench.engine import RunConfig, evaluate
from vtbench.images import Preprocessing
from vtbench.schema import per_image_path
from vtbench.tokenizers import create_tokenizer


@pytest.fixture(scope="module")
def varying_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three real photographs in landscape, portrait and odd sizes."""
    root = tmp_path_factory.mktemp("varying")
    for name, size in (("astronaut", (200, 130)), ("chelsea", (90, 150)), ("coffee", (173, 101))):
        Image.fromarray(skimage_rgb(name)).resize(size, Image.Resampling.BICUBIC).save(root / f"{name}.png")
    return root


def code(tokenizer_name: str, array: np.ndarray) -> np.ndarray:
    """One uint8 (H, W, 3) array through a tokenizer, back to uint8."""
    tokenizer = create_tokenizer(tokenizer_name)
    batch = torch.from_numpy(array).permute(2, 0, 1)[None].float() / 255
    recon = tokenizer.decode(tokenizer.encode(batch))
    return (recon[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def per_image(out: Path, run: str) -> dict[str, dict[str, str]]:
    with open(per_image_path(out, run), newline="") as handle:
        return {row["id"]: row for row in csv.DictReader(handle)}


def test_pad_keeps_the_aspect_and_scores_only_the_content(varying_folder: Path, tmp_path: Path) -> None:
    config = RunConfig("jpeg-q25", str(varying_folder), metrics=["psnr"], preprocessing=Preprocessing(128, "pad"), num_workers=0)
    record = evaluate(config, tmp_path)
    assert record.protocol.evaluation_sizes == {"128x83": 1, "77x128": 1, "128x75": 1}
    assert "canvas" in record.protocol.tokenizer_input
    rows = per_image(tmp_path, config.run_name)
    for name in ("astronaut", "chelsea", "coffee"):
        content = np.asarray(Preprocessing(128, "pad").apply(Image.open(varying_folder / f"{name}.png").convert("RGB")))
        height, width = content.shape[:2]
        top, left = (128 - height) // 2, (128 - width) // 2
        canvas = np.pad(content, ((top, 128 - height - top), (left, 128 - width - left), (0, 0)), mode="edge")
        expected = code("jpeg-q25", canvas)[top : top + height, left : left + width]
        assert float(rows[f"{name}.png"]["psnr"]) == pytest.approx(peak_signal_noise_ratio(content, expected), rel=1e-5)
        assert rows[f"{name}.png"]["eval_size"] == f"{width}x{height}"


def test_tile_codes_each_tile_at_the_native_size_and_stitches(varying_folder: Path, tmp_path: Path) -> None:
    config = RunConfig("resample-x4", str(varying_folder), metrics=["psnr"], preprocessing=Preprocessing(64, "tile"), num_workers=0)
    record = evaluate(config, tmp_path)
    assert record.protocol.evaluation_sizes == {"200x130": 1, "90x150": 1, "173x101": 1}
    rows = per_image(tmp_path, config.run_name)
    for name in ("astronaut", "chelsea", "coffee"):
        image = np.asarray(Image.open(varying_folder / f"{name}.png").convert("RGB"))
        height, width = image.shape[:2]
        tiles_y, tiles_x = -(-height // 64), -(-width // 64)
        extended = np.pad(image, ((0, tiles_y * 64 - height), (0, tiles_x * 64 - width), (0, 0)), mode="edge")
        stitched = np.zeros_like(extended)
        for y in range(tiles_y):
            for x in range(tiles_x):
                tile = extended[y * 64 : (y + 1) * 64, x * 64 : (x + 1) * 64]
                stitched[y * 64 : (y + 1) * 64, x * 64 : (x + 1) * 64] = code("resample-x4", tile)
        row = rows[f"{name}.png"]
        assert float(row["psnr"]) == pytest.approx(peak_signal_noise_ratio(image, stitched[:height, :width]), rel=1e-5)
        assert float(row["tokens"]) == tiles_y * tiles_x * 16 * 16 * 3  # every tile stores its 16x16x3 subpixels
        assert float(row["bpp"]) == pytest.approx(8 * tiles_y * tiles_x * 768 / (height * width))


def test_pad_maps_text_boxes_by_the_aspect_kept_scale() -> None:
    policy = Preprocessing(256, "pad")
    assert policy.map_box((100, 50, 300, 90), (1024, 512)) == pytest.approx((25, 12.5, 75, 22.5))
    assert Preprocessing(256, "tile").map_box((100, 50, 300, 90), (1024, 512)) == (100, 50, 300, 90)
    assert policy.apply(Image.new("RGB", (1024, 512))).size == (256, 128)


def test_a_recipe_dataset_can_override_the_aspect_policy(tmp_path: Path) -> None:
    from vtbench.errors import RecipeError
    from vtbench.recipe import load_recipe

    path = tmp_path / "r.yaml"
    path.write_text(
        "tokenizers: [jpeg-q50]\n"
        "datasets: [{name: samples, label: square}, {name: samples, label: padded, preprocessing: {mode: pad}}]\n"
        "preprocessing: {resolution: 64, filter: lanczos}\n"
    )
    square, padded = (run.preprocessing for run in load_recipe(path).runs())
    assert square == Preprocessing(64, "center-crop", "lanczos") and padded == Preprocessing(64, "pad", "lanczos")
    path.write_text("tokenizers: [jpeg-q50]\ndatasets: [{name: samples, preprocessing: {mode: squash}}]\n")
    with pytest.raises(RecipeError, match=r"datasets\[0\].*'squash'"):
        load_recipe(path)


def test_imagenet_val_folder_with_the_adm_crop_says_when_it_is_incomplete(photo_folder: Path, tmp_path: Path) -> None:
    result = run_cli(
        "run", "-t", "jpeg:quality=30", "-d", f"imagenet-val:root={photo_folder}", "-m", "psnr", "--limit", "2",
        "--resolution", "32", "--resize-mode", "adm-center-crop", "--workers", "0", "--out", tmp_path,
    )  # fmt: skip
    assert "not the 50,000 of ImageNet val" in " ".join(result.stdout.split())
    record = load_json(next(tmp_path.glob("*.json")))
    assert record["tokenizer"]["options"]["quality"] == 30
    assert record["protocol"]["evaluation_sizes"] == {"32x32": 2}
    assert record["dataset"]["expected_images"] == 50_000 and "12 images found" in record["dataset"]["warnings"][0]
