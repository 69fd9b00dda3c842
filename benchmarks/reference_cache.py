"""Cost of the reference side with and without the content-keyed feature cache: a
generation run (FID, KID) over the same reference twice. Reports the first/second ratio.

The timing does not depend on the weights' values, so this uses an InceptionV3 file with
He-initialised parameters in torch-fidelity's layout (made here; nothing is downloaded).
Usage: python benchmarks/reference_cache.py [--images 200]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from common import photo_crops, save
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from weights_factory import make_inception_weights  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["VTBENCH_HOME"] = str(Path(tmp) / "home")
        os.environ["VTBENCH_WEIGHTS_INCEPTION_V3_COMPAT"] = str(make_inception_weights(Path(tmp) / "inception.pth"))
        from vtbench.engine import GenerationConfig, evaluate

        reference = photo_crops(Path(tmp) / "reference", args.images, size=128, seed=0)
        generated = photo_crops(Path(tmp) / "generated", args.images, size=128, seed=1)
        np.savez(Path(tmp) / "samples.npz", arr_0=np.stack([np.asarray(Image.open(p)) for p in sorted(generated.glob("*.png"))]))
        runs = []
        for i in range(2):
            config = GenerationConfig(str(Path(tmp) / "samples.npz"), str(reference), metrics=["fid", "kid"], batch_size=25)
            record = evaluate(config, Path(tmp) / f"out{i}")
            runs.append(record.timings)
    first, second = runs[0]["reference_s"], runs[1]["reference_s"]
    save(
        "reference_cache",
        {
            "images": args.images,
            "reference_s": {"first": round(first, 2), "second": round(second, 3)},
            "first_over_second": round(first / second, 1),
            "total_s": {"first": round(runs[0]["total_s"], 2), "second": round(runs[1]["total_s"], 2)},
        },
    )


if __name__ == "__main__":
    main()
