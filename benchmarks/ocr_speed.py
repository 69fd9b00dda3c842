"""OCR cost: seconds per text region and per image for each engine, the share of a text run
spent in OCR, and the OCR work a second tokenizer saves through the originals' OCR cache.

Runs on the English images of the built-in text suite (512x512, 6 font sizes x 2
backgrounds); EasyOCR is English-only offline. Result: results/benchmarks/ocr_speed.json.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from common import save

os.environ.setdefault("VTBENCH_OFFLINE", "1")


def english_subset(root: Path) -> Path:
    from vtbench.suites import make_suite

    suite = make_suite("text", root / "suite")
    subset = root / "en"
    (subset / "images").mkdir(parents=True)
    entries = [json.loads(line) for line in (suite / "annotations.jsonl").read_text(encoding="utf-8").splitlines()]
    chosen = [e for e in entries if e["language"] == "en"]
    for entry in chosen:
        shutil.copy(suite / entry["id"], subset / entry["id"])
    (subset / "annotations.jsonl").write_text("\n".join(json.dumps(e) for e in chosen) + "\n")
    return subset


def main() -> None:
    import vtbench
    from vtbench.images import Preprocessing

    root = Path(tempfile.mkdtemp(prefix="vtbench-ocr-bench-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)  # checkpoints and images are temporary
    os.environ["VTBENCH_HOME"] = str(root / "home")
    dataset = english_subset(root)
    result: dict = {"images": len(list((dataset / "images").glob("*.png"))), "engines": {}}
    for engine in ("tesseract", "easyocr"):
        runs = []
        for tokenizer in ("jpeg-q50", "jpeg-q25"):  # the second reads the originals' OCR from the cache
            config = vtbench.RunConfig(
                tokenizer, str(dataset), metrics=["cer", "cer-vs-ocr"], preprocessing=Preprocessing(None, "none"),
                num_workers=0, batch_size=4, ocr_engine=engine, label=f"{tokenizer}-{engine}",
            )  # fmt: skip
            started = time.perf_counter()
            record = vtbench.evaluate(config, root / "out")
            wall = time.perf_counter() - started
            counts = record.protocol.ocr["counts"]
            reads = counts["reconstructions_read"] + counts["originals_read"]
            runs.append({
                "tokenizer": tokenizer, "wall_s": round(wall, 2), "ocr_s": round(record.timings["ocr_s"], 2),
                "ocr_share": round(record.timings["ocr_s"] / wall, 3), "regions_read": reads, **counts,
                "seconds_per_region_read": round(record.timings["ocr_s"] / reads, 4),
                "seconds_per_image": round(record.timings["ocr_s"] / result["images"], 3),
                "cer": record.value("cer"),
            })  # fmt: skip
        result["engines"][engine] = {
            "runs": runs,
            "second_run_ocr_work_ratio": round(runs[1]["regions_read"] / runs[0]["regions_read"], 3),
            "second_run_ocr_time_ratio": round(runs[1]["ocr_s"] / runs[0]["ocr_s"], 3),
        }
    save("ocr_speed", result)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
