"""Two ranks (torchrun, gloo, CPU) against one process on the same OCR-heavy run: the built-in
text suite (five scripts, six font sizes, two backgrounds), jpeg-q50, CER against the
transcripts with Tesseract.

Reports the wall time of each, the speed-up, and whether the two records are equal (CER
and the per-image rows exactly). Each process reads its own images; Tesseract runs on one
thread per process here (OMP_THREAD_LIMIT=1), so two ranks use the two cores.
Usage: python benchmarks/distributed_ocr.py
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import save


def run(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - started


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="vtbench-ddp-bench-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)  # checkpoints and images are temporary
    env = {**os.environ, "VTBENCH_HOME": str(root / "home"), "VTBENCH_OFFLINE": "1", "OMP_THREAD_LIMIT": "1", "OMP_NUM_THREADS": "1"}
    from vtbench.suites import make_suite

    dataset = make_suite("text", root / "text")
    args = ["run", "-t", "jpeg-q50", "-d", str(dataset), "-m", "cer", "--resize-mode", "none", "-b", "2", "--workers", "0", "--no-cache"]
    bin_dir = Path(sys.executable).parent
    one = run([str(bin_dir / "vtbench"), *args, "--out", str(root / "one")], env)
    two = run([str(bin_dir / "torchrun"), "--nproc-per-node", "2", "-m", "vtbench", *args, "--out", str(root / "two")], env)
    name = f"jpeg-q50__{dataset.name}"
    a, b = (json.loads((root / out / f"{name}.json").read_text()) for out in ("one", "two"))
    result = {
        "images": a["samples"]["evaluated"],
        "text_regions": a["protocol"]["ocr"]["counts"]["reconstructions_read"],
        "one_process_s": round(one, 1),
        "two_ranks_s": round(two, 1),
        "speed_up": round(one / two, 2),
        "cer_equal": a["metrics"]["cer"]["value"] == b["metrics"]["cer"]["value"],
        "rows_equal": (root / "one" / f"{name}.images.csv").read_text() == (root / "two" / f"{name}.images.csv").read_text(),
        "cer": a["metrics"]["cer"]["value"],
    }
    save("distributed_ocr", result)


if __name__ == "__main__":
    main()
