"""Engine overhead per image: identity + PSNR through ``vtbench.evaluate``, against the bare
PSNR kernel on the same images already decoded into tensors.

overhead per image = (in-loop time - the tokenizer's own encode/decode time - bare kernel
time) / images: what the engine adds (loading hand-off, conversion, rounding, per-image
rows, checkpoints, cost metrics; identity, like the codecs, declares exact 8-bit output, so
no re-rounding: a network tokenizer's output costs one more clamp-and-round pass, about 0.3 ms
per 256x256 image on this CPU). Measured on an ``.npz`` of the images (no codec decode)
and on the PNG folder (PNG decoding in the loader workers included). Also reported: the
whole ``evaluate`` call (set-up and record writing). Target: <= 0.5 ms per image on CPU.
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


def bare_kernel(images: torch.Tensor, batch_size: int, device: torch.device) -> float:
    """Seconds for PSNR over every image, from decoded uint8 tensors (the floor)."""
    start = time.perf_counter()
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size].to(device).float() / 255
        psnr(x.clone(), x).tolist()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measure(source: str, out: Path, batch_size: int, device: torch.device, workers: int | None, bare: float, count: int) -> dict:
    runs = []
    for i in range(3):
        config = vtbench.RunConfig("identity", source, metrics=["psnr"], preprocessing=Preprocessing(mode="none"),
                                   batch_size=batch_size, device=str(device), num_workers=workers)  # fmt: skip
        started = time.perf_counter()
        record = vtbench.evaluate(config, out / str(i))
        timings = record.timings
        runs.append((timings["total_s"], time.perf_counter() - started, timings["encode_s"] + timings["decode_s"], timings["load_wait_s"]))
    in_loop, call, tokenizer, load_wait = min(runs)
    return {
        "workers": "default" if workers is None else workers,
        "in_loop_s": round(in_loop, 3),
        "evaluate_call_s": round(call, 3),
        "tokenizer_s": round(tokenizer, 3),
        "load_wait_s": round(load_wait, 3),
        "overhead_ms_per_image": round(1000 * (in_loop - tokenizer - bare) / count, 3),
    }


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
        arrays = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))])
        np.savez(Path(tmp) / "crops.npz", arr_0=arrays)
        images = torch.from_numpy(arrays).permute(0, 3, 1, 2).contiguous()
        bare_kernel(images, args.batch_size, device)  # warm-up
        bare = min(bare_kernel(images, args.batch_size, device) for _ in range(3))
        vtbench.evaluate(vtbench.RunConfig("identity", str(folder), metrics=["psnr"], limit=8), Path(tmp) / "warm")
        result = {
            "images": args.images,
            "batch_size": args.batch_size,
            "bare_kernel_s": round(bare, 4),
            "npz_no_decode": [
                measure(str(Path(tmp) / "crops.npz"), Path(tmp) / f"npz{w}", args.batch_size, device, w, bare, args.images)
                for w in (None, 1)
            ],  # fmt: skip
            "png_folder": measure(str(folder), Path(tmp) / "png", args.batch_size, device, None, bare, args.images),
            "target": "<= 0.5 ms per image",
        }
    save(f"pipeline_overhead_{device.type}", result)


if __name__ == "__main__":
    main()
