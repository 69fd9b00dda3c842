"""Records before and after a change, compared field by field: the same commands must give the
same numbers.

``--write DIR`` runs a fixed set of commands through the CLI into ``DIR`` (the quickstart
recipe; token statistics and frequency response of a pixel tokenizer; the text suite with
Tesseract; a generation run and a statistics-file run against the same reference, on
Inception weights this script makes with a fixed seed; a two-shard run merged). ``--compare
BEFORE AFTER`` reads every record of both (older schemas through ``load_record``'s upgrade)
and every per-image CSV, and lists each difference. Only what a rerun is allowed to change is
left out: timings, memory, the environment, ``created``, the record's path, and the identity
hash (its definition moved with the schema); what schema version 4 adds on purpose is listed
in ``EXPECTED`` with its reason and counted apart. Exit 1 on any other difference.

The records of the code before the "one declaration of a run" redesign are committed in
``results/parity/before`` (made with commit 26f8a62 and this script's ``--write``).

    python benchmarks/record_parity.py --write /tmp/after
    python benchmarks/record_parity.py --compare results/parity/before /tmp/after
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# What schema version 4 adds or moves on purpose (each pattern with its reason); every other
# difference is a change of behaviour.
EXPECTED = {
    r"\.dataset\.reference\.manifest_sha256: only after": "a generation record names its reference by content",
    r"\.dataset\.reference\.sha256: only after": "a statistics file is named by its digest",
    r"\.metrics\.fid\.parameters\.reference_statistics: only after": "fixed statistics are named as FID's reference side",
    r"\.recipe\.expected_samples: only after": "expected_samples is a setting of its own, not a generator option",
    r"\.recipe\.generators\[\d+\]\.options\.expected_samples: only before": "(the same)",
    r"\.recipe\.metrics: null -> ": "the recipe block shows the metrics its runs computed",
    r"\.protocol\.rounding: \"samples clamped": "a generation run's 8-bit conversion is the generator's (TiTok truncates)",
}
VOLATILE = {"timings", "memory", "environment", "created", "identity_sha", "_path", "path", "encode_ms_per_call", "decode_ms_per_call"}
TOKEN_METRICS = "psnr,codebook-usage,codebook-entropy,codebook-perplexity,code-entropy-n2,token-consistency-flip,reencode-stability"


def _vtbench(*args: str | Path, env: dict[str, str], cwd: Path) -> None:
    command = [sys.executable, "-m", "vtbench", *map(str, args)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=cwd)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[2:])} failed ({done.returncode}):\n{done.stderr[-2000:]}")


def _generation_inputs(root: Path) -> tuple[Path, Path, Path, Path]:
    """Made Inception weights, a reference folder and two sample batches (.npz), all seeded."""
    import numpy as np
    import skimage.data
    from PIL import Image

    sys.path.insert(0, str(REPO / "tests"))
    from weights_factory import make_inception_weights

    reference = root / "reference"
    reference.mkdir(parents=True, exist_ok=True)
    weights = make_inception_weights(root / "inception.pth", seed=1)
    rng = np.random.default_rng(1)
    batches: dict[str, list[Any]] = {"a": [], "b": []}
    names = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry"]
    for i in range(12):
        photo = getattr(skimage.data, names[i % 5])()[..., :3]
        top, left = rng.integers(0, photo.shape[0] - 64, size=3), rng.integers(0, photo.shape[1] - 64, size=3)
        Image.fromarray(np.ascontiguousarray(photo[top[0] : top[0] + 64, left[0] : left[0] + 64])).save(reference / f"{i:02d}.png")
        for key, k, quality in (("a", 1, 30), ("b", 2, 10)):
            buffer = io.BytesIO()
            Image.fromarray(np.ascontiguousarray(photo[top[k] : top[k] + 64, left[k] : left[k] + 64])).save(buffer, "JPEG", quality=quality)
            batches[key].append(np.asarray(Image.open(buffer).convert("RGB")))
    np.savez(root / "model-a.npz", arr_0=np.stack(batches["a"]))
    np.savez(root / "model-b.npz", arr_0=np.stack(batches["b"]))
    return weights, reference, root / "model-a.npz", root / "model-b.npz"


def write(out: Path) -> None:
    """Every command runs in ``out`` with relative paths, so records made in two folders agree."""
    out = out_dir = out.resolve()
    inputs = out / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    weights, reference, model_a, model_b = (path.relative_to(out) for path in _generation_inputs(inputs))
    env = {**os.environ, "VTBENCH_OFFLINE": "1", "VTBENCH_HOME": str(inputs / "home"),
           "VTBENCH_WEIGHTS_INCEPTION_V3_COMPAT": str(out / weights)}  # fmt: skip
    inputs, out = Path("inputs"), Path(".")
    (out_dir / inputs / "quickstart.yaml").write_text((REPO / "recipes" / "quickstart.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    _vtbench("run", inputs / "quickstart.yaml", "--out", out / "quickstart", "--quiet", env=env, cwd=out_dir)
    _vtbench("run", "-t", "resample-x8", "-d", "samples", "--resolution", "64", "-m", TOKEN_METRICS, "-m", "hf-fidelity",
             "-m", "frequency-cutoff", "--out", out / "tokens", "--quiet", env=env, cwd=out_dir)  # fmt: skip
    _vtbench("run", "-t", "jpeg-q50", "-d", "text", "--limit", "6", "-m", "cer,wer,t-ned,t-acc,cer-vs-ocr", "--out", out / "text",
             "--quiet", env=env, cwd=out_dir)  # fmt: skip
    generation = ["--reference", reference, "-m", "fid,kid,isc,precision,recall,fd-efficientnet-lite0", "-m", "kid:subset_size=12",
                  "--expected-samples", "12", "--out", out / "generation", "--quiet"]  # fmt: skip
    _vtbench("run", "-g", model_a, "-g", model_b, *generation, env=env, cwd=out_dir)
    _vtbench("reference-stats", reference, "--out", inputs / "reference-stats.npz", env=env, cwd=out_dir)
    _vtbench("run", "-g", model_a, "--reference", inputs / "reference-stats.npz", "-m", "fid", "--out", out / "statistics", "--quiet",
             env=env, cwd=out_dir)  # fmt: skip
    for k in (0, 1):
        _vtbench("run", "-t", "webp-q50", "-d", "samples", "--resolution", "64", "--shard", f"{k}/2", "--out", out / "shards", "--quiet",
                 env=env, cwd=out_dir)  # fmt: skip
    _vtbench("merge", out / "shards", "--out", out / "merged", env=env, cwd=out_dir)
    print(f"records in {out_dir}")


def _records(root: Path) -> dict[str, dict[str, Any]]:
    """Relative path -> the record as plain data (through vtbench's reader, which upgrades)."""
    from vtbench.schema import load_record

    found = {}
    for path in sorted(root.rglob("*.json")):
        if "inputs" in path.relative_to(root).parts or ".partial" in path.parts:
            continue
        if '"vtbench.run-record"' not in path.read_text(encoding="utf-8")[:300]:
            continue
        record = load_record(path)
        found[str(path.relative_to(root))] = record.to_dict() if hasattr(record, "to_dict") else record
    return found


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def _differences(before: Any, after: Any, where: str) -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for key in sorted(set(before) | set(after), key=str):
            if key in VOLATILE:
                continue
            if key not in after:
                out.append(f"{where}.{key}: only before ({json.dumps(before[key], default=str)[:80]})")
            elif key not in before:
                out.append(f"{where}.{key}: only after ({json.dumps(after[key], default=str)[:80]})")
            else:
                out += _differences(before[key], after[key], f"{where}.{key}")
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [d for i, (x, y) in enumerate(zip(before, after, strict=True)) for d in _differences(x, y, f"{where}[{i}]")]
    return [] if _same(before, after) else [f"{where}: {json.dumps(before, default=str)[:100]} -> {json.dumps(after, default=str)[:100]}"]


def compare(before: Path, after: Path) -> int:
    old, new = _records(before), _records(after)
    problems = [f"{name}: record only before" for name in sorted(set(old) - set(new))]
    problems += [f"{name}: record only after" for name in sorted(set(new) - set(old))]
    for name in sorted(set(old) & set(new)):
        problems += _differences(old[name], new[name], name)
        csv_name = name[: -len(".json")] + ".images.csv"
        rows = [list(csv.reader(io.StringIO((root / csv_name).read_text(encoding="utf-8")))) for root in (before, after)]
        if rows[0] != rows[1]:
            problems.append(f"{csv_name}: per-image rows differ")
    expected = [line for line in problems if any(re.search(pattern, line) for pattern in EXPECTED)]
    unexpected = [line for line in problems if line not in expected]
    for line in unexpected:
        print(line)
    reasons = sorted({reason for line in expected for pattern, reason in EXPECTED.items() if re.search(pattern, line)})
    print(f"{len(old)} records before, {len(new)} after: {len(unexpected)} difference(s) beyond timings, memory and environment; "
          f"{len(expected)} expected ({'; '.join(reasons) or 'none'})")  # fmt: skip
    return 1 if unexpected else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path)
    parser.add_argument("--compare", type=Path, nargs=2, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args()
    if args.write:
        write(args.write)
    if args.compare:
        raise SystemExit(compare(*args.compare))


if __name__ == "__main__":
    main()
