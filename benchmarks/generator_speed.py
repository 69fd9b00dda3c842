"""Sampling speed of the built-in generators, random weights at the published sizes.

LlamaGen GPT-B at 256 (111M parameters, 256 tokens per image, classifier-free guidance so
two sequences per image, KV cache), CPU float32 by default: seconds per image for the token
sampling, and for decoding the tokens with LlamaGen's VQ-16 decoder (72M parameters).
Usage: python benchmarks/generator_speed.py [--images 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch
from common import save

from vtbench.generators.llamagen import GPT, GPTConfig
from vtbench.generators.sampling import ClassPlan
from vtbench.tokenizers.base import Tokens
from vtbench.tokenizers.llamagen import LlamaGenVQModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(layers=12, heads=12, dim=768)).eval().to(device)
    for parameter in gpt.parameters():
        torch.nn.init.normal_(parameter, std=0.02)
    plan = ClassPlan()
    labels = torch.tensor([plan.label(i) for i in range(args.images)], device=device)
    generators = [plan.generator(i) for i in range(args.images)]
    gpt.generate(labels[:1], generators[:1], cfg_scale=2.0)  # warm-up
    start = time.perf_counter()
    ids = gpt.generate(labels, generators, cfg_scale=2.0, top_k=0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    sampling = time.perf_counter() - start
    vq = LlamaGenVQModel("ds16").eval().to(device)
    start = time.perf_counter()
    with torch.no_grad():
        codes = vq.quantize.lookup(Tokens.from_ids(ids.view(-1, 16, 16), 16384, (256, 256)).data)
        vq.decoder(vq.post_quant_conv(codes))
    if device.type == "cuda":
        torch.cuda.synchronize()
    decoding = time.perf_counter() - start
    result = {
        "generator": "LlamaGen GPT-B, 256 px (16x16 tokens), cfg 2.0, random weights",
        "device": str(device),
        "images": args.images,
        "gpt_parameters_m": round(sum(p.numel() for p in gpt.parameters()) / 1e6, 1),
        "sampling_s_per_image": round(sampling / args.images, 2),
        "tokens_per_s": round(args.images * 256 / sampling, 1),
        "vq_decode_s_per_image": round(decoding / args.images, 2),
        "images_per_s": round(args.images / (sampling + decoding), 3),
    }
    save(f"generator_speed_{device.type}", result)


if __name__ == "__main__":
    main()
