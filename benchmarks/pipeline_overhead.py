"""Engine overhead per image: identity + PSNR through ``vtbench.evaluate`` against the bare
PSNR kernel on the same images already decoded into tensors.

Reports the in-loop time, the whole ``evaluate`` call (set-up and record writing included)
and the overhead per image: (in-loop time - bare kernel time) / images. Target: <= 0.5 ms
per image on CPU.
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


def bare_kernel(folder: Path, batch_size: int, device: torch.device) -> float:
    """Seconds for PSNR over every image, from decoded uint8 tensors (the floor)."""
    arrays = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))]
    tensors = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    start = time.perf_counter()
    for i in range(0, len(tensors), batch_size):
        x = tensors[i : i + batch_size].to(device).float() / 255
        psnr(x.clone(), x).tolist()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


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
        bare_kernel(folder, args.batch_size, device)  # warm-up
        bare = min(bare_kernel(folder, args.batch_size, device) for _ in range(3))
        runs = []
        for i in range(3):
            config = vtbench.RunConfig("identity", str(folder), metrics=["psnr"], preprocessing=Preprocessing(mode="none"),
                                       batch_size=args.batch_size, device=str(device))  # fmt: skip
            started = time.perf_counter()
            record = vtbench.evaluate(config, Path(tmp) / f"out{i}")
            runs.append((record["timings"]["total_s"], time.perf_counter() - started))
        in_loop, call = min(runs)
    result = {
        "images": args.images,
        "batch_size": args.batch_size,
        "bare_kernel_s": round(bare, 4),
        "in_loop_s": round(in_loop, 3),
        "evaluate_call_s": round(call, 3),
        "overhead_ms_per_image": round(1000 * (in_loop - bare) / args.images, 3),
        "target": "<= 0.5 ms per image",
    }
    save(f"pipeline_overhead_{device.type}", result)


if __name__ == "__main__":
    main()
