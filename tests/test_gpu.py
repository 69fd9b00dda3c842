"""On a CUDA machine, a run on the GPU gives the CPU's numbers (skipped without CUDA)."""

from __future__ import annotations

from pathlib import Path

import pytest

import vtbench
from vtbench.images import Preprocessing


@pytest.mark.gpu
def test_cuda_run_matches_cpu_run(photo_folder: Path, tmp_path: Path) -> None:
    values = {}
    for device in ("cpu", "cuda"):
        config = vtbench.RunConfig("jpeg-q50", str(photo_folder), metrics=["psnr", "ssim"], preprocessing=Preprocessing(64), device=device)
        record = vtbench.evaluate(config, tmp_path / device)
        values[device] = {k: v["value"] for k, v in record["metrics"].items()}
        assert record["environment"]["device"].startswith(device)
    for key, value in values["cpu"].items():
        assert values["cuda"][key] == pytest.approx(value, abs=1e-4)
    assert record["memory"]["cuda_peak_mb"] > 0


@pytest.mark.gpu
def test_compiled_bfloat16_hub_tokenizer_on_cuda_matches_eager(tmp_path: Path) -> None:
    import torch
    from weights_factory import hub_snapshot, tiny_diffusers_model

    tiny_diffusers_model("AutoencoderKL").save_pretrained(hub_snapshot("stabilityai/sd-vae-ft-mse"))
    values = {}
    for compiled in (False, True):
        config = vtbench.RunConfig("sd-vae-ft-mse", "samples", metrics=["psnr"], limit=4, preprocessing=Preprocessing(64), device="cuda",
                                   tokenizer_options={"dtype": "bfloat16"}, compile=compiled, label=f"vae-{compiled}")  # fmt: skip
        record = vtbench.evaluate(config, tmp_path)
        values[compiled] = record["metrics"]["psnr"]["value"]
        assert record["config"]["compile"] is compiled and record["timings"]["encode_images_per_s"] > 0
    assert values[True] == pytest.approx(values[False], abs=0.1)
    assert torch.cuda.max_memory_allocated() > 0


@pytest.mark.gpu
def test_the_probe_trains_on_cuda_as_on_the_cpu_and_deterministically() -> None:
    from dataclasses import replace

    import torch

    from vtbench.probe import RECIPES, train_probe

    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 64, (256, 32), generator=generator)
    recipe = replace(RECIPES["tiny"], steps=40, eval_every=20)
    first = train_probe(ids[:200], ids[200:], 64, recipe, "cuda")
    second = train_probe(ids[:200], ids[200:], 64, recipe, "cuda")
    on_cpu = train_probe(ids[:200], ids[200:], 64, recipe, "cpu")
    # the same seed gives the same curve on the device, up to the order of CUDA's atomic adds (embedding backward),
    # and the CPU's curve up to float rounding in the kernels
    for a, b, c in zip(first["curve"], second["curve"], on_cpu["curve"], strict=True):
        assert a["validation_bits_per_token"] == pytest.approx(b["validation_bits_per_token"], abs=1e-3)
        assert a["validation_bits_per_token"] == pytest.approx(c["validation_bits_per_token"], abs=0.02)
    print("probe curves bit-identical on cuda:", first["curve"] == second["curve"], "cuda vs cpu:", first["curve"], on_cpu["curve"])
