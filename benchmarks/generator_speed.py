"""Sampling speed of the built-in generator architectures, random weights at the published sizes.

Token sampling only (the decoders are the tokenizers', timed in ``tokenizer_speed.py``; the
LlamaGen VQ-16 decode is timed here too), CPU float32 unless a GPU is present, classifier-free
guidance on (two sequences per image): LlamaGen GPT-B at 256 (111M, 256 tokens, KV cache),
VAR-d16 (310M, 680 tokens in 10 scales), and MaskGIT over TiTok-L-32 (BERT 24 x 768,
32 tokens, 8 steps). Seconds per image and images/s.
Usage: python benchmarks/generator_speed.py [--images 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from common import save

from vtbench.generators.llamagen import GPT, GPTConfig
from vtbench.generators.maskgit import ImageBert
from vtbench.generators.sampling import ClassPlan
from vtbench.generators.var import PATCH_NUMS, VARTransformer
from vtbench.tokenizers.base import Tokens
from vtbench.tokenizers.llamagen import LlamaGenVQModel
from vtbench.tokenizers.var import MultiScaleQuantizer, phi_for_scales


def _random(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    for name, parameter in model.named_parameters():
        if "scale_mul" not in name:
            torch.nn.init.normal_(parameter, std=0.02)
    return model.eval().to(device)


def _timed(fn: Callable[[], object], device: torch.device) -> float:
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    plan = ClassPlan()
    labels = torch.tensor([plan.label(i) for i in range(args.images)], device=device)
    generators = [plan.generator(i) for i in range(args.images)]
    rows = {}

    gpt = _random(GPT(GPTConfig(layers=12, heads=12, dim=768)), device)
    gpt.generate(labels[:1], generators[:1], cfg_scale=2.0)  # warm-up
    ids: list[torch.Tensor] = []
    seconds = _timed(lambda: ids.append(gpt.generate(labels, generators, cfg_scale=2.0)), device)
    vq = LlamaGenVQModel("ds16").eval().to(device)
    with torch.no_grad():
        decode = _timed(
            lambda: vq.decoder(vq.post_quant_conv(vq.quantize.lookup(Tokens.from_ids(ids[0].view(-1, 16, 16), 16384, (256, 256)).data))),
            device,
        )  # noqa: E501
    rows["llamagen-gpt-b-256"] = {
        "parameters_m": 110.9,
        "sampling_s_per_image": seconds / args.images,
        "vq_decode_s_per_image": decode / args.images,
    }

    var = _random(VARTransformer(16, PATCH_NUMS[256]), device)
    quantize = _random(MultiScaleQuantizer(4096, 32), device)
    phi = phi_for_scales(10)

    def refine(scale_ids: torch.Tensor, k: int) -> torch.Tensor:
        return quantize.refine(scale_ids, PATCH_NUMS[256][k], 16, phi[k], k == 9)

    with torch.no_grad():
        var.generate(labels[:1], generators[:1], refine, cfg=1.5, top_k=900, top_p=0.96)
        seconds = _timed(lambda: var.generate(labels, generators, refine, cfg=1.5, top_k=900, top_p=0.96), device)
    rows["var-d16"] = {
        "parameters_m": round(sum(p.numel() for p in var.parameters()) / 1e6, 1),
        "sampling_s_per_image": seconds / args.images,
    }

    bert = _random(ImageBert(4096, 32), device)
    bert.generate(labels[:1], generators[:1], guidance_scale=4.5, guidance_decay="linear", randomize_temperature=9.5)
    seconds = _timed(
        lambda: bert.generate(labels, generators, guidance_scale=4.5, guidance_decay="linear", randomize_temperature=9.5), device
    )
    rows["titok-maskgit-l32"] = {
        "parameters_m": round(sum(p.numel() for p in bert.parameters()) / 1e6, 1),
        "sampling_s_per_image": seconds / args.images,
    }

    for row in rows.values():
        row["sampling_s_per_image"] = round(row["sampling_s_per_image"], 2)
        row["images_per_s"] = round(1 / row["sampling_s_per_image"], 3)
        if "vq_decode_s_per_image" in row:
            row["vq_decode_s_per_image"] = round(row["vq_decode_s_per_image"], 2)
    save(f"generator_speed_{device.type}", {"device": str(device), "images": args.images, "cfg": "on", "generators": rows})


if __name__ == "__main__":
    main()
