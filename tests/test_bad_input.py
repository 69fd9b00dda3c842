"""Bad input gets a clear message naming the file and the problem, and loses nothing."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli, skimage_rgb


@pytest.fixture(scope="module")
def messy_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real photographs in every awkward mode and size, plus broken files."""
    root = tmp_path_factory.mktemp("messy")
    photo = Image.fromarray(skimage_rgb("astronaut")).resize((120, 100))
    photo.save(root / "rgb.png")
    photo.convert("L").save(root / "gray.png")
    rgba = photo.convert("RGBA")
    rgba.putalpha(128)
    rgba.save(root / "rgba.png")
    photo.convert("P", palette=Image.Palette.ADAPTIVE).save(root / "palette.png")
    photo.convert("CMYK").save(root / "cmyk.jpg")
    sixteen = (np.asarray(photo.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(sixteen).save(root / "gray16.png")
    Image.new("RGB", (1, 1), (200, 10, 10)).save(root / "one_pixel.png")
    Image.new("RGB", (10000, 10000), (30, 60, 90)).save(root / "huge.png")
    data = (root / "rgb.png").read_bytes()
    (root / "truncated.png").write_bytes(data[: len(data) // 2])
    (root / "corrupt.jpg").write_bytes(b"this is not a jpeg at all")
    (root / "empty.png").write_bytes(b"")
    return root


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as handle:
        return {row["id"]: row for row in csv.DictReader(handle)}


def test_bad_files_are_recorded_and_skipped(messy_folder: Path, tmp_path: Path) -> None:
    result = run_cli("run", "-t", "jpeg-q50", "-d", messy_folder, "--resolution", "64", "--out", tmp_path)
    assert "3 of 11 images failed" in result.stdout
    name = messy_folder.name
    record = json.loads((tmp_path / f"jpeg-q50__{name}.json").read_text())
    assert record["samples"] == {
        "requested": 11,
        "evaluated": 8,
        "failed": 3,
        "failures": record["samples"]["failures"],
        "failures_truncated": False,
    }
    failures = {f["id"]: f["error"] for f in record["samples"]["failures"]}
    assert set(failures) == {"corrupt.jpg", "empty.png", "truncated.png"}
    assert "truncated" in failures["truncated.png"] or "corrupt" in failures["truncated.png"]
    assert "empty file" in failures["empty.png"]
    rows = _rows(tmp_path / f"jpeg-q50__{name}.images.csv")
    assert rows["huge.png"]["source_size"] == "10000x10000" and rows["huge.png"]["eval_size"] == "64x64"
    assert rows["one_pixel.png"]["status"] == "ok"
    assert rows["corrupt.jpg"]["status"] == "failed" and rows["corrupt.jpg"]["psnr"] == ""
    assert record["metrics"]["psnr"]["n"] == 8


def test_strict_fails_on_the_first_bad_file_and_names_it(messy_folder: Path, tmp_path: Path) -> None:
    result = run_cli("run", "-t", "identity", "-d", messy_folder, "--resolution", "32", "--strict", "--out", tmp_path, check=2)
    assert "corrupt.jpg" in result.stderr and "--strict" in result.stderr


def test_tiny_images_at_native_size_fail_by_name_not_the_run(messy_folder: Path, tmp_path: Path) -> None:
    folder = tmp_path / "native"
    folder.mkdir()
    for name in ("one_pixel.png", "rgb.png", "gray16.png"):
        (folder / name).write_bytes((messy_folder / name).read_bytes())
    run_cli("run", "-t", "identity", "-d", folder, "--resize-mode", "none", "-m", "ssim", "--out", tmp_path / "out")
    record = json.loads(next((tmp_path / "out").glob("*.json")).read_text())
    failures = {f["id"]: f for f in record["samples"]["failures"]}
    assert failures["one_pixel.png"]["stage"] == "size"
    assert "1x1" in failures["one_pixel.png"]["error"] and "ssim" in failures["one_pixel.png"]["error"]
    assert record["metrics"]["ssim"]["value"] == pytest.approx(1.0)


def test_empty_folder_and_missing_folder_are_clear_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    result = run_cli("run", "-t", "identity", "-d", empty, "--out", tmp_path / "out", check=2)
    assert f"no images found in {empty}" in result.stderr
    result = run_cli("run", "-t", "identity", "-d", tmp_path / "missing", "--out", tmp_path / "out", check=2)
    assert "missing" in result.stderr and "no such folder" in result.stderr


def test_unknown_tokenizer_on_the_command_line(tmp_path: Path) -> None:
    result = run_cli("run", "-t", "webp-q55", "-d", "samples", "--out", tmp_path, check=2)
    assert "unknown tokenizer 'webp-q55'" in result.stderr and "webp-q50" in result.stderr
    assert "Traceback" not in result.stderr


def test_nan_reconstructions_are_per_image_failures(plugin_env: dict[str, str], tmp_path: Path) -> None:
    run_cli("run", "-t", "test-nan", "-d", "samples", "--resolution", "32", "--out", tmp_path, env=plugin_env)
    record = json.loads((tmp_path / "test-nan__samples.json").read_text())
    failed = {f["id"] for f in record["samples"]["failures"]}
    assert failed and record["samples"]["evaluated"] == 14 - len(failed)
    assert all("NaN" in f["error"] and f["stage"] == "tokenizer" for f in record["samples"]["failures"])
    assert record["metrics"]["psnr"]["value"] == 100.0 and record["metrics"]["psnr"]["details"]["images_at_ceiling"] > 0


def test_wrong_shape_is_a_contract_error_naming_the_tokenizer(plugin_env: dict[str, str], tmp_path: Path) -> None:
    result = run_cli("run", "-t", "test-wrong-shape", "-d", "samples", "--resolution", "32", "--out", tmp_path, env=plugin_env, check=2)
    assert "test-wrong-shape" in result.stderr and "(8, 3, 16, 16)" in result.stderr and "(8, 3, 32, 32)" in result.stderr


def test_multi_frame_files_dangling_links_and_formula_names(tmp_path: Path) -> None:
    """An animated GIF is scored on its first frame and the record says so; a dangling
    symlink is a failed image, not a silently smaller dataset; an id a spreadsheet would
    run as a formula is neutralised in the CSV; an undefined number is null with a reason."""
    folder = tmp_path / "images"
    folder.mkdir()
    photo = Image.fromarray(skimage_rgb("coffee")).resize((48, 48))
    photo.save(folder / "plain.png")
    photo.save(folder / "=1+2;cmd.png")
    frames = [photo, photo.rotate(90), photo.rotate(180)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:])
    (folder / "gone.png").symlink_to(tmp_path / "nowhere.png")
    run_cli("run", "-t", "jpeg-q50", "-d", folder, "-m", "psnr", "-m", "codebook-usage", "--out", tmp_path / "out")
    record = json.loads((tmp_path / "out" / "jpeg-q50__images.json").read_text())
    assert record["samples"]["requested"] == 4 and record["samples"]["failed"] == 1
    assert record["samples"]["failures"][0]["id"] == "gone.png" and "cannot read file" in record["samples"]["failures"][0]["error"]
    assert record["samples"]["notes"] == {"multi-frame files: the first frame was used": ["animated.gif (3 frames)"]}
    ids = [row["id"] for row in csv.DictReader((tmp_path / "out" / "jpeg-q50__images.images.csv").open())]
    assert "'=1+2;cmd.png" in ids and "=1+2;cmd.png" not in ids
    usage = record["metrics"]["codebook-usage"]  # JPEG has no codebook ids: undefined
    text = (tmp_path / "out" / "jpeg-q50__images.json").read_text()
    assert usage["value"] is None and usage["status"] == "undefined" and "nan" in usage["reason"] and '"nan"' not in text


def test_an_unreadable_file_or_a_failing_extractor_is_one_failed_image(photo_folder: Path, tmp_path: Path, monkeypatch) -> None:
    """EIO on one file (in the content-hash pass and in loading) and an extractor that raises on
    one image: each is that image's failure, recorded, and the run finishes."""
    import errno

    import vtbench
    from vtbench.engine.features import SharedFeatures
    from vtbench.images import Preprocessing

    read_bytes, features = Path.read_bytes, SharedFeatures.__call__

    def failing_read(self: Path) -> bytes:
        if self.name == "coffee.png":
            raise OSError(errno.EIO, "Input/output error")
        return read_bytes(self)

    def failing_features(self, items, originals, reconstructions):  # noqa: ANN001
        if any(item.id.endswith("rocket_small.jpg") for item in items):
            raise RuntimeError("extractor broke on this image")
        return features(self, items, originals, reconstructions)

    monkeypatch.setattr(Path, "read_bytes", failing_read)
    monkeypatch.setattr(SharedFeatures, "__call__", failing_features)
    config = vtbench.RunConfig("jpeg-q50", str(photo_folder), metrics=["psnr", "fd-efficientnet-lite0"], preprocessing=Preprocessing(64),
                               num_workers=0, batch_size=4)  # fmt: skip
    record = vtbench.evaluate(config, tmp_path)
    failures = {f.id: f for f in record.samples.failures}
    assert record.samples.evaluated == 10 and set(failures) == {"b/coffee.png", "rocket_small.jpg"}
    assert "Input/output error" in failures["b/coffee.png"].error and failures["b/coffee.png"].stage == "load"
    assert failures["rocket_small.jpg"].stage == "features" and "extractor broke" in failures["rocket_small.jpg"].error
    assert record.protocol.reference_cache["efficientnet-lite0"].startswith("off (a file could not be hashed")
    assert record.metrics["fd-efficientnet-lite0"].n == 10
