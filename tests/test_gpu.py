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
