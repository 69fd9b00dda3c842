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
              "reported": {"FID": _fid, "setup": "ImageNet 256x256, 50,000 samples, ADM reference batch", "source": "LlamaGen README"}},
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
              "reported": {"FID": _fid, "setup": "ImageNet, 50,000 samples, cfg 1.5, 250 DDPM steps, ADM reference batch",
                           "source": "paper arXiv:2212.09748"}},
        repo=f"facebook/DiT-XL-2-{_resolution}",
    )  # fmt: skip

GENERATORS.register(
    "var",
    "vtbench.generators.var:VARGenerator",
    description="VAR next-scale prediction transformer (options: depth, weights, cfg, top_k, top_p ...)",
)
# (depth, parameters, FID at 256x256 as the VAR README reports it: 50,000 samples, cfg 1.5, top-k 900, top-p 0.96)
for _depth, _parameters, _fid in ((16, "310M", 3.55), (20, "600M", 2.95), (24, "1.0B", 2.33), (30, "2.0B", 1.97)):
    GENERATORS.register(
        f"var-d{_depth}",
        "vtbench.generators.var:VARGenerator",
        description=f"VAR-d{_depth} ({_parameters}) class-conditional next-scale prediction at 256 px, 680 tokens in 10 scales",
        tags={"family": "autoregressive", "conditioning": "imagenet-class", "tokenizer": "var-vqvae-256", "native_resolution": 256,
              "source": "FoundationVision/var", "license": "MIT", "paper": "arXiv:2404.02905",
              "reported": {"FID": _fid, "setup": "ImageNet 256x256, 50,000 samples, ADM reference batch", "source": "VAR README"}},
        depth=_depth,
    )  # fmt: skip

for _size, _fid in (("l32", 2.77), ("b64", 2.48), ("s128", 1.97)):
    GENERATORS.register(
        f"titok-maskgit-{_size}",
        "vtbench.generators.maskgit:TiTokMaskGIT",
        description=f"MaskGIT over TiTok-{_size.upper()} 1D tokens (ImageBert), class-conditional ImageNet 256",
        tags={"family": "masked", "conditioning": "imagenet-class", "tokenizer": f"titok-{_size}", "native_resolution": 256,
              "source": f"hf://yucornetto/generator_titok_{_size}_imagenet", "license": "Apache-2.0", "paper": "arXiv:2406.07550",
              "reported": {"FID": _fid, "setup": "ImageNet 256x256 generation, as the 1d-tokenizer README reports it",
                           "source": "1d-tokenizer README"}},
        repo=f"yucornetto/generator_titok_{_size}_imagenet",
        tokenizer=f"titok-{_size}",
    )  # fmt: skip

__all__ = ["GENERATORS", "Generator"]


def __getattr__(name: str):  # the contract classes import torch: load them on first use
    if name in {"Generator"}:
        import importlib

        return getattr(importlib.import_module("vtbench.generators.base"), name)
    raise AttributeError(name)
