"""DetailFlow's coarse-to-fine 1-D tokenizer (ByteFlow-AI/DetailFlow, arXiv 2505.21473), written here.

The encoder is SigLIP2-so400m cut to 12 layers (width 1152) over the 16x16 patches of a 256 px
image, with N learned latent queries appended: the patches attend only to each other, latent
i attends to every patch and to the latents before it — one by one for the first 8, then in
whole groups of 8 — so the first k tokens of an image never depend on the later ones. Each
latent is projected to 8 dimensions and quantized to the nearest of 8,192 L2-normalised codes.

The decoder (a 12-layer, 768-wide SigLIP-style ViT, full attention) reads mask tokens for the
output patches plus the first k codes and maps each patch to 16x16 RGB pixels. DetailFlow
trains prefix k to reproduce the image blurred to R(k) = 256 - 255 (N-k)^1.5 / (N-1)^1.5
pixels, decoded at r(k) (R rounded up to a multiple of 16, at least 16); vtbench decodes at
r(k) and resizes bicubically to the input size, as the release's sampling script does. The
number of tokens is the ``tokens`` option (the prefixes trained: 1-8 and multiples of 8).
Images go in as [-1, 1]; reconstructions are clamped to it. Only 256x256 inputs are supported.

Checkpoints (``checkpoints/{128,256,512}.pt`` in the hub repositories) hold the weights under
``model``, beside training-only parts that are dropped: the frozen SigLIP2 used for
representation alignment (``repa_model.*``), ``global_token_proj.*``, the self-correction
``refine_conv.*`` and ``encoder.refined_tokens``, and ``quantize.codebook_used``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vtbench.tokenizers.base import TokenizerInfo, Tokens
from vtbench.tokenizers.llamagen import VectorQuantizer
from vtbench.tokenizers.neural import NetworkTokenizer, compute_dtype, find_checkpoint, load_exactly, unwrap_state_dict
from vtbench.tokenizers.transformer_blocks import patchify, unpatchify

PATCH, GRID = 16, 16  # 16 px patches, a 16x16 grid at 256 px
GROUP = 8  # latents are causal one by one for the first group, then group by group
TRAINING_ONLY = ("repa_model.", "global_token_proj.", "refine_conv.", "encoder.refined_tokens", "quantize.codebook_used")


class SiglipAttention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(width, width) for _ in range(4))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = (proj(x).view(batch, length, self.heads, -1).transpose(1, 2) for proj in (self.q_proj, self.k_proj, self.v_proj))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, width))


class SiglipLayer(nn.Module):
    """SigLIP's pre-norm block (tanh-approximated GELU), with Hugging Face's key names."""

    def __init__(self, width: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.layer_norm1, self.layer_norm2 = nn.LayerNorm(width, eps=1e-6), nn.LayerNorm(width, eps=1e-6)
        self.self_attn = SiglipAttention(width, heads)
        self.mlp = nn.Sequential()
        self.mlp.add_module("fc1", nn.Linear(width, hidden))
        self.mlp.add_module("gelu", nn.GELU(approximate="tanh"))
        self.mlp.add_module("fc2", nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x), mask)
        return x + self.mlp(self.layer_norm2(x))


class SiglipTrunk(nn.Module):
    """``embeddings`` (a patch projection when ``patch_dim``, and a 16x16 grid of positions),
    ``encoder.layers`` and ``post_layernorm``."""

    def __init__(self, width: int, layers: int, heads: int, hidden: int, patch_dim: int | None) -> None:
        super().__init__()
        self.embeddings = nn.Module()
        if patch_dim:
            self.embeddings.patch_embedding = nn.Linear(patch_dim, width)
        self.embeddings.position_embedding = nn.Embedding(GRID * GRID, width)
        self.encoder = nn.Module()
        self.encoder.layers = nn.ModuleList(SiglipLayer(width, heads, hidden) for _ in range(layers))
        self.post_layernorm = nn.LayerNorm(width, eps=1e-6)

    def positions(self, side: int) -> torch.Tensor:
        """(side*side, width): the position grid resized (bilinear, antialiased) to side x side, row-major."""
        grid = self.embeddings.position_embedding.weight.reshape(GRID, GRID, -1).permute(2, 0, 1)[None]
        if side != GRID:
            grid = F.interpolate(grid, size=(side, side), mode="bilinear", align_corners=False, antialias=True)
        return grid.flatten(2)[0].T

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self.encoder.layers:
            x = layer(x, mask)
        return self.post_layernorm(x)


def encoder_mask(patches: int, latents: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(L+n, L+n) additive mask: patches see patches only; latent i sees every patch and the
    latents j <= i in the first group, or j < 8 (i // 8 + 1) after it."""
    i = torch.arange(latents, device=device)[:, None]
    j = torch.arange(latents, device=device)[None]
    latent_sees = torch.where(i < GROUP, j <= i, j < GROUP * (i // GROUP + 1))
    allowed = torch.zeros(patches + latents, patches + latents, dtype=torch.bool, device=device)
    allowed[:, :patches] = True
    allowed[patches:, patches:] = latent_sees
    return torch.zeros(allowed.shape, dtype=dtype, device=device).masked_fill_(~allowed, torch.finfo(dtype).min)


class DetailFlowEncoder(nn.Module):
    def __init__(self, tokens: int, width: int, layers: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.visual_model = SiglipTrunk(width, layers, heads, hidden, patch_dim=PATCH * PATCH * 3)
        self.latent_tokens = nn.Parameter(torch.zeros(1, tokens, width))
        self.latent_pos_embed = nn.Parameter(torch.zeros(1, tokens, width))

    def forward(self, images: torch.Tensor, latents: int) -> torch.Tensor:
        """(B, 3, 256, 256) in [-1, 1] -> (B, latents, width): the first ``latents`` latent outputs."""
        trunk = self.visual_model
        x = trunk.embeddings.patch_embedding(patchify(images, PATCH)) + trunk.positions(images.shape[-1] // PATCH)
        queries = (self.latent_tokens[:, :latents] + self.latent_pos_embed[:, :latents]).expand(len(images), -1, -1)
        mask = encoder_mask(x.shape[1], latents, x.dtype, x.device)
        return trunk(torch.cat([x, queries], dim=1), mask)[:, x.shape[1] :]


class DetailFlowDecoder(nn.Module):
    def __init__(self, tokens: int, width: int, layers: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.visual_model = SiglipTrunk(width, layers, heads, hidden, patch_dim=None)
        self.latent_pos_embed = nn.Parameter(torch.zeros(1, tokens, width))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.to_pixel = nn.Module()
        self.to_pixel.model = nn.Linear(width, PATCH * PATCH * 3)

    def forward(self, codes: torch.Tensor, side: int) -> torch.Tensor:
        """(B, k, width) projected codes -> (B, 3, 16 side, 16 side) in about [-1, 1]."""
        trunk = self.visual_model
        patches = (self.mask_token + trunk.positions(side)).expand(len(codes), -1, -1)
        latents = codes + self.latent_pos_embed[:, : codes.shape[1]]
        out = trunk(torch.cat([patches, latents], dim=1))[:, : side * side]
        return unpatchify(self.to_pixel.model(out), PATCH, side, side)


class DetailFlowModel(nn.Module):
    def __init__(self, tokens: int = 128, encoder: tuple[int, int, int, int] = (1152, 12, 16, 4304),
                 decoder: tuple[int, int, int, int] = (768, 12, 12, 3072), codebook_size: int = 8192,
                 codebook_dim: int = 8) -> None:  # fmt: skip
        """``encoder``/``decoder``: (width, layers, heads, MLP width)."""
        super().__init__()
        self.encoder = DetailFlowEncoder(tokens, *encoder)
        self.decoder = DetailFlowDecoder(tokens, *decoder)
        self.quant_conv = nn.Linear(encoder[0], codebook_dim)
        self.post_quant_conv = nn.Linear(codebook_dim, decoder[0])
        self.quantize = VectorQuantizer(codebook_size, codebook_dim)


def content_resolution(tokens: int, total: int, size: int = GRID * PATCH) -> int:
    """R(k): the side of the blurred image the first ``tokens`` of ``total`` were trained to reproduce."""
    if total == 1:
        return size
    return min(max(int(size - (size - 1) / (total - 1) ** 1.5 * (total - tokens) ** 1.5), 1), size)


def decoder_resolution(tokens: int, total: int) -> int:
    """r(k): the side the decoder outputs for a prefix of ``tokens`` (R(k) up to a multiple of 16, at least 16)."""
    return max(PATCH, math.ceil(content_resolution(tokens, total) / PATCH) * PATCH)


def trained_prefixes(total: int) -> list[int]:
    return [k for k in range(1, total + 1) if k <= GROUP or k % GROUP == 0]


def checkpoint_state_dict(path: Path) -> dict[str, torch.Tensor]:
    state = unwrap_state_dict(path, ("model", "state_dict"), "encoder.latent_tokens", "DetailFlow", mmap=True)
    return {k: v for k, v in state.items() if not k.startswith(TRAINING_ONLY)}


def heads_for(width: int) -> int:
    """Attention heads, which a state dict does not record: SigLIP2-so400m's 16 x 72 at 1152, else 64 per head."""
    return 16 if width == 1152 else max(1, width // 64)


def layout(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    def trunk(prefix: str) -> tuple[int, int, int, int]:
        width = state[f"{prefix}.visual_model.post_layernorm.weight"].shape[0]
        layers = 1 + max(int(k.split(".")[4]) for k in state if k.startswith(f"{prefix}.visual_model.encoder.layers."))
        hidden = state[f"{prefix}.visual_model.encoder.layers.0.mlp.fc1.weight"].shape[0]
        return width, layers, heads_for(width), hidden

    codebook_size, codebook_dim = state["quantize.embedding.weight"].shape
    return {"tokens": state["encoder.latent_tokens"].shape[1], "encoder": trunk("encoder"), "decoder": trunk("decoder"),
            "codebook_size": codebook_size, "codebook_dim": codebook_dim}  # fmt: skip


class DetailFlow(NetworkTokenizer):
    """A DetailFlow checkpoint (``checkpoint``: weights-store name, or ``weights=PATH``),
    decoding the first ``tokens`` of its N (default: all)."""

    def __init__(self, checkpoint: str = "detailflow-16", weights: str | None = None, tokens: int | None = None,
                 dtype: str = "float32") -> None:  # fmt: skip
        self.name, self.checkpoint, self.dtype_name = checkpoint, checkpoint, dtype
        self.dtype = compute_dtype(dtype)
        self.weights_path, self.weights_sha256 = find_checkpoint(weights, checkpoint)
        state = checkpoint_state_dict(self.weights_path)
        self.layout = layout(state)
        total = self.layout["tokens"]
        self.tokens = total if tokens is None else tokens
        if isinstance(self.tokens, bool) or not isinstance(self.tokens, int) or self.tokens not in trained_prefixes(total):
            raise ValueError(f"DetailFlow tokens={tokens!r}: this checkpoint was trained on the first 1-8 of its {total} tokens "
                             f"and multiples of 8 up to {total}")  # fmt: skip
        self.model = DetailFlowModel(**self.layout)
        load_exactly(self.model, state, self.weights_path, "DetailFlow")
        self.model.eval().requires_grad_(False).to(self.dtype)
        self.model.quantize.float()  # nearest codes in float32 whatever the network's dtype
        self.side = decoder_resolution(self.tokens, total)
        self.info = TokenizerInfo(
            family="discrete", quantizer="vq", codebook_size=self.layout["codebook_size"], token_grid=(self.tokens,),
            tokens_per_image=self.tokens, native_resolution=GRID * PATCH, accepts_any_size=False, input_range=(-1.0, 1.0),
            license="Apache-2.0", source=str(self.weights_path), paper="arXiv:2505.21473",
            extra={**self.layout, "tokens_total": total, "content_resolution": content_resolution(self.tokens, total),
                   "decoder_resolution": self.side, "upsampling": "bicubic" if self.side != GRID * PATCH else "none",
                   "parameters": self.parameter_count(), "weights_sha256": self.weights_sha256},
        )  # fmt: skip

    def options(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "weights": str(self.weights_path), "tokens": self.tokens, "dtype": self.dtype_name}

    def encode(self, images: torch.Tensor) -> Tokens:
        height, width = images.shape[-2:]
        if (height, width) != (GRID * PATCH, GRID * PATCH):
            raise ValueError(f"DetailFlow's position grids are fixed at 256x256; got {width}x{height} (use --resolution 256)")
        latents = min(self.layout["tokens"], math.ceil(self.tokens / GROUP) * GROUP)  # later groups cannot change earlier tokens
        z = self.model.quant_conv(self.model.encoder(self._input(images), latents)[:, : self.tokens])  # (B, k, 8)
        ids = self.model.quantize.ids(z.float().transpose(1, 2)[:, :, None])[:, 0]
        return Tokens.from_ids(ids, self.info.codebook_size, (height, width))

    def decode(self, tokens: Tokens) -> torch.Tensor:
        codes = self.model.quantize.codebook()[tokens.data].to(self.dtype)  # (B, k, 8)
        out = self.model.decoder(self.model.post_quant_conv(codes), self.side // PATCH).float()
        if tuple(out.shape[-2:]) != tokens.image_size:
            out = F.interpolate(out, size=tokens.image_size, mode="bicubic", align_corners=False)
        return self._output(out.clamp(-1, 1))
