"""TiTok 1D tokenizers (bytedance/1d-tokenizer, arXiv 2406.07550), written here.

A ViT encoder reads 16x16 patches of a 256-px image together with N learned latent
tokens and keeps only the latents: the image becomes N ids (32 to 256), not a grid. The
decoder reads N quantized latents with 256 mask tokens and predicts the image from the
mask tokens' outputs.

Two generations are published on the hub (``config.json`` + ``model.safetensors``):
- two-stage ``L-32``, ``B-64``, ``S-128`` (4096 L2-normalised 12-d codes): the decoder
  predicts logits over a MaskGIT-VQGAN codebook; their softmax weights the 1024 code
  vectors, and a fine-tuned MaskGIT-VQGAN pixel decoder paints the image. Their encoder
  has a quirk kept here: the latents are reshaped, not transposed, before ``conv_out``.
- single-stage ``BL-64``, ``BL-128``, ``SL-256`` (8192 raw 64-d codes): the decoder predicts
  pixels directly.
Images go in as [0, 1]; reconstructions are clamped by the runner.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vtbench.tokenizers.base import TokenizerInfo, Tokens, nearest_codes
from vtbench.tokenizers.conv_blocks import group_norm
from vtbench.tokenizers.neural import Codebook, NetworkTokenizer, compute_dtype, hub_unavailable, local_path
from vtbench.tokenizers.transformer_blocks import ResidualAttentionBlock
from vtbench.weights import offline

VIT_SIZES = {"small": (512, 8, 8), "base": (768, 12, 12), "large": (1024, 24, 16)}  # width, layers, heads
GRID, PATCH, MASKGIT_CODES = 16, 16, 1024


class TiTokEncoder(nn.Module):
    def __init__(self, size: str, tokens: int, token_size: int, legacy: bool) -> None:
        super().__init__()
        width, layers, heads = VIT_SIZES[size]
        self.legacy = legacy
        self.patch_embed = nn.Conv2d(3, width, PATCH, stride=PATCH)
        self.class_embedding = nn.Parameter(torch.zeros(1, width))
        self.positional_embedding = nn.Parameter(torch.zeros(GRID * GRID + 1, width))
        self.latent_token_positional_embedding = nn.Parameter(torch.zeros(tokens, width))
        self.ln_pre, self.ln_post = nn.LayerNorm(width), nn.LayerNorm(width)
        self.transformer = nn.ModuleList([ResidualAttentionBlock(width, heads) for _ in range(layers)])
        self.conv_out = nn.Conv2d(width, token_size, 1)

    def forward(self, images: torch.Tensor, latent_tokens: torch.Tensor) -> torch.Tensor:
        """(N, 3, 256, 256) in [0, 1] -> (N, token_size, 1, tokens)."""
        n = images.shape[0]
        x = self.patch_embed(images).flatten(2).transpose(1, 2)
        x = torch.cat([self.class_embedding.expand(n, -1, -1), x], dim=1) + self.positional_embedding
        latents = (latent_tokens + self.latent_token_positional_embedding).expand(n, -1, -1)
        x = self.ln_pre(torch.cat([x, latents], dim=1))
        for block in self.transformer:
            x = block(x)
        latents = self.ln_post(x[:, GRID * GRID + 1 :])
        count, width = latents.shape[1], latents.shape[2]
        grid = latents.reshape(n, width, count, 1) if self.legacy else latents.transpose(1, 2).reshape(n, width, count, 1)
        return self.conv_out(grid).reshape(n, -1, 1, count)


class TiTokDecoder(nn.Module):
    def __init__(self, size: str, tokens: int, token_size: int, legacy: bool) -> None:
        super().__init__()
        width, layers, heads = VIT_SIZES[size]
        self.legacy = legacy
        self.decoder_embed = nn.Linear(token_size, width)
        self.class_embedding = nn.Parameter(torch.zeros(1, width))
        self.positional_embedding = nn.Parameter(torch.zeros(GRID * GRID + 1, width))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.latent_token_positional_embedding = nn.Parameter(torch.zeros(tokens, width))
        self.ln_pre, self.ln_post = nn.LayerNorm(width), nn.LayerNorm(width)
        self.transformer = nn.ModuleList([ResidualAttentionBlock(width, heads) for _ in range(layers)])
        if legacy:
            self.ffn = nn.Sequential(nn.Conv2d(width, 2 * width, 1), nn.Tanh(), nn.Conv2d(2 * width, MASKGIT_CODES, 1))
        else:
            self.ffn = nn.Sequential(nn.Conv2d(width, PATCH * PATCH * 3, 1))
            self.conv_out = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(N, token_size, 1, tokens) -> MaskGIT logits (N, 1024, 16, 16) or pixels (N, 3, 256, 256)."""
        n, _, _, count = z.shape
        latents = self.decoder_embed(z.reshape(n, -1, count).transpose(1, 2)) + self.latent_token_positional_embedding[:count]
        masks = torch.cat([self.class_embedding.expand(n, -1, -1), self.mask_token.expand(n, GRID * GRID, -1)], dim=1)
        x = self.ln_pre(torch.cat([masks + self.positional_embedding, latents], dim=1))
        for block in self.transformer:
            x = block(x)
        x = self.ln_post(x[:, 1 : GRID * GRID + 1]).transpose(1, 2).reshape(n, -1, GRID, GRID)
        x = self.ffn(x)
        if self.legacy:
            return x
        pixels = x.reshape(n, PATCH, PATCH, 3, GRID, GRID).permute(0, 3, 4, 1, 5, 2).reshape(n, 3, GRID * PATCH, GRID * PATCH)
        return self.conv_out(pixels)


