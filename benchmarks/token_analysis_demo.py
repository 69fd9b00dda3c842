"""The token-space statistics and the AR probe beside reconstruction quality, on the built-in
tokenizers with discrete ids that need no download (resample baselines: ids are the 8-bit
values of the downscaled image), over random crops of the scikit-image photographs (a tenth
held out for the probe). Result: results/benchmarks/token_analysis_demo.json.
Usage: python benchmarks/token_analysis_demo.py [--crops 600] [--resolution 64] [--steps 400]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import photo_crops, save

import vtbench
from vtbench.images import Preprocessing
from vtbench.probe import ProbeConfig, run_probe

METRICS = ["psnr", "ssim", "code-entropy-n1", "code-entropy-n2", "code-entropy-n3", "token-consistency-shift", "token-consistency-flip",
           "token-consistency-jpeg", "reencode-stability"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--crops", type=int, default=600)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--tokenizers", default="resample-x8,resample-x16")
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        crops = str(photo_crops(Path(folder) / "crops", args.crops, size=args.resolution))
        for name in args.tokenizers.split(","):
            record = vtbench.evaluate(vtbench.RunConfig(name, crops, metrics=METRICS, preprocessing=Preprocessing(args.resolution)),
                                      Path(folder) / "runs")  # fmt: skip
            config = ProbeConfig(tokenizer=name, dataset=crops, recipe="tiny", steps=args.steps,
                                 preprocessing=Preprocessing(args.resolution), use_cache=False)  # fmt: skip
            probe = run_probe(config, Path(folder) / "probe")
            rows[name] = {
                **{metric: record.value(metric) for metric in METRICS},
                "tokens_per_image": probe.tokens["tokens_per_image"],
                "probe_validation_bits_per_token": probe.validation_bits_per_token,
                "probe_validation_bits_per_image": probe.validation_bits_per_image,
                "probe_steps_per_s": probe.steps_per_s,
                "probe_train_images": probe.tokens["train_images"],
                "bits_per_token_of_the_code": 8.0,
            }
            print(name, rows[name], flush=True)
    dataset = f"{args.crops} random {args.resolution}px crops of the scikit-image photographs (a tenth held out)"
    save("token_analysis_demo", {"dataset": dataset, "resolution": args.resolution, "probe": {"recipe": "tiny", "steps": args.steps},
                                 "rows": rows})  # fmt: skip


if __name__ == "__main__":
    main()
