"""`vtbench reproduce`: a preset's paper protocol with its release's evaluation transform,
measured against its reported numbers; the fetch commands when weights or data are missing;
each family's recorded transform pinned against its release's own pipeline on real photos."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from weights_factory import make_llamagen_checkpoint

from conftest import skimage_rgb
from vtbench.errors import VtbenchError
from vtbench.images import Preprocessing
from vtbench.reproduce import plan, verdicts
from vtbench.tokenizers import TOKENIZERS

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")


@pytest.fixture(scope="module")
def imagenet_like(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder laid out as ImageNet val (JPEGs named as the release names them)."""
    folder = tmp_path_factory.mktemp("imagenet-val")
    for index, name in enumerate(PHOTOS, start=1):
        Image.fromarray(skimage_rgb(name)).save(folder / f"ILSVRC2012_val_{index:08d}.JPEG", quality=95)
    return folder


def test_reproduce_runs_the_protocol_and_prints_measured_against_reported(
    cli, imagenet_like: Path, inception_weights: Path, tmp_path: Path
) -> None:
    checkpoint = make_llamagen_checkpoint(tmp_path / "vq_ds16_c2i.pt")
    env = {**os.environ, "VTBENCH_WEIGHTS_LLAMAGEN_VQ_DS16_C2I": str(checkpoint),
           "VTBENCH_WEIGHTS_INCEPTION_V3_COMPAT": str(inception_weights)}  # fmt: skip
    out = tmp_path / "out"
    result = cli("reproduce", "llamagen-vq-ds16-c2i", "--data", imagenet_like, "--limit", 2, "--out", out, env=env, check=None)
    # a made checkpoint is far from the paper's PSNR: outside the smoke tolerance, exit 1 like a failed compare
    assert result.returncode == 1, result.stdout + result.stderr
    assert "llamagen-vq-ds16-c2i: reproduction under rfid-imagenet-256 (smoke run, 2 images)" in " ".join(result.stdout.split())
    assert "ADM center_crop_arr" in result.stdout and "not judged: depends on the sample count (2 images)" in result.stdout
    record = json.loads((out / "llamagen-vq-ds16-c2i__imagenet-val.json").read_text())
    block = record["reproduction"]
    assert block["smoke"] and block["limit"] == 2 and block["protocol"] == "rfid-imagenet-256"
    assert record["protocol"]["preprocessing"]["mode"] == "adm-center-crop" and record["config"]["protocol"] == "rfid-imagenet-256"
    assert set(record["metrics"]) == {"fid", "psnr", "ssim", "bpp", "tokens"}  # what the paper reports, and the cost
    rows = {row["reported_as"]: row for row in block["rows"]}
    assert set(rows) == {"rFID", "PSNR", "SSIM"}
    for key, metric in (("PSNR", "psnr"), ("SSIM", "ssim"), ("rFID", "fid")):
        assert rows[key]["metric"] == metric and rows[key]["measured"] == record["metrics"][metric]["value"]
        assert rows[key]["difference"] == pytest.approx(rows[key]["measured"] - rows[key]["reported"])
    assert rows["PSNR"]["within"] is False and rows["PSNR"]["verdict"] == "outside (smoke)"
    assert "within" not in rows["rFID"]  # FID at 2 images is not compared with one at 50,000
    assert record["samples"]["evaluated"] == 2


def test_verdicts_follow_the_stated_tolerances() -> None:
    full, smoke = plan("llamagen-vq-ds16-c2i"), plan("llamagen-vq-ds16-c2i", limit=100)
    close = {"fid": 2.25, "psnr": 20.85, "ssim": 0.68}  # reported: rFID 2.19, PSNR 20.79, SSIM 0.675
    far = {"fid": 2.6, "psnr": 21.2, "ssim": 0.68}
    assert [r["verdict"] for r in verdicts(full, close, 50_000)] == ["reproduced"] * 3
    assert [r["verdict"] for r in verdicts(full, far, 50_000)] == ["differs", "differs", "reproduced"]
    smoke_rows = verdicts(smoke, far, 100)
    assert [r.get("within") for r in smoke_rows] == [None, True, True]
    short = verdicts(full, far, 10_000)  # an incomplete ImageNet folder without --limit: not the paper's measurement either
    assert [r["verdict"] for r in short] == ["not judged: depends on the sample count (10000 images)", "within (smoke)", "within (smoke)"]
    detailflow = verdicts(plan("detailflow-16"), {"fid": 1.1}, 50_000)  # gFID is a generator's number
    assert [r["verdict"].split(":")[0] for r in detailflow] == ["reproduced", "not measured"]
    with pytest.raises(VtbenchError, match="reports no number a tokenizer run measures .gFID: a generator's number"):
        plan("flextok-d12-d12-in1k")
    with pytest.raises(VtbenchError, match="unknown protocol 'rfid-imagenet-265'. Did you mean: rfid-imagenet-256"):
        plan("titok-l32", protocol="rfid-imagenet-265")
    with pytest.raises(VtbenchError, match="is for reconstruction runs; var-d16 is reproduced by a generation run"):
        plan("var-d16", protocol="rfid-imagenet-256")
    other = plan("titok-l32", protocol="vtbench-reconstruction")  # another protocol; the release's transform stays
    assert other.protocol == "vtbench-reconstruction" and other.settings["preprocessing"] == {"resolution": 256, "mode": "center-crop",
                                                                                               "filter": "bicubic"}  # fmt: skip


