"""Datasets, image-mode conversion, preprocessing and the sample-reading generator."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import vtbench
from conftest import skimage_rgb
from vtbench.errors import BadImageError, DatasetError
from vtbench.images import Preprocessing, decode_image, read_image, to_rgb


def test_folder_ids_are_sorted_relative_posix_paths(photo_folder) -> None:
    dataset = vtbench.DATASETS.create("folder", root=photo_folder)
    assert dataset.ids == sorted(dataset.ids) and len(dataset) == 12
    assert "a/chelsea.png" in dataset.ids and "astronaut_small.jpg" in dataset.ids
    sample = dataset.load(dataset.ids.index("a/chelsea.png"))
    assert sample.image.size == (96, 80) and sample.image.mode == "RGB" and len(sample.content_sha256) == 64


def test_samples_are_real_photographs() -> None:
    dataset = vtbench.DATASETS.create("samples")
    assert len(dataset) == 14
    sample = dataset.load(dataset.ids.index("astronaut"))
    assert sample.image.size == (512, 512)
    assert np.array_equal(np.asarray(sample.image), skimage_rgb("astronaut"))


def test_empty_folder_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(DatasetError, match="no images found"):
        vtbench.DATASETS.create("folder", root=tmp_path)


def test_mode_conversions_follow_the_recorded_policy() -> None:
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert to_rgb(rgba).getpixel((0, 0)) == (255, 255, 255)  # transparent over white
    half = Image.new("RGBA", (4, 4), (0, 0, 0, 128))
    assert to_rgb(half).getpixel((0, 0)) == (127, 127, 127)
    sixteen = Image.fromarray(np.full((4, 4), 65535, dtype=np.uint16))
    assert to_rgb(sixteen).getpixel((0, 0)) == (255, 255, 255)
    mid = Image.fromarray(np.full((4, 4), 32896, dtype=np.uint16))  # 128 * 257
    assert to_rgb(mid).getpixel((0, 0)) == (128, 128, 128)
    assert to_rgb(Image.new("L", (2, 2), 77)).getpixel((0, 0)) == (77, 77, 77)
    assert to_rgb(Image.new("CMYK", (2, 2), (0, 0, 0, 0))).getpixel((0, 0)) == (255, 255, 255)
    with pytest.raises(BadImageError, match="mode F"):
        to_rgb(Image.new("F", (2, 2)), "x.tif")


def test_exif_orientation_is_applied(tmp_path) -> None:
    image = Image.new("RGB", (30, 10), (10, 20, 30))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    image.save(tmp_path / "rotated.jpg", exif=exif)
    assert read_image(tmp_path / "rotated.jpg").size == (10, 30)


def test_decode_errors_name_the_file() -> None:
    with pytest.raises(BadImageError, match="broken.png: corrupt, truncated or not an image"):
        decode_image(b"\x89PNG\r\n\x1a\nnot really", "broken.png")


@pytest.mark.parametrize("mode", ["center-crop", "adm-center-crop", "resize"])
def test_preprocessing_gives_the_target_square(mode: str) -> None:
    image = Image.fromarray(skimage_rgb("rocket"))  # 640x427
    out = Preprocessing(64, mode, "bicubic").apply(image)
    assert out.size == (64, 64)


def test_adm_center_crop_box_halves_then_bicubic() -> None:
    image = Image.fromarray(skimage_rgb("retina"))  # 1411x1411
    expected = image
    while min(expected.size) >= 2 * 100:
        expected = expected.resize(tuple(x // 2 for x in expected.size), resample=Image.Resampling.BOX)
    expected = expected.resize((100, 100), resample=Image.Resampling.BICUBIC)
    assert np.array_equal(np.asarray(Preprocessing(100, "adm-center-crop").apply(image)), np.asarray(expected))


def test_center_crop_is_torchvisions_resize_and_centre_crop_pixel_for_pixel() -> None:
    """``center-crop`` with a filter is ``Resize(size, filter)`` + ``CenterCrop(size)`` as
    torchvision does them (the longer side truncated: chelsea 451x300 at 256 is resized to
    384x256, not 385x256; offsets rounded), on landscape, portrait and square photographs.
    The record, cache key and run identity name that geometry."""
    from torchvision import transforms

    from vtbench.engine.pipelines import run_identity

    for name, transpose in (("chelsea", False), ("chelsea", True), ("rocket", False), ("hubble_deep_field", True), ("camera", False)):
        image = Image.fromarray(skimage_rgb(name))
        image = image.transpose(Image.Transpose.TRANSPOSE) if transpose else image
        filters = {"bicubic": transforms.InterpolationMode.BICUBIC, "bilinear": transforms.InterpolationMode.BILINEAR,
                   "lanczos": transforms.InterpolationMode.LANCZOS}  # fmt: skip
        for size, filter_name in ((256, "bicubic"), (97, "bilinear"), (224, "lanczos")):
            mode = filters[filter_name]
            expected = transforms.CenterCrop(size)(transforms.Resize(size, interpolation=mode, antialias=True)(image))
            ours = Preprocessing(size, "center-crop", filter_name).apply(image)
            assert np.array_equal(np.asarray(ours), np.asarray(expected)), (name, transpose, size, filter_name)
    crop = Preprocessing(256, "center-crop")
    assert crop.to_dict()["geometry"] == crop.canonical()["geometry"] == "torchvision"
    assert "geometry" not in Preprocessing(256, "adm-center-crop").to_dict()  # guided-diffusion's own formula, unchanged
    config = vtbench.RunConfig("jpeg-q50", "samples", preprocessing=crop)
    assert run_identity(config, {})["geometry"] == "torchvision"  # records made with the old rounding are not reused


def test_var_center_crop_is_the_var_release_evaluation_transform() -> None:
    """VAR's ``utils/data.py`` evaluates on ``Resize(round(1.125 * R), LANCZOS)`` then
    ``CenterCrop(R)``: ``var-center-crop`` is that, pixel for pixel, whatever ``--filter`` says."""
    from torchvision import transforms

    for name, size in (("chelsea", 256), ("coffee", 256), ("astronaut", 256), ("rocket", 128)):
        image = Image.fromarray(skimage_rgb(name))
        release = transforms.Compose([transforms.Resize(round(1.125 * size), interpolation=transforms.InterpolationMode.LANCZOS),
                                      transforms.CenterCrop((size, size))])  # fmt: skip
        ours = Preprocessing(size, "var-center-crop", "bicubic").apply(image)
        assert np.array_equal(np.asarray(ours), np.asarray(release(image))), name
    square = Preprocessing(256, "var-center-crop")
    assert not square.leaves_unchanged(256, 256) and square.canonical()["filter"] == "lanczos"


def test_native_resolution_fills_in_only_when_unset() -> None:
    assert Preprocessing().resolved(256).resolution == 256
    assert Preprocessing(128).resolved(256).resolution == 128
    assert Preprocessing(mode="none").resolved(256).resolution is None


def test_sample_reader_reads_an_adm_npz(tmp_path) -> None:
    array = np.stack([skimage_rgb("astronaut")[:32, :32], skimage_rgb("coffee")[:32, :32], skimage_rgb("rocket")[:32, :32]])
    np.savez(tmp_path / "samples.npz", arr_0=array)
    generator = vtbench.GENERATORS.create("samples-reader", path=tmp_path / "samples.npz")
    assert generator.num_samples == 3
    batches = list(generator.generate(batch_size=2))
    assert [b.shape for b in batches] == [(2, 3, 32, 32), (1, 3, 32, 32)]
    assert np.array_equal((batches[1][0].permute(1, 2, 0) * 255).round().byte().numpy(), array[2])


def test_sample_reader_rejects_bad_npz(tmp_path) -> None:
    np.savez(tmp_path / "bad.npz", images=np.zeros((2, 8, 8, 3), dtype=np.uint8))
    with pytest.raises(DatasetError, match="no arr_0"):
        vtbench.GENERATORS.create("samples-reader", path=tmp_path / "bad.npz")
    np.savez(tmp_path / "float.npz", arr_0=np.zeros((2, 8, 8, 3), dtype=np.float32))
    with pytest.raises(DatasetError, match="uint8"):
        vtbench.GENERATORS.create("samples-reader", path=tmp_path / "float.npz")
