"""Generators: the contract (``base``) and built-ins, registered by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vtbench.registry import Registry

if TYPE_CHECKING:
    from vtbench.generators.base import Generator

GENERATORS: Registry[Generator] = Registry("generators")
GENERATORS.register(
    "samples-reader",
    "vtbench.generators.samples:SampleReader",
    description="Samples made elsewhere: an image folder or an ADM .npz (arr_0 uint8 NHWC); option: path",
)

GENERATORS.register(
    "llamagen-c2i",
    "vtbench.generators.llamagen:LlamaGenC2I",
    description="LlamaGen class-conditional GPT (options: model B/L/XL/XXL/3B, resolution, weights, cfg_scale, top_k, top_p, ...)",
)
# (size, resolution, FID at 256x256 with 50k samples as the LlamaGen README reports it)
for _size, _resolution, _fid in (("B", 256, 5.46), ("B", 384, 6.09), ("L", 256, 3.80), ("L", 384, 3.07), ("XL", 384, 2.62),
                                 ("XXL", 384, 2.34), ("3B", 384, 2.18)):  # fmt: skip
    GENERATORS.register(
        f"llamagen-c2i-{_size.lower()}-{_resolution}",
        "vtbench.generators.llamagen:LlamaGenC2I",
        description=f"LlamaGen-{_size} class-conditional GPT, {_resolution // 16}x{_resolution // 16} VQ-16 tokens ({_resolution} px)",
        tags={"family": "autoregressive", "conditioning": "imagenet-class", "tokenizer": "llamagen-vq-ds16-c2i",
              "native_resolution": _resolution, "source": "FoundationVision/LlamaGen", "license": "MIT", "paper": "arXiv:2406.06525",
              "reported": {"FID": _fid, "setup": "ImageNet 256x256, 50,000 samples, ADM reference batch"}},
        model=_size,
        resolution=_resolution,
    )  # fmt: skip

GENERATORS.register(
    "diffusers",
    "vtbench.generators.diffusion:DiffusersPipeline",
    description="Any diffusers pipeline by hub name: class-conditional (DiTPipeline) or text-to-image with prompts=FILE",
)
for _resolution, _fid in ((256, 2.27), (512, 3.04)):
    GENERATORS.register(
        f"dit-xl-2-{_resolution}",
        "vtbench.generators.diffusion:DiffusersPipeline",
        description=f"DiT-XL/2 class-conditional diffusion transformer at {_resolution} px (diffusers DiTPipeline)",
        tags={"family": "diffusion", "conditioning": "imagenet-class", "native_resolution": _resolution, "source": f"hf://facebook/DiT-XL-2-{_resolution}",
              "license": "CC-BY-NC-4.0", "paper": "arXiv:2212.09748",
              "reported": {"FID": _fid, "setup": "ImageNet, 50,000 samples, cfg 1.5, 250 DDPM steps, ADM reference batch"}},
        repo=f"facebook/DiT-XL-2-{_resolution}",
    )  # fmt: skip

__all__ = ["GENERATORS", "Generator"]


def __getattr__(name: str):  # the contract classes import torch: load them on first use
    if name in {"Generator"}:
        import importlib

        return getattr(importlib.import_module("vtbench.generators.base"), name)
    raise AttributeError(name)
