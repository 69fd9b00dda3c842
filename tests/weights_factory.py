"""Pretrained-format weights made by the tests: the real architectures, with deterministic
He-initialised parameters, saved exactly as the upstream files are (same keys, shapes,
containers). Nothing here downloads anything."""

from __future__ import annotations

import math
from pathlib import Path

import torch


def _he_init(state: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for key, value in state.items():
        if not value.is_floating_point():
            out[key] = value.clone()
        elif key.endswith("running_var"):
            out[key] = torch.ones_like(value)
        elif key.endswith("running_mean") or key.endswith("bias"):
            out[key] = torch.zeros_like(value)
        elif value.dim() >= 2:
            fan_in = value[0].numel()
            out[key] = torch.randn(value.shape, generator=generator) * math.sqrt(2.0 / fan_in)
        else:  # batch-norm scale
            out[key] = torch.ones_like(value)
    return out


def make_inception_weights(path: Path, seed: int = 0) -> Path:
    """A torch-fidelity InceptionV3 weights file (the layout of weights-inception-2015-12-05)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class Skeleton(FeatureExtractorInceptionV3):
        def load_state_dict(self, *args, **kwargs):  # build the module, load nothing
            return None

    empty = path.with_suffix(".empty.pth")
    torch.save({}, empty)
    skeleton = Skeleton("skeleton", ["2048"], feature_extractor_weights_path=str(empty))
    empty.unlink()
    torch.save(_he_init(skeleton.state_dict(), seed), path)
    return path


def make_torchvision_weights(arch: str, path: Path, seed: int = 0) -> Path:
    """A torchvision ImageNet checkpoint layout (``alexnet`` or ``vgg16``): every key and shape of
    the published file. The convolutional ``features`` (what LPIPS reads) are He-initialised;
    the fully connected ``classifier`` (nine tenths of the parameters, never read by LPIPS) is
    one broadcast constant per tensor (stride 0), so the file is megabytes instead of 0.5 GB."""
    import torchvision

    with torch.device("meta"):  # the layout only: no time spent initialising what is replaced
        layout = getattr(torchvision.models, arch)(weights=None).state_dict()
    features = _he_init({k: torch.empty(v.shape) for k, v in layout.items() if not k.startswith("classifier.")}, seed)
    classifier = {k: torch.full((1,) * v.dim(), 0.01).expand(v.shape) for k, v in layout.items() if k.startswith("classifier.")}
    torch.save(features | classifier, path)
    return path


def dinov2_layout(embed_dim: int = 384, depth: int = 12, grid: int = 37, patch: int = 14) -> dict[str, tuple[int, ...]]:
    """Key names and shapes of Meta's ``dinov2_vit*14_pretrain.pth`` (ViT-S: 384-d, 12 blocks)."""
    layout: dict[str, tuple[int, ...]] = {
        "cls_token": (1, 1, embed_dim),
        "pos_embed": (1, 1 + grid * grid, embed_dim),
        "mask_token": (1, embed_dim),
        "patch_embed.proj.weight": (embed_dim, 3, patch, patch),
        "patch_embed.proj.bias": (embed_dim,),
    }
    for block in range(depth):
        prefix = f"blocks.{block}."
        layout |= {
            prefix + "norm1.weight": (embed_dim,),
            prefix + "norm1.bias": (embed_dim,),
            prefix + "attn.qkv.weight": (3 * embed_dim, embed_dim),
            prefix + "attn.qkv.bias": (3 * embed_dim,),
            prefix + "attn.proj.weight": (embed_dim, embed_dim),
            prefix + "attn.proj.bias": (embed_dim,),
            prefix + "ls1.gamma": (embed_dim,),
            prefix + "norm2.weight": (embed_dim,),
            prefix + "norm2.bias": (embed_dim,),
            prefix + "mlp.fc1.weight": (4 * embed_dim, embed_dim),
            prefix + "mlp.fc1.bias": (4 * embed_dim,),
            prefix + "mlp.fc2.weight": (embed_dim, 4 * embed_dim),
            prefix + "mlp.fc2.bias": (embed_dim,),
            prefix + "ls2.gamma": (embed_dim,),
        }
    return layout | {"norm.weight": (embed_dim,), "norm.bias": (embed_dim,)}


def make_dinov2_weights(path: Path, embed_dim: int = 384, depth: int = 1, seed: int = 0) -> Path:
    """A DINOv2 pretrain checkpoint in Meta's layout (a shallow ViT-S/14 by default)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in dinov2_layout(embed_dim, depth).items():
        if key.endswith(("norm1.weight", "norm2.weight", "norm.weight")):
            state[key] = 1 + 0.1 * torch.randn(shape, generator=generator)
        elif key.endswith("gamma"):
            state[key] = 0.5 + 0.1 * torch.rand(shape, generator=generator)
        else:
            fan_in = math.prod(shape[1:]) if len(shape) > 1 else 1
            state[key] = torch.randn(shape, generator=generator) * (math.sqrt(1.0 / fan_in) if len(shape) > 1 else 0.05)
    torch.save(state, path)
    return path


def make_clip_weights(path: Path, embed_dim: int = 512, width: int = 64, layers: int = 1, patch: int = 32, seed: int = 0) -> Path:
    """An OpenAI CLIP TorchScript archive (``ViT-B-32.pt`` layout: ``visual.*`` image tower,
    text-tower keys beside it, fp16 weights), small enough for tests."""
    from torch_fidelity.feature_extractor_clip import CLIPVisual

    text_width, context = 32, 77

    class OpenAIClip(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.visual = CLIPVisual(embed_dim, 224, layers, width, patch).visual
            self.positional_embedding = torch.nn.Parameter(torch.zeros(context, text_width))
            self.token_embedding = torch.nn.Embedding(64, text_width)
            self.ln_final = torch.nn.LayerNorm(text_width)
            self.text_projection = torch.nn.Parameter(torch.zeros(text_width, embed_dim))
            self.logit_scale = torch.nn.Parameter(torch.ones([]))

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return self.visual(image)

    torch.manual_seed(seed)
    model = OpenAIClip()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("class_embedding") or name.endswith("positional_embedding") or name.endswith("proj"):
                param.normal_(0, width**-0.5)
    scripted = torch.jit.trace(model.half().float(), torch.zeros(1, 3, 224, 224))
    scripted.save(str(path))
    return path


def hub_snapshot(repo: str, revision: str = "0" * 40) -> Path:
    """The folder of ``repo`` at ``revision`` in the Hugging Face cache (``$HF_HUB_CACHE``),
    laid out as ``hf download`` leaves it: ``models--ORG--NAME/snapshots/REV`` + ``refs/main``."""
    import os

    root = Path(os.environ["HF_HUB_CACHE"]) / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(revision)
    snapshot = root / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    return snapshot


def tiny_diffusers_model(model_class: str, seed: int = 0) -> torch.nn.Module:
    """A small randomly initialised diffusers autoencoder of ``model_class``."""
    import diffusers

    torch.manual_seed(seed)
    blocks = {"block_out_channels": (8, 16), "layers_per_block": 1, "norm_num_groups": 4, "sample_size": 32}
    if model_class == "AutoencoderKL":
        return diffusers.AutoencoderKL(
            down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4,
            scaling_factor=0.5, shift_factor=0.1, **blocks,
        )  # fmt: skip
    if model_class == "VQModel":
        return diffusers.VQModel(
            down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4,
            num_vq_embeddings=64, vq_embed_dim=4, **blocks,
        )  # fmt: skip
    if model_class == "AutoencoderTiny":
        return diffusers.AutoencoderTiny(
            encoder_block_out_channels=(8, 8), decoder_block_out_channels=(8, 8), num_encoder_blocks=(1, 1), num_decoder_blocks=(1, 1),
            latent_channels=4,
        )  # fmt: skip
    if model_class == "AutoencoderDC":
        return diffusers.AutoencoderDC(
            latent_channels=8, encoder_block_types="ResBlock", decoder_block_types="ResBlock", encoder_block_out_channels=(8, 16),
            decoder_block_out_channels=(8, 16), encoder_layers_per_block=(1, 1), decoder_layers_per_block=(1, 1),
            encoder_qkv_multiscales=((), ()), decoder_qkv_multiscales=((), ()), decoder_norm_types="rms_norm", decoder_act_fns="silu",
            scaling_factor=0.3,
        )  # fmt: skip
    if model_class == "AutoencoderKLFlux2":
        return diffusers.AutoencoderKLFlux2(
            down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2, decoder_block_out_channels=(8, 16),
            latent_channels=4, **blocks,
        )  # fmt: skip
    if model_class == "VQModel-spatial":  # MoVQ: the decoder's norms are conditioned on the codes
        return diffusers.VQModel(
            block_out_channels=(32, 64), down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("AttnUpDecoderBlock2D",) * 2,
            layers_per_block=1, latent_channels=4, num_vq_embeddings=64, vq_embed_dim=4, norm_num_groups=32, norm_type="spatial",
        )  # fmt: skip
    if model_class == "AutoencoderRAE":
        return diffusers.AutoencoderRAE(
            encoder_type="dinov2", encoder_hidden_size=64, encoder_patch_size=14, encoder_num_hidden_layers=1, decoder_hidden_size=64,
            decoder_num_hidden_layers=1, decoder_num_attention_heads=2, decoder_intermediate_size=128, patch_size=16,
            encoder_input_size=28, image_size=32,
        )  # fmt: skip
    if model_class == "AutoencoderKLCosmos":
        return diffusers.AutoencoderKLCosmos(
            latent_channels=4, encoder_block_out_channels=(8, 16), decode_block_out_channels=(8, 16), attention_resolutions=(),
            resolution=32, num_layers=1, patch_size=1, spatial_compression_ratio=2, temporal_compression_ratio=1,
        )  # fmt: skip
    if model_class in ("AutoencoderKLQwenImage", "AutoencoderKLWan"):
        return getattr(diffusers, model_class)(
            base_dim=8, z_dim=4, dim_mult=[1, 2], num_res_blocks=1, attn_scales=[], temperal_downsample=[False],
            latents_mean=[0.1, 0.2, 0.3, 0.4], latents_std=[1.5, 2.0, 2.5, 3.0],
        )  # fmt: skip
    raise ValueError(model_class)


def tiny_transformers_vq(model_class: str, seed: int = 0) -> tuple[torch.nn.Module, dict]:
    """A small transformers VQ-VAE and its config dict (Janus: a 4x4 grid at 8x8 pixels)."""
    import transformers

    torch.manual_seed(seed)
    if model_class == "JanusVQVAE":
        config = transformers.JanusVQVAEConfig(
            embed_dim=8, num_embeddings=64, latent_channels=32, base_channels=32, channel_multiplier=[1, 2], num_res_blocks=1,
            num_patches=4, projection_dim=16, image_token_embed_dim=16,
        )  # fmt: skip
    else:
        config = transformers.Emu3VQVAEConfig(
            codebook_size=64, embed_dim=4, latent_channels=4, base_channels=32, channel_multiplier=[1, 2], num_res_blocks=1,
            attn_resolutions=[], hidden_size=64, temporal_downsample_factor=4,
        )  # fmt: skip
    return getattr(transformers, model_class)(config).eval(), config.to_dict()


def save_multimodal_checkpoint(folder: Path, model_type: str, vq_model: torch.nn.Module, vq_config: dict) -> Path:
    """Write a VQ-VAE the way multimodal repositories ship it: ``config.json`` with a
    ``vq_config``, two safetensors shards (the VQ tensors under ``model.vqmodel.``) and the
    shard index."""
    import json

    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": model_type, "vq_config": vq_config}))
    shards = {
        "model-00001-of-00002.safetensors": {"model.language_model.embed_tokens.weight": torch.zeros(4, 4)},
        "model-00002-of-00002.safetensors": {
            f"model.vqmodel.{k}": v.detach().clone().contiguous() for k, v in vq_model.state_dict().items()
        },
    }
    for name, tensors in shards.items():
        save_file(tensors, str(folder / name))
    weight_map = {key: name for name, tensors in shards.items() for key in tensors}
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return folder


def letters_clip_tokenizer(folder: Path):
    """A CLIP BPE tokenizer over single letters (no merges), saved in ``folder``."""
    import json

    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, **{c: 2 + i for i, c in enumerate(letters)}}
    vocab.update({f"{c}</w>": 2 + len(letters) + i for i, c in enumerate(letters)})
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return transformers.CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)


def tiny_clip_model(folder: Path, seed: int = 0) -> Path:
    """A small transformers CLIP (both towers, 32-px images) and its processor, as
    ``save_pretrained`` writes them (the layout of ``openai/clip-vit-*`` on the hub)."""
    import transformers

    tokenizer = letters_clip_tokenizer(folder / "tokenizer-files")
    torch.manual_seed(seed)
    config = transformers.CLIPConfig(
        text_config={"vocab_size": len(tokenizer.get_vocab()), "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 77, "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1},
        vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 32,
                       "patch_size": 8},
        projection_dim=8,
    )  # fmt: skip
    transformers.CLIPModel(config).save_pretrained(folder)
    processor = transformers.CLIPProcessor(
        image_processor=transformers.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tokenizer,
    )
    processor.save_pretrained(folder)
    return folder


def tiny_text_to_image_pipeline(folder: Path, seed: int = 0) -> Path:
    """A small Stable Diffusion pipeline saved with ``save_pretrained``: a one-layer CLIP text
    encoder over a letters-only BPE vocabulary, a two-level UNet and the small KL VAE (8x8 px)."""

    import diffusers
    import transformers

    tokenizer = letters_clip_tokenizer(folder)
    vocab = tokenizer.get_vocab()
    torch.manual_seed(seed)
    text = transformers.CLIPTextModel(transformers.CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1,
    ))  # fmt: skip
    unet = diffusers.UNet2DConditionModel(
        sample_size=4, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16, norm_num_groups=4, attention_head_dim=2,
    )  # fmt: skip
    pipe = diffusers.StableDiffusionPipeline(
        vae=tiny_diffusers_model("AutoencoderKL"), text_encoder=text, tokenizer=tokenizer, unet=unet, scheduler=diffusers.DDIMScheduler(),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )  # fmt: skip
    pipe.save_pretrained(folder / "pipeline")
    return folder / "pipeline"


def make_llamagen_checkpoint(path: Path, seed: int = 0) -> Path:
    """A small VQ-16 (ch 32, z 32, 64 codes) saved as LlamaGen's training script saves it."""
    import argparse

    from vtbench.tokenizers.llamagen import LlamaGenVQModel

    torch.manual_seed(seed)
    model = LlamaGenVQModel("ds16", codebook_size=64, codebook_dim=8, ch=32, z_channels=32)
    state = {**model.state_dict(), "quantize.codebook_used": torch.zeros(65536)}
    torch.save({"model": state, "steps": 1, "args": argparse.Namespace(vq_model="VQ-16")}, path)
    return path


class _TinyI3D(torch.nn.Module):
    """The call signature of the common ``i3d_torchscript.pt`` (StyleGAN-V, TokenBench):
    ``detector(videos, rescale=..., resize=..., return_features=...)``, videos (N, 3, T, H, W)
    in [-1, 1] (``rescale``: in [0, 255]); 400 Kinetics logits, softmaxed unless ``return_features``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv3d(3, 16, kernel_size=(3, 7, 7), stride=(1, 4, 4), padding=(1, 3, 3))
        self.head = torch.nn.Linear(32, 400)

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False) -> torch.Tensor:
        if rescale:
            x = x / 127.5 - 1
        if resize:
            x = torch.nn.functional.interpolate(x, size=(x.shape[2], 224, 224), mode="trilinear", align_corners=False)
        h = torch.relu(self.conv(x))
        pooled = torch.cat([h.mean(dim=(2, 3, 4)), h.amax(dim=(2, 3, 4))], dim=1)
        logits = self.head(pooled)
        return logits if return_features else torch.softmax(logits, dim=1)


def make_i3d_torchscript(path: Path, seed: int = 0) -> Path:
    """A small I3D-shaped detector saved as TorchScript, as ``i3d_torchscript.pt`` is."""
    torch.manual_seed(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.script(_TinyI3D().eval()).save(str(path))
    return path


class _CosmosFSQ(torch.nn.Module):
    """Cosmos' FSQuantizer (levels 8,8,8,5,5,5): tanh-bounded, rounded, ids in mixed radix;
    returns (indices, codes, loss) as the published encoder.jit's last stage does."""

    def __init__(self, levels: tuple[int, ...] = (8, 8, 8, 5, 5, 5)) -> None:
        super().__init__()
        self.dtype = torch.bfloat16
        self.register_buffer("levels", torch.tensor(levels, dtype=torch.int32), persistent=False)
        self.register_buffer("basis", torch.cumprod(torch.tensor((1, *levels[:-1])), dim=0).to(torch.int32), persistent=False)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z = z.movedim(1, -1).float()
        half_l = (self.levels - 1) * (1 + 1e-3) / 2
        offset = torch.where(self.levels % 2 == 0, 0.5, 0.0)
        bounded = torch.tanh(z + torch.atanh(offset / half_l)) * half_l - offset
        half_width = self.levels // 2
        codes = torch.round(bounded) / half_width
        indices = ((codes * half_width + half_width) * self.basis).sum(dim=-1).to(torch.int32)
        return indices, codes.movedim(-1, 1).to(self.dtype), torch.zeros(1, dtype=self.dtype)

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        half_width = self.levels // 2
        codes = ((indices.unsqueeze(-1) // self.basis) % self.levels - half_width) / half_width
        return codes.movedim(-1, 1).to(self.dtype)


class _CosmosInverseFSQ(torch.nn.Module):
    def __init__(self, quantizer: _CosmosFSQ) -> None:
        super().__init__()
        self.quantizer = quantizer

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        return self.quantizer.indices_to_codes(indices)


class _CausalConv(torch.nn.Module):
    """Down: frames (B, C, 1 + t k, H, W) -> (B, C', 1 + k, H/s, W/s), the first frame repeated in
    front (causal), then one strided convolution. Up: the transposed convolution, tanh, and the
    repeated frames dropped. Images (temporal 1) are 4-d throughout."""

    def __init__(self, channels: int, out: int, temporal: int, spatial: int, video: bool, up: bool = False) -> None:
        super().__init__()
        self.temporal, self.up = temporal, up
        kernel = (temporal, spatial, spatial) if video else (spatial, spatial)
        layers = (torch.nn.ConvTranspose3d, torch.nn.ConvTranspose2d) if up else (torch.nn.Conv3d, torch.nn.Conv2d)
        self.conv = layers[0 if video else 1](channels, out, kernel, stride=kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = torch.tanh(self.conv(x))
            return x[:, :, self.temporal - 1 :] if self.temporal > 1 else x
        if self.temporal > 1:
            x = torch.cat([x[:, :, :1].expand(-1, -1, self.temporal - 1, -1, -1), x], dim=2)
        return self.conv(x)


def make_cosmos_tokenizer(folder: Path, kind: str = "DV4x8x8", seed: int = 0) -> Path:
    """A small Cosmos tokenizer as NVIDIA publishes one: ``encoder.jit`` (encoder, quant_conv,
    quantizer: ids and codes for a discrete kind, the latent for a continuous one) and
    ``decoder.jit`` (inverse quantizer, post_quant_conv, decoder), TorchScript in bfloat16."""
    from collections import OrderedDict

    from vtbench.tokenizers.cosmos import parse_kind

    spec = parse_kind(kind)
    discrete, video, shape = spec["discrete"], spec["video"], (spec["temporal"], spec["spatial"], spec["video"])
    conv = torch.nn.Conv3d if video else torch.nn.Conv2d
    torch.manual_seed(seed)
    width = 6 if discrete else 16
    encoder = [("encoder", _CausalConv(3, 12, *shape)), ("quant_conv", conv(12, width, 1))]
    decoder = [("post_quant_conv", conv(width, 12, 1)), ("decoder", _CausalConv(12, 3, *shape, up=True))]
    if discrete:
        quantizer = _CosmosFSQ()
        encoder.append(("quantizer", quantizer))
        decoder.insert(0, ("inv_quant", _CosmosInverseFSQ(quantizer)))
    folder.mkdir(parents=True, exist_ok=True)
    for name, stages in (("encoder", encoder), ("decoder", decoder)):
        module = torch.nn.Sequential(OrderedDict(stages)).to(torch.bfloat16).eval()
        torch.jit.save(torch.jit.script(module), str(folder / f"{name}.jit"))
    return folder
