"""The token-space statistics and the AR probe beside reconstruction quality, on the built-in
tokenizers with discrete ids that need no download (resample baselines: ids are the 8-bit
values of the downscaled image). Result: results/benchmarks/token_analysis_demo.json.
Usage: python benchmarks/token_analysis_demo.py [--resolution 64] [--steps 400]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import save

import vtbench
from vtbench.images import Preprocessing
from vtbench.probe import run_probe

METRICS = ["psnr", "ssim", "code-entropy-n1", "code-entropy-n2", "code-entropy-n3", "token-consistency-shift", "token-consistency-flip",
           "token-consistency-jpeg", "reencode-stability"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--tokenizers", default="resample-x8,resample-x16")
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in args.tokenizers.split(","):
            record = vtbench.evaluate(vtbench.RunConfig(name, "samples", metrics=METRICS, preprocessing=Preprocessing(args.resolution)),
                                      Path(folder) / "runs")  # fmt: skip
            probe = run_probe(name, "samples", Path(folder) / "probe", "tiny", steps=args.steps, resolution=args.resolution)
            rows[name] = {
                **{metric: record["metrics"][metric]["value"] for metric in METRICS},
                "tokens_per_image": probe["tokens"]["tokens_per_image"],
                "probe_validation_bits_per_token": probe["validation_bits_per_token"],
                "probe_validation_bits_per_image": probe["validation_bits_per_image"],
                "probe_steps_per_s": probe["steps_per_s"],
                "bits_per_token_of_the_code": 8.0,
            }
            print(name, rows[name], flush=True)
    save("token_analysis_demo", {"dataset": "samples (14 photographs; 13 train / 1 held out for the probe)", "resolution": args.resolution,
                                 "probe": {"recipe": "tiny", "steps": args.steps}, "rows": rows})  # fmt: skip


if __name__ == "__main__":
    main()
