"""Issue 12's target: scoring a generator's samples costs <= 10% of sampling them.

LlamaGen GPT-B (111M) at 256 with its VQ-16 decoder, both with random weights in the
published checkpoint formats, samples N images (default 64: 8 classes x 8) with guidance on,
scored with FID, KID and IS against a reference of photo crops (torch-fidelity's Inception
with random weights in its upstream layout: nothing is downloaded). The run is made twice:
the first computes and caches the reference side, the second reads it from the cache, as
every later run against the same reference does. From the second run's own timings:
sampling (``generate_s``: token sampling and decoding) against the scoring (Inception
features and the metrics). Random weights: costs only, never quality.
Usage: python benchmarks/generation_overhead.py [--device cuda] [--classes 8] [--per-class 8]
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROOT = Path(tempfile.mkdtemp(prefix="vtbench-generation-overhead-"))
atexit.register(shutil.rmtree, ROOT, ignore_errors=True)
os.environ["VTBENCH_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["VTBENCH_HOME"] = str(ROOT / "vtbench-home")
os.environ["TORCH_HOME"] = str(ROOT / "torch-home")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from common import save  # noqa: E402

import vtbench  # noqa: E402
from vtbench.generators.llamagen import GPT, GPTConfig  # noqa: E402
from vtbench.images import Preprocessing  # noqa: E402
from vtbench.tokenizers.llamagen import LlamaGenVQModel  # noqa: E402

METRICS = ["fid", "kid", "isc"]
TARGET = 0.10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--per-class", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "tests"))
    from weights_factory import make_inception_weights

    os.environ["VTBENCH_WEIGHTS_INCEPTION_V3_COMPAT"] = str(make_inception_weights(ROOT / "weights-inception-2015-12-05-6726825d.pth"))
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(layers=12, heads=12, dim=768))
    for parameter in gpt.parameters():
        torch.nn.init.normal_(parameter, std=0.02)
    torch.save({"model": gpt.state_dict()}, ROOT / "c2i_B_256.pt")
    torch.save({"model": LlamaGenVQModel("ds16").state_dict()}, ROOT / "vq_ds16_c2i.pt")
    samples = args.classes * args.per_class
    reference = ROOT / "reference.npz"
    rng = np.random.default_rng(0)
    np.savez(reference, arr_0=rng.integers(0, 256, size=(samples, 256, 256, 3), dtype=np.uint8))
    options = {"weights": str(ROOT / "c2i_B_256.pt"), "tokenizer_options": {"weights": str(ROOT / "vq_ds16_c2i.pt")}, "cfg_scale": 2.0,
               "num_classes": args.classes, "per_class": args.per_class}  # fmt: skip
    runs = []
    for attempt in ("reference computed", "reference cached"):
        config = vtbench.GenerationConfig("llamagen-c2i-b-256", str(reference), generator_options=options, metrics=METRICS,
                                          preprocessing=Preprocessing(256), batch_size=args.batch_size, device=args.device,
                                          label=f"run-{len(runs)}")  # fmt: skip
        started = time.perf_counter()
        record = vtbench.evaluate(config, ROOT / "out")
        timings = record.timings
        sampling = timings.get("generate_s", 0.0)
        scoring = timings.get("features_s", 0.0) + timings.get("metrics_s", 0.0)
        runs.append({
            "run": attempt, "samples": record.samples.evaluated, "wall_s": round(time.perf_counter() - started, 2),
            "sampling_s": round(sampling, 3), "scoring_s": round(scoring, 3), "in_loop_s": round(timings.get("total_s", 0.0), 3),
            "scoring_over_sampling": round(scoring / sampling, 4) if sampling else None,
            "timings": {k: round(v, 4) if isinstance(v, float) else v for k, v in timings.items()},
        })  # fmt: skip
        print(json.dumps(runs[-1]), flush=True)
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device
    headline = runs[-1]["scoring_over_sampling"]
    save(f"generation_overhead{'' if args.device == 'cpu' else '_' + args.device.split(':')[0]}", {
        "target": f"scoring <= {TARGET:.0%} of sampling (issue 12)", "device": device, "torch": torch.__version__, "metrics": METRICS,
        "runs": runs, "scoring_over_sampling": headline, "meets_target": headline is not None and headline <= TARGET,
    })  # fmt: skip


if __name__ == "__main__":
    main()