class MaskGitResnetBlock(nn.Module):
    """MaskGIT-VQGAN's block: bias-free convolutions; when the width changes, the 1x1
    shortcut is applied to the block's own output and the input is dropped (as upstream)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = group_norm(in_channels), nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.norm2, self.conv2 = group_norm(out_channels), nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(out_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.silu(self.norm2(self.conv1(F.silu(self.norm1(x))))))
        return h + (self.nin_shortcut(h) if hasattr(self, "nin_shortcut") else x)


class MaskGitDecoder(nn.Module):
    def __init__(self, hidden: int = 128, multipliers: tuple[int, ...] = (1, 1, 2, 2, 4), z_channels: int = 256, blocks: int = 2) -> None:
        super().__init__()
        top = hidden * multipliers[-1]
        self.conv_in = nn.Conv2d(z_channels, top, 3, padding=1)
        self.mid = nn.ModuleList([MaskGitResnetBlock(top, top) for _ in range(blocks)])
        self.up = nn.ModuleList()
        for i in range(len(multipliers)):
            channels_in = hidden * multipliers[min(i + 1, len(multipliers) - 1)]
            level = nn.Module()
            level.block = nn.ModuleList(
                [MaskGitResnetBlock(channels_in if j == 0 else hidden * multipliers[i], hidden * multipliers[i]) for j in range(blocks)]
            )
            if i != 0:
                level.upsample_conv = nn.Conv2d(hidden * multipliers[i], hidden * multipliers[i], 3, padding=1)
            self.up.append(level)
        self.norm_out, self.conv_out = group_norm(hidden * multipliers[0]), nn.Conv2d(hidden * multipliers[0], 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(z)
        for block in self.mid:
            h = block(h)
        for level in reversed(self.up):
            for block in level.block:
                h = block(h)
            if hasattr(level, "upsample_conv"):
                h = level.upsample_conv(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


class TiTokModel(nn.Module):
    def __init__(self, encoder_size: str, decoder_size: str, tokens: int, codebook_size: int, token_size: int, legacy: bool,
                 pixel_decoder: bool) -> None:  # fmt: skip
        super().__init__()
        self.latent_tokens = nn.Parameter(torch.zeros(tokens, VIT_SIZES[encoder_size][0]))
        self.encoder = TiTokEncoder(encoder_size, tokens, token_size, legacy)
        self.decoder = TiTokDecoder(decoder_size, tokens, token_size, legacy)
        self.quantize = Codebook(codebook_size, token_size)
        if pixel_decoder:
            self.pixel_quantize = Codebook(MASKGIT_CODES, 256)
            self.pixel_decoder = MaskGitDecoder()


def model_config(config: dict[str, Any]) -> dict[str, Any]:
    """TiTok's ``config.json`` (its OmegaConf dump) -> the architecture and quantizer settings."""
    vq = config.get("model", {}).get("vq_model", config)
    crop = config.get("dataset", {}).get("preprocessing", {}).get("crop_size", 256)
    if crop != GRID * PATCH or vq.get("vit_enc_patch_size", PATCH) != PATCH or vq.get("quantize_mode", "vq") != "vq":
        raise ValueError(f"only VQ TiTok at 256 px with 16-px patches is supported, got {vq}")
    legacy = bool(vq.get("is_legacy", True))
    return {
        "encoder_size": vq["vit_enc_model_size"], "decoder_size": vq["vit_dec_model_size"], "tokens": int(vq["num_latent_tokens"]),
        "codebook_size": int(vq["codebook_size"]), "token_size": int(vq["token_size"]), "legacy": legacy,
        "pixel_decoder": legacy and bool(vq.get("finetune_decoder", True)), "l2_norm": bool(vq.get("use_l2_norm", False)),
    }  # fmt: skip


