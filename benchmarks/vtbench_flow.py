"""vtbench against the flow users run today (VTBench's own pipeline): reconstruct every image,
save each reconstruction as PNG, re-read the pairs, score them with torchmetrics PSNR/SSIM.

Both do the same JPEG-q50 round trip on the same 256x256 photo crops; SSIM is also timed
alone against scikit-image's. Targets: vtbench >= 5x the flow's images/s; vtbench's SSIM at
least as fast as scikit-image's and equal to it within 1e-4.
Usage: python benchmarks/vtbench_flow.py [--images 200]
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import photo_crops, save
from PIL import Image

import vtbench
from vtbench.images import Preprocessing


def today_flow(folder: Path, work: Path) -> float:
    """The per-paper script: reconstruct and save PNGs, then re-read pairs and score them."""
    from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

    start = time.perf_counter()
    paths = sorted(folder.glob("*.png"))
    for path in paths:
        buffer = io.BytesIO()
        Image.open(path).convert("RGB").save(buffer, format="JPEG", quality=50)
        Image.open(buffer).convert("RGB").save(work / path.name)
    psnr, ssim = PeakSignalNoiseRatio(data_range=1.0), StructuralSimilarityIndexMeasure(data_range=1.0)
    for path in paths:
        to_tensor = lambda p: torch.from_numpy(np.asarray(Image.open(p).convert("RGB"))).permute(2, 0, 1)[None].float() / 255  # noqa: E731
        original, reconstruction = to_tensor(path), to_tensor(work / path.name)
        psnr.update(reconstruction, original)
        ssim.update(reconstruction, original)
    psnr.compute(), ssim.compute()
    return len(paths) / (time.perf_counter() - start)


def ssim_alone(folder: Path) -> dict:
    """vtbench's SSIM vs scikit-image's on the same decoded pairs (one batch of 8 at a time)."""
    from skimage.metrics import structural_similarity

    from vtbench.metrics.ssim import ssim

    arrays = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))[:64]]
    jpegs = []
    for array in arrays:
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="JPEG", quality=50)
        jpegs.append(np.asarray(Image.open(buffer).convert("RGB")))
    start = time.perf_counter()
    reference = [structural_similarity(b / 255, a / 255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                       data_range=1.0, channel_axis=-1) for a, b in zip(arrays, jpegs, strict=True)]  # fmt: skip
    skimage_s = time.perf_counter() - start
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255
    y = torch.from_numpy(np.stack(jpegs)).permute(0, 3, 1, 2).float() / 255
    ssim(y[:8], x[:8])  # warm-up
    start = time.perf_counter()
    ours = torch.cat([ssim(y[i : i + 8], x[i : i + 8]) for i in range(0, len(x), 8)])
    vtbench_s = time.perf_counter() - start
    return {
        "images": len(arrays),
        "skimage_images_per_s": round(len(arrays) / skimage_s, 1),
        "vtbench_images_per_s": round(len(arrays) / vtbench_s, 1),
        "speed_vs_skimage": round(skimage_s / vtbench_s, 2),
        "max_abs_difference": float(np.abs(ours.numpy() - np.asarray(reference)).max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = photo_crops(Path(tmp) / "crops", args.images)
        flows = []
        for i in range(3):
            work = Path(tmp) / f"flow{i}"
            work.mkdir()
            flows.append(today_flow(folder, work))
        ours = []
        for i in range(3):
            config = vtbench.RunConfig("jpeg-q50", str(folder), metrics=["psnr", "ssim"], preprocessing=Preprocessing(mode="none"))
            started = time.perf_counter()
            record = vtbench.evaluate(config, Path(tmp) / f"out{i}")
            ours.append({"in_loop": record.timings["images_per_s"], "call": args.images / (time.perf_counter() - started)})
        best = max(ours, key=lambda r: r["call"])
        result = {
            "images": args.images,
            "today_flow_images_per_s": round(max(flows), 1),
            "vtbench_images_per_s": round(best["call"], 1),
            "vtbench_in_loop_images_per_s": round(best["in_loop"], 1),
            "speed_up": round(best["call"] / max(flows), 2),
            "target": ">= 5x",
            "ssim": ssim_alone(folder),
        }
    save("vtbench_flow", result)


if __name__ == "__main__":
    main()
