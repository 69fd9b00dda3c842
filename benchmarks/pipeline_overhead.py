"""Runner overhead: identity + PSNR + SSIM through ``vtbench.evaluate`` versus the bare
metric kernels on the same images already decoded into tensors.

Target: the runner's images/s is at least 70% of the bare kernels'.
Usage: python benchmarks/pipeline_overhead.py [--images 200] [--device cpu]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import photo_crops, save
from PIL import Image

import vtbench
from vtbench.images import Preprocessing
from vtbench.metrics.psnr import psnr
from vtbench.metrics.ssim import ssim


def bare_kernels(folder: Path, batch_size: int, device: torch.device) -> float:
    arrays = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))]
    tensors = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    batches = [tensors[i : i + batch_size] for i in range(0, len(tensors), batch_size)]
    start = time.perf_counter()
    for batch in batches:
        x = batch.to(device).float() / 255
        y = x.clone()
        psnr(y, x)
        ssim(y, x)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return len(tensors) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = torch.device(
        "cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device)
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = photo_crops(Path(tmp) / "crops", args.images)
        bare_kernels(folder, args.batch_size, device)  # warm-up
        bare = max(bare_kernels(folder, args.batch_size, device) for _ in range(3))
        runs = []
        for i in range(3):
            config = vtbench.RunConfig(
                "identity", str(folder), metrics=["psnr", "ssim"], preprocessing=Preprocessing(mode="none"),
                batch_size=args.batch_size, device=str(device),
            )  # fmt: skip
            record = vtbench.evaluate(config, Path(tmp) / f"out{i}")
            runs.append(record["timings"]["images_per_s"])
        runner = max(runs)
    result = {
        "images": args.images,
        "batch_size": args.batch_size,
        "bare_kernels_images_per_s": round(bare, 1),
        "runner_images_per_s": round(runner, 1),
        "runner_over_bare": round(runner / bare, 3),
        "target": ">= 0.70",
    }
    save(f"pipeline_overhead_{device.type}", result)


if __name__ == "__main__":
    main()
