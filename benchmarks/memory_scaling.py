"""Peak memory versus dataset size: one run over 200 images and one over 2,000, each in a
fresh process (peak RSS, and CUDA peak on GPU).

Target: peak memory for 2,000 images within 1.2x of that for 200.
Usage: python benchmarks/memory_scaling.py [--small 200] [--large 2000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from common import photo_crops, save

CHILD = """
import dataclasses, json, sys, vtbench
from vtbench.images import Preprocessing
config = vtbench.RunConfig("jpeg-q50", sys.argv[1], metrics=["psnr", "ssim"], preprocessing=Preprocessing(mode="none"), batch_size=8)
record = vtbench.evaluate(config, sys.argv[2])
speed = record.timings["images_per_s"]
print(json.dumps({"memory": dataclasses.asdict(record.memory), "images": record.samples.evaluated, "images_per_s": speed}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        photo_crops(Path(tmp) / "all", args.large)
        runs = {}
        for count in (args.small, args.large):
            folder = Path(tmp) / f"n{count}"
            folder.mkdir()
            for path in sorted((Path(tmp) / "all").glob("*.png"))[:count]:
                (folder / path.name).symlink_to(path)
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(folder), str(Path(tmp) / f"out{count}")], capture_output=True, text=True, check=True
            )
            runs[count] = json.loads(out.stdout.strip().splitlines()[-1])
    small, large = runs[args.small], runs[args.large]
    result = {
        "tokenizer": "jpeg-q50",
        "metrics": ["psnr", "ssim", "bpp", "tokens"],
        "peak_rss_mb": {str(k): v["memory"]["peak_rss_mb"] for k, v in runs.items()},
        "cuda_peak_mb": {str(k): v["memory"]["cuda_peak_mb"] for k, v in runs.items()},
        "images_per_s": {str(k): round(v["images_per_s"], 1) for k, v in runs.items()},
        "large_over_small": round(large["memory"]["peak_rss_mb"] / small["memory"]["peak_rss_mb"], 3),
        "target": "<= 1.20",
    }
    save("memory_scaling", result)


if __name__ == "__main__":
    main()