def test_a_generator_is_reproduced_under_the_adm_protocol_against_the_reference_batch(tmp_path: Path) -> None:
    from vtbench.reproduce import config

    full = plan("var-d16")
    assert full.task == "generation" and full.protocol == "adm-gfid-256" and full.reported["source"] == "VAR README"
    run = config(full, str(tmp_path / "VIRTUAL_imagenet256_labeled.npz"))
    assert run.generator == "var-d16" and run.expected_samples == 50_000 and run.stored_statistics
    assert run.metrics == ["fid", "sfid", "isc", "precision", "recall"] and run.preprocessing.mode == "adm-center-crop"
    smoke = config(plan("var-d16", limit=8), str(tmp_path / "VIRTUAL_imagenet256_labeled.npz"))
    assert smoke.limit == 8 and smoke.expected_samples is None
    assert [r["verdict"] for r in verdicts(plan("var-d16", limit=8), {"fid": 40.0}, 8)] == [
        "not judged: depends on the sample count (8 images)"
    ]


def test_missing_weights_and_data_print_the_commands_that_fetch_them(cli, tmp_path: Path) -> None:
    result = cli("reproduce", "llamagen-vq-ds16-c2i", "--out", tmp_path, check=2)
    for command in ("vtbench weights fetch llamagen-vq-ds16-c2i", "vtbench weights fetch inception-v3-compat", "ILSVRC2012_img_val.tar"):
        assert command in result.stderr
    assert "vgg16" not in result.stderr  # LlamaGen reports no LPIPS: nothing is fetched for it
    lpips = cli("reproduce", "gigatok-s-s", "--out", tmp_path, check=2)  # reports LPIPS: its VGG16 backbone
    assert "vtbench weights fetch vgg16" in lpips.stderr
    generator = cli("reproduce", "var-d16", check=2)
    assert "vtbench weights fetch var-vqvae" in generator.stderr and "VIRTUAL_imagenet256_labeled.npz" in generator.stderr
    assert "Traceback" not in result.stderr + generator.stderr
    cli("reproduce", "jpeg-q10", check=2)  # nothing reported


def torchvision_eval(resize: int, crop: int, interpolation: str, v2: bool = False):  # noqa: ANN201
    """``Resize(resize)`` of the shorter side (antialiased, as on PIL images) then ``CenterCrop(crop)``."""
    if v2:
        from torchvision.transforms import v2 as transforms
    else:
        from torchvision import transforms

    mode = getattr(transforms.InterpolationMode, interpolation)
    return transforms.Compose([transforms.Resize(resize, interpolation=mode, antialias=True), transforms.CenterCrop(crop)])


def adm_center_crop(image: Image.Image, size: int) -> np.ndarray:
    """guided-diffusion's center_crop_arr (LlamaGen's, GigaTok's and DetailFlow's evaluation crop)."""
    while min(*image.size) >= 2 * size:
        image = image.resize(tuple(x // 2 for x in image.size), resample=Image.BOX)
    scale = size / min(*image.size)
    image = image.resize(tuple(round(x * scale) for x in image.size), resample=Image.BICUBIC)
    array = np.array(image)
    top, left = (array.shape[0] - size) // 2, (array.shape[1] - size) // 2
    return array[top : top + size, left : left + size]


def albumentations_eval(image: Image.Image) -> np.ndarray:
    """IBQ's evaluation: albumentations (1.4.4, as its release pins) SmallestMaxSize + CenterCrop on uint8 RGB."""
    import albumentations

    pipeline = albumentations.Compose([albumentations.SmallestMaxSize(max_size=256), albumentations.CenterCrop(height=256, width=256)])
    return pipeline(image=np.array(image))["image"]


RELEASE_TRANSFORMS = {  # each release's evaluation pipeline as its code writes it, at resolution 256
    "llamagen": lambda image: adm_center_crop(image, 256),
    "gigatok": lambda image: adm_center_crop(image, 256),
    "detailflow": lambda image: adm_center_crop(image, 256),
    "titok": lambda image: np.array(torchvision_eval(256, 256, "BICUBIC")(image)),
    "infinity": lambda image: np.array(torchvision_eval(256, 256, "BICUBIC")(image)),
    "open-magvit2": lambda image: np.array(torchvision_eval(256, 256, "BILINEAR")(image)),
    "maskbit": lambda image: np.array(torchvision_eval(256, 256, "BILINEAR")(image)),
    "flowmo": lambda image: np.array(torchvision_eval(256, 256, "BILINEAR")(image)),
    "bsq-vit": lambda image: np.array(torchvision_eval(256, 256, "LANCZOS", v2=True)(image)),
    "ibq": albumentations_eval,
}


def evaluations() -> dict[str, dict]:
    """Each evaluation entry of presets.yaml with the presets that use it."""
    import yaml

    from vtbench.tokenizers import PRESETS_FILE

    data = yaml.safe_load(PRESETS_FILE.read_text())
    return {name: {"evaluation": evaluation, "presets": [p["name"] for p in data["presets"]
                                                        if p.get("evaluation", p["target"]) == name and "reported" in p]}
            for name, evaluation in data["evaluations"].items()}  # fmt: skip


@pytest.mark.parametrize("name", sorted(RELEASE_TRANSFORMS))
def test_each_releases_recorded_transform_is_its_own_pixel_for_pixel(name: str) -> None:
    recorded = evaluations()[name]
    assert recorded["presets"] and all(TOKENIZERS.get(p).tags["evaluation"]["name"] == name for p in recorded["presets"])
    preprocessing = Preprocessing(256, **recorded["evaluation"]["preprocessing"])
    for photo in ("chelsea", "coffee", "hubble_deep_field"):  # landscape, odd margins, box-halved
        image = Image.fromarray(skimage_rgb(photo))
        assert np.array_equal(np.asarray(preprocessing.apply(image)), RELEASE_TRANSFORMS[name](image)), (name, photo)


def test_every_family_with_a_recorded_transform_is_pinned() -> None:
    assert set(evaluations()) == set(RELEASE_TRANSFORMS)
