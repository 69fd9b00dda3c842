"""Encode/decode throughput and peak memory of every native tokenizer family at its
published size and native resolution, through ``vtbench.evaluate`` (PSNR only).

Speed does not depend on the weights' values, so each family runs with randomly
initialised weights of the published architecture, saved in the published checkpoint
format and loaded with ``--weights``, exactly as a user's checkpoint would be. The numbers
are costs, never quality. Result: results/benchmarks/tokenizer_speed[_DEVICE].json.
Usage: python benchmarks/tokenizer_speed.py [--images 8] [--batch-size 4] [--device cpu] [--dtype float32] [--only PRESET,...]
"""

from __future__ import annotations

import argparse
import atexit
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch
from common import photo_crops, save

import vtbench
from vtbench.images import Preprocessing

# Sampler settings a benchmark uses instead of the release's, to keep a CPU run short; the row says so.
OPTIONS = {"flowmo-lo": {"steps": 2}}  # 2 calls; the release's 25 steps with guidance make 31 (decoder_calls in the row)


def checkpoints(folder: Path) -> dict[str, tuple[str, Path]]:
    """preset -> (preset, a randomly initialised checkpoint in the published format)."""
    from vtbench.tokenizers.bsq_vit import BSQViTModel
    from vtbench.tokenizers.detailflow import DetailFlowModel
    from vtbench.tokenizers.flowmo import FlowMoModel
    from vtbench.tokenizers.gigatok import GigaTokModel
    from vtbench.tokenizers.ibq import IBQVQGAN
    from vtbench.tokenizers.infinity import BitwiseVAE
    from vtbench.tokenizers.llamagen import LlamaGenVQModel
    from vtbench.tokenizers.maskbit import MaskBitTokenizerModel
    from vtbench.tokenizers.open_magvit2 import LFQAutoencoder
    from vtbench.tokenizers.var import VarVQVAE

    torch.manual_seed(0)
    made = {
        "llamagen-vq-ds16-c2i": {"model": LlamaGenVQModel("ds16").state_dict()},
        "llamagen-vq-ds8-c2i": {"model": LlamaGenVQModel("ds8").state_dict()},
        "var-vqvae-256": VarVQVAE().state_dict(),
        "open-magvit2-256-l": {"state_dict": LFQAutoencoder().state_dict()},
        "bsq-vit-b18": {"state_dict": BSQViTModel().state_dict()},
        "maskbit-14bit": MaskBitTokenizerModel(bits=14).state_dict(),
        "ibq-16384": {"state_dict": _with_ema(IBQVQGAN(16384).state_dict())},
        "gigatok-s-b": {"model": GigaTokModel().state_dict()},
        "infinity-vae-d32": {"vae": BitwiseVAE(32).state_dict()},
        "detailflow-16": {"model": DetailFlowModel(128).state_dict()},
        "flowmo-lo": {"model_ema_state_dict": FlowMoModel(18).state_dict()},
    }
    paths = {}
    for preset, state in made.items():
        paths[preset] = (preset, folder / f"{preset}.pt")
        torch.save(state, paths[preset][1])
        del state
    paths["flextok-d12-d12-in1k"] = ("flextok-d12-d12-in1k", _flextok_release(folder / "flextok_d12_d12"))
    return paths


def _flextok_release(folder: Path) -> Path:
    """FlexTok d12-d12 with its VAE in one ``model.safetensors``, the config in the metadata, as released."""
    from diffusers import AutoencoderKL
    from safetensors.torch import save_file

    from vtbench.tokenizers.flextok import FlexTokModel

    model = FlexTokModel(encoder=(768, 12, 2048), decoder=(768, 12, 2048))
    vae = AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=16)  # fmt: skip
    tensors = {**model.state_dict(), **{f"vae.vae.{k}": v for k, v in vae.state_dict().items()}}
    config = {"vae": {"scaling_factor": 0.88, "latent_channels": 16}, "regularizer": {"levels": [8, 8, 8, 5, 5, 5]},
              "decoder": {"module_dict": {"dec_time_embedder": {"max_timestep": 1000.0}}}}  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in tensors.items()}, folder / "model.safetensors", metadata={k: str(v) for k, v in config.items()}
    )
    return folder / "model.safetensors"


def _with_ema(state: dict) -> dict:
    """Raw weights plus their EMA copies under ``model_ema.<name without dots>``, as IBQ saves them."""
    return {**state, **{"model_ema." + k.replace(".", ""): v for k, v in state.items()}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--only", default=None, help="comma-separated presets; their rows replace those in the existing result file")
    args = parser.parse_args()
    chosen = set(args.only.split(",")) if args.only else None
    root = Path(tempfile.mkdtemp(prefix="vtbench-tokenizer-speed-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)  # checkpoints and images are temporary
    images = photo_crops(root / "images", args.images, size=256)
    rows = []
    for preset, (name, path) in checkpoints(root).items():
        if chosen is not None and preset not in chosen:
            continue
        config = vtbench.RunConfig(
            name, str(images), metrics=["psnr"], tokenizer_options={"weights": str(path), "dtype": args.dtype, **OPTIONS.get(preset, {})},
            preprocessing=Preprocessing(None, "center-crop"), batch_size=args.batch_size, device=args.device, num_workers=0,
        )  # fmt: skip
        if args.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        record = vtbench.evaluate(config, root / "out")
        info, timings = record.subject.info, record.timings
        rows.append({
            "tokenizer": preset, "resolution": info["native_resolution"], "tokens_per_image": record.value("tokens"),
            "parameters": info["extra"]["parameters"], "encode_images_per_s": round(timings["encode_images_per_s"], 2),
            "decode_images_per_s": round(timings["decode_images_per_s"], 2), "wall_s": round(time.perf_counter() - started, 1),
            "process_peak_rss_mb": record.memory.peak_rss_mb, "cuda_peak_mb": record.memory.cuda_peak_mb,
            **({"options": OPTIONS[preset]} if preset in OPTIONS else {}),
            **({"decoder_calls": info["extra"]["decoder_calls_per_image"]} if "decoder_calls_per_image" in info["extra"] else {}),
        })  # fmt: skip
        print(rows[-1], flush=True)
    suffix = "" if args.device == "cpu" else f"_{args.device.replace(':', '')}"
    if chosen is not None:  # keep the other presets' rows of the last full run
        from common import RESULTS

        previous = RESULTS / f"tokenizer_speed{suffix}.json"
        if previous.is_file():
            kept = [row for row in json.loads(previous.read_text())["runs"] if row["tokenizer"] not in chosen]
            rows = kept + rows
    save(f"tokenizer_speed{suffix}", {"images": args.images, "batch_size": args.batch_size, "dtype": args.dtype, "runs": rows})


if __name__ == "__main__":
    main()
