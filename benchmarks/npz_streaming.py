"""Peak memory of reading an ADM-style sample batch (``.npz``, ``arr_0`` uint8 NHWC) through
the engine's source, versus the number of samples: each size in a fresh process, the whole
batch walked as a generation run walks it (``samples-reader`` as a dataset, 64 at a time).

The array is memory-mapped where it lies in the zip, so memory must not grow with the sample
count (the issue's example: a 1.1 GB batch used to add 2.7 GB). Target: the large batch's
peak within 1.2x of the small one's.
Usage: python benchmarks/npz_streaming.py [--small 1000] [--large 10000] [--size 128]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from common import save

CHILD = """
import json, resource, sys, torch
from vtbench.engine.components import create_generator
from vtbench.engine.sources import DatasetSource
from vtbench.images import Preprocessing

dataset = create_generator(sys.argv[1], {}).as_dataset()
checked = 0
for batch in DatasetSource(dataset, Preprocessing(mode="none")).batches(range(len(dataset)), 64, 0, torch.device("cpu"),
                                                                       lambda key, work: work()):
    checked += int(batch.groups[0][1].sum() > 0)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"samples": len(dataset), "peak_rss_mb": round(peak, 1), "batches": checked}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=10000)
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args()
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        for count in (args.small, args.large):
            path = Path(tmp) / f"samples{count}.npz"
            np.savez(path, arr_0=rng.integers(0, 256, size=(count, args.size, args.size, 3), dtype=np.uint8))
            out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True)
            runs[count] = {**json.loads(out.stdout.strip().splitlines()[-1]), "file_mb": round(path.stat().st_size / 2**20, 1)}
    small, large = runs[args.small], runs[args.large]
    save("npz_streaming", {"image_size": args.size, "runs": {str(k): v for k, v in runs.items()},
                           "large_over_small": round(large["peak_rss_mb"] / small["peak_rss_mb"], 3), "target": "<= 1.20"})  # fmt: skip


if __name__ == "__main__":
    main()