class TiTok(NetworkTokenizer):
    """A TiTok model from the hub (``repo``) or a local copy of its folder (``weights=``)."""

    def __init__(self, repo: str, revision: str | None = None, weights: str | None = None, dtype: str = "float32") -> None:
        from safetensors.torch import load_file

        self.name, self.repo, self.revision, self.dtype_name = repo, repo, revision, dtype
        self.dtype = compute_dtype(dtype)
        self.weights = local_path(weights)
        folder = self.weights or self._snapshot()
        settings = model_config(json.loads((folder / "config.json").read_text()))
        self.l2_norm = settings.pop("l2_norm")
        self.settings = settings
        self.model = TiTokModel(**settings)
        try:
            self.model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=True)
        except (RuntimeError, FileNotFoundError) as exc:
            raise ValueError(f"{folder}: model.safetensors does not match the TiTok layout {settings}: {exc}") from None
        self.model.eval().requires_grad_(False).to(self.dtype)
        self.info = TokenizerInfo(
            family="discrete", quantizer="vq", codebook_size=settings["codebook_size"], token_grid=(settings["tokens"],),
            tokens_per_image=settings["tokens"], native_resolution=GRID * PATCH, accepts_any_size=False, input_range=(0.0, 1.0),
            license="Apache-2.0", source=str(self.weights) if self.weights else f"hf://{repo}", paper="arXiv:2406.07550",
            extra={**settings, "l2_norm": self.l2_norm, "parameters": self.parameter_count()},
        )  # fmt: skip

    def _snapshot(self) -> Path:
        from huggingface_hub import snapshot_download

        try:
            path = snapshot_download(self.repo, revision=self.revision, allow_patterns=["config.json", "model.safetensors"],
                                     local_files_only=offline())  # fmt: skip
        except Exception as exc:
            raise hub_unavailable(self.repo, self.repo, None, exc) from None
        return Path(path)

    def options(self) -> dict[str, Any]:
        weights = str(self.weights) if self.weights else None
        return {"repo": self.repo, "revision": self.revision, "weights": weights, "dtype": self.dtype_name}

    def _codebook(self) -> torch.Tensor:
        codebook = self.model.quantize.embedding.weight.float()
        return F.normalize(codebook, dim=-1) if self.l2_norm else codebook

    def encode(self, images: torch.Tensor) -> Tokens:
        n, _, height, width = images.shape
        if (height, width) != (GRID * PATCH, GRID * PATCH):
            raise ValueError(f"TiTok encodes {GRID * PATCH}x{GRID * PATCH} images, got {width}x{height}")
        z = self.model.encoder(images.to(self.device, self.dtype), self.model.latent_tokens)
        flat = z.float().permute(0, 2, 3, 1).reshape(-1, z.shape[1])  # the quantizer runs in float32
        flat = F.normalize(flat, dim=-1) if self.l2_norm else flat
        ids = nearest_codes(flat, self._codebook()).reshape(n, -1)
        return Tokens.from_ids(ids, self.info.codebook_size, (height, width))

    def decode(self, tokens: Tokens) -> torch.Tensor:
        ids = tokens.data
        z = self._codebook()[ids].permute(0, 2, 1).unsqueeze(2).to(self.dtype)  # (N, token_size, 1, tokens)
        out = self.model.decoder(z)
        if hasattr(self.model, "pixel_decoder"):
            weights = out.softmax(dim=1)
            codes = torch.einsum("nchw,cd->ndhw", weights, self.model.pixel_quantize.embedding.weight)
            out = self.model.pixel_decoder(codes)
        return out.float()
