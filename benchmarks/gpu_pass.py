"""Issue 10's GPU target: an evaluation pass costs <= 1.15x the tokenizer's bare encode+decode.

One network tokenizer at its published size (default LlamaGen VQ ds16 at 256), randomly
initialised weights saved in the published checkpoint format (as ``tokenizer_speed.py``),
on N photo crops (default 256, 256x256, an ``.npz``: no codec decode):

(a) bare: the tokenizer's own ``encode`` + ``decode`` of the N images in batches (default
    32), images already on the device, synchronised, after a warm-up; measured before and
    after the evaluations, the best kept;
(b) ``vtbench.evaluate`` of the same tokenizer on the same images with psnr, ssim,
    lpips-alex and fid (LPIPS's AlexNet backbone and torch-fidelity's Inception made with
    random weights in their upstream file layouts by ``tests/weights_factory.py`` and pointed
    at with ``VTBENCH_WEIGHTS_<NAME>``: nothing is downloaded), three ways: without the
    originals' feature cache (every pass computes both sides' Inception features), filling
    the cache, and hitting it (what a second tokenizer on the same data costs);
(c) the same with psnr + ssim only.

Each evaluation reports the wall time of the ``evaluate`` call (set-up, model loading and
record writing included), the engine's in-loop time (``timings.total_s``) and its per-stage
timings, and their ratios to (a). Random weights: costs only, never quality.
Usage: python benchmarks/gpu_pass.py [--device cuda] [--images 256] [--batch-size 32] [--out results/benchmarks/gpu_pass.json]
Smoke test on a CPU: python benchmarks/gpu_pass.py --device cpu --images 8 --no-cached --out /tmp/gpu_pass_cpu.json
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
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROOT = Path(tempfile.mkdtemp(prefix="vtbench-gpu-pass-"))
atexit.register(shutil.rmtree, ROOT, ignore_errors=True)  # checkpoints and images are temporary
# Nothing is downloaded and no user cache is touched: the weights store, torch's hub and the
# Hugging Face cache all point into this run's own temporary folder.
os.environ["VTBENCH_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["VTBENCH_HOME"] = str(ROOT / "vtbench-home")
os.environ["TORCH_HOME"] = str(ROOT / "torch-home")
os.environ["HF_HOME"] = str(ROOT / "hf-home")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

import vtbench  # noqa: E402
from vtbench.images import Preprocessing  # noqa: E402

FULL = ["psnr", "ssim", "lpips-alex", "fid"]
PIXEL = ["psnr", "ssim"]
TARGET = 1.15
HEADLINE = ("ratio_in_loop", "ratio_wall", "ratio_in_loop_vs_engine_tokenizer")


def checkpoint(preset: str, folder: Path) -> Path:
    """A randomly initialised checkpoint of ``preset`` in its published format (one of tokenizer_speed.py's)."""
    torch.manual_seed(0)
    if preset.startswith("llamagen-vq-ds"):
        from vtbench.tokenizers.llamagen import LlamaGenVQModel

        state = {"model": LlamaGenVQModel(preset.split("-")[2]).state_dict()}
    elif preset.startswith("var-vqvae"):
        from vtbench.tokenizers.var import VarVQVAE

        state = VarVQVAE().state_dict()
    elif preset.startswith("open-magvit2-256-l"):
        from vtbench.tokenizers.open_magvit2 import LFQAutoencoder

        state = {"state_dict": LFQAutoencoder().state_dict()}
    elif preset.startswith("bsq-vit-b18"):
        from vtbench.tokenizers.bsq_vit import BSQViTModel

        state = {"state_dict": BSQViTModel().state_dict()}
    else:
        raise SystemExit(
            f"--tokenizer {preset}: one of llamagen-vq-ds16-c2i, llamagen-vq-ds8-c2i, var-vqvae-256, open-magvit2-256-l, bsq-vit-b18"
        )
    path = folder / f"{preset}.pt"
    torch.save(state, path)
    return path


def photo_array(count: int, size: int, seed: int = 0) -> np.ndarray:
    """(count, size, size, 3) uint8 crops of the scikit-image photographs (random position, random flip)."""
    import skimage.data

    from vtbench.datasets.samples import SAMPLE_NAMES

    rng = np.random.default_rng(seed)
    photos = [np.asarray(Image.fromarray(getattr(skimage.data, n)()).convert("RGB")) for n in SAMPLE_NAMES]
    photos = [p for p in photos if min(p.shape[:2]) >= size] or [np.asarray(Image.fromarray(p).resize((size, size))) for p in photos]
    crops = np.empty((count, size, size, 3), np.uint8)
    for i in range(count):
        photo = photos[i % len(photos)]
        top, left = rng.integers(0, photo.shape[0] - size + 1), rng.integers(0, photo.shape[1] - size + 1)
        crop = photo[top : top + size, left : left + size]
        crops[i] = crop[:, ::-1] if rng.random() < 0.5 else crop
    return crops


def make_metric_weights(folder: Path) -> dict[str, str]:
    """Random-weight files in the upstream layouts, exported as the store's overrides."""
    sys.path.insert(0, str(REPO / "tests"))
    from weights_factory import make_inception_weights, make_torchvision_weights

    folder.mkdir(parents=True, exist_ok=True)
    made = {
        "VTBENCH_WEIGHTS_INCEPTION_V3_COMPAT": make_inception_weights(folder / "weights-inception-2015-12-05-6726825d.pth"),
        "VTBENCH_WEIGHTS_ALEXNET": make_torchvision_weights("alexnet", folder / "alexnet-owt-7be5be79.pth"),
    }
    for key, path in made.items():
        os.environ[key] = str(path)
    return {key: str(path) for key, path in made.items()}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_pass(tokenizer, batches: list[torch.Tensor], device: torch.device) -> float:
    """Seconds for encode + decode of every batch (uint8 already on the device), synchronised."""
    sync(device)
    start = time.perf_counter()
    with torch.inference_mode():
        for batch in batches:
            tokenizer.decode(tokenizer.encode(batch.float().div_(255)))
    sync(device)
    return time.perf_counter() - start


def evaluate(name: str, path: Path, dataset: Path, metrics: list[str], args: argparse.Namespace, out: Path, **settings) -> dict:
    config = vtbench.RunConfig(
        args.tokenizer, str(dataset), metrics=metrics, tokenizer_options={"weights": str(path), "dtype": args.dtype},
        preprocessing=Preprocessing(args.resolution), batch_size=args.batch_size, device=args.device, num_workers=args.num_workers,
        label=name, **settings,
    )  # fmt: skip
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    record = vtbench.evaluate(config, out)
    wall = time.perf_counter() - started
    return {"record": record, "wall_s": wall}


def summarise(run: dict, bare: float, metrics: list[str], use_cache: bool) -> dict:
    record, wall = run["record"], run["wall_s"]
    timings = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in record.timings.items()}
    in_loop = record.timings.get("total_s")
    engine_tokenizer = record.timings.get("encode_s", 0.0) + record.timings.get("decode_s", 0.0)
    return {
        "metrics": metrics,
        "use_cache": use_cache,
        "evaluated": record.samples.evaluated,
        "failed": record.samples.failed,
        "eval_wall_s": round(wall, 3),
        "eval_in_loop_s": round(in_loop, 3) if in_loop is not None else None,
        "ratio_wall": round(wall / bare, 3),
        "ratio_in_loop": round(in_loop / bare, 3) if in_loop is not None else None,
        "engine_tokenizer_s": round(engine_tokenizer, 3),
        "ratio_in_loop_vs_engine_tokenizer": round(in_loop / engine_tokenizer, 3) if in_loop and engine_tokenizer else None,
        "meets_target_in_loop": bool(in_loop is not None and in_loop / bare <= TARGET),
        "meets_target_wall": bool(wall / bare <= TARGET),
        "timings": timings,
        "memory": record.get("memory"),
        "values": {k: v.value for k, v in record.metrics.items()},
        "status": {k: v.status for k, v in record.metrics.items() if v.status != "ok"},
        "device_name": record.environment.get("device_name"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--tokenizer", default="llamagen-vq-ds16-c2i")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument(
        "--num-workers", type=int, default=None, help="the engine's loader workers (default: its own choice; 0 for an .npz)"
    )
    parser.add_argument("--repeats", type=int, default=2, help="bare passes before and after the evaluations (best kept)")
    parser.add_argument("--cached", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the full metrics filling and then hitting the originals' feature cache")  # fmt: skip
    parser.add_argument("--out", default=str(REPO / "results" / "benchmarks" / "gpu_pass.json"))
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: torch {torch.__version__} sees no CUDA device")
    print(f"gpu_pass: {args.tokenizer} on {args.device}, {args.images} images at {args.resolution}, batch {args.batch_size}", flush=True)
    print(f"  work folder {ROOT}", flush=True)

    started = time.perf_counter()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result: dict = {
        "benchmark": "gpu_pass",
        "target": f"evaluation pass <= {TARGET}x the tokenizer's bare encode+decode (issue 10)",
        "tokenizer": args.tokenizer,
        "weights": "random, published architecture and checkpoint format; LPIPS AlexNet and Inception random in upstream layouts",
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "vtbench": vtbench.__version__,
        "images": args.images,
        "resolution": args.resolution,
        "batch_size": args.batch_size,
        "dtype": args.dtype,
        "complete": False,
        "errors": {},
    }
    plan = [("full_no_cache", FULL, False), ("pixel_only", PIXEL, False)]
    if args.cached:
        plan += [("full_cache_fill", FULL, True), ("full_cache_hit", FULL, True)]
    runs: dict[str, dict] = {}
    bare_runs: list[float] = []

    def write() -> None:
        """The result so far (a later failure or a timeout still leaves what was measured)."""
        if bare_runs:
            bare = min(bare_runs)
            summary = {name: summarise(runs[name], bare, metrics, use_cache) for name, metrics, use_cache in plan if name in runs}
            result.update({
                "bare_s": round(bare, 4), "bare_runs_s": [round(s, 4) for s in bare_runs],
                "bare_images_per_s": round(args.images / bare, 2), "runs": summary,
                "headline": {name: {k: s[k] for k in HEADLINE} for name, s in summary.items()},
            })  # fmt: skip
        result["total_benchmark_s"] = round(time.perf_counter() - started, 1)
        out.write_text(json.dumps(result, indent=2) + "\n")

    path = checkpoint(args.tokenizer, ROOT)
    result["metric_weight_overrides"] = sorted(make_metric_weights(ROOT / "weights"))
    arrays = photo_array(args.images, args.resolution)
    dataset = ROOT / "crops.npz"
    np.savez(dataset, arr_0=arrays)
    print(f"  set-up (checkpoint, metric weights, {args.images} crops): {time.perf_counter() - started:.1f} s", flush=True)

    # (a) bare encode + decode, the tokenizer as the engine builds it
    from vtbench.tokenizers import TOKENIZERS

    def bare_passes() -> list[float]:
        tokenizer = TOKENIZERS.create(args.tokenizer, weights=str(path), dtype=args.dtype).to(device)
        bare_pass(tokenizer, warm, device)
        return [bare_pass(tokenizer, batches, device) for _ in range(args.repeats)]

    images = torch.from_numpy(arrays).permute(0, 3, 1, 2).contiguous()
    batches = [b.to(device) for b in images.split(args.batch_size)]
    warm = batches[:1] if device.type == "cuda" else [batches[0][:2]]
    bare_runs += bare_passes()
    print(f"  bare encode+decode: {[round(s, 3) for s in bare_runs]} s", flush=True)
    write()

    # (b), (c) after a warm-up of the engine (CUDA kernels of the tokenizer, Inception, AlexNet; its numbers unused)
    limit = args.batch_size if device.type == "cuda" else 2
    for name, metrics, use_cache in [("warmup", FULL, False), *plan]:
        try:
            run = evaluate(name, path, dataset, metrics, args, ROOT / name, use_cache=use_cache, limit=limit if name == "warmup" else None)
        except Exception as exc:  # noqa: BLE001 - recorded, the other runs go on
            result["errors"][name] = f"{type(exc).__name__}: {exc}"
            print(f"  evaluate {name} FAILED: {result['errors'][name]}", flush=True)
            traceback.print_exc()
            continue
        if name != "warmup":
            runs[name] = run
        in_loop = run["record"].timings.get("total_s", float("nan"))
        print(f"  evaluate {name}: wall {run['wall_s']:.3f} s, in loop {in_loop:.3f} s", flush=True)
        write()

    after = bare_passes()
    bare_runs += after
    print(f"  bare encode+decode after: {[round(s, 3) for s in after]} s; best {min(bare_runs):.3f} s", flush=True)
    result["complete"] = not result["errors"]
    write()
    print(json.dumps({k: result.get(k) for k in ("device_name", "torch", "bare_s", "headline", "errors")}, indent=2), flush=True)
    print(f"wrote {out}", flush=True)
    if result["errors"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
