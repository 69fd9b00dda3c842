"""GigaTok 1-D tokenizers (SilentView/GigaTok, arXiv 2504.08736), written here.

A hybrid: a CNN encoder (LlamaGen's, without attention) turns a 256 px image into a 16x16
map; a Q-Former (DETR-style pre-norm decoder layers: self-attention among 256 queries,
cross-attention to the map, an MLP) reads it into 256 one-dimensional tokens, whose queries
start as the map average-pooled over 9 ever finer grids (1x1, 1x1, 1x2, ..., 8x16); each
token is projected to 8 dimensions and quantized to the nearest of 16,384 L2-normalised
codes. Decoding runs a second Q-Former whose 16x16 queries all start as the first token,
then a CNN decoder with MAGVIT-2's adaptive group norms and depth-to-space upsampling.
Positions are added to queries and keys, never to values. Images go in as [-1, 1];
reconstructions are clamped to it. Only 256 px is supported (the position grids are fixed).

The released checkpoints (``VQ_{SS,SB,BL,XLXXL}256_e*.pt``, ``VQ_BL256_dino_disc.pt``)
hold the weights under ``ema`` or ``model``; the semantic-regularisation head
(``distill_mlp``) and the training-time ``quantize.codebook_used`` are not used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vtbench.tokenizers.base import TokenizerInfo, Tokens
from vtbench.tokenizers.conv_blocks import ResnetBlock, group_norm, residual_level, run_level
from vtbench.tokenizers.llamagen import Encoder, VectorQuantizer
from vtbench.tokenizers.neural import NetworkTokenizer, compute_dtype, find_checkpoint, load_exactly, unwrap_state_dict
from vtbench.tokenizers.open_magvit2 import AdaptiveGroupNorm, DepthToSpaceUpsampler

MULTIPLIERS = (1, 1, 2, 2, 4)
GRID = 16  # the 16x16 map of a 256 px image
TRANSFORMER_SIZES = {"small": (512, 6), "base": (768, 12), "large": (1024, 24), "xl": (1280, 36), "xxl": (1536, 48)}  # width, layers


class QFormerLayer(nn.Module):
    """DETR's pre-norm decoder layer, sequence-first: queries attend to themselves, then to the memory."""

    def __init__(self, width: int) -> None:
        super().__init__()
        heads = width // 64
        self.self_attn, self.multihead_attn = nn.MultiheadAttention(width, heads), nn.MultiheadAttention(width, heads)
        self.linear1, self.linear2 = nn.Linear(width, 4 * width), nn.Linear(4 * width, width)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(width), nn.LayerNorm(width), nn.LayerNorm(width)

    def forward(
        self, queries: torch.Tensor, memory: torch.Tensor, memory_position: torch.Tensor, query_position: torch.Tensor
    ) -> torch.Tensor:
        h = self.norm1(queries)
        queries = queries + self.self_attn(h + query_position, h + query_position, h, need_weights=False)[0]
        h = self.norm2(queries)
        queries = queries + self.multihead_attn(h + query_position, memory + memory_position, memory, need_weights=False)[0]
        return queries + self.linear2(F.gelu(self.linear1(self.norm3(queries))))


def multi_level_queries(x: torch.Tensor, levels: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, 2^levels, C): the map average-pooled over 1 + levels grids of 1, 1, 2,
    4, ... cells, the column count doubling first (1x1, 1x1, 1x2, 2x2, 2x4, ...), row-major."""
    height, width = x.shape[-2:]
    groups = []
    for group in range(levels + 1):
        level = max(group - 1, 0)
        kernel = (height // 2 ** (level // 2), width // 2 ** ((level + 1) // 2))
        groups.append(F.avg_pool2d(x, kernel).flatten(2).transpose(1, 2))
    return torch.cat(groups, dim=1)


class QFormerEncoder(nn.Module):
    """``s2to1encoder``: the 16x16 map -> 256 tokens (B, token_size, 1, 256)."""

    def __init__(self, width: int, layers: int, tokens: int = 256, token_size: int = 256) -> None:
        super().__init__()
        self.tokens = tokens
        self.ln_pre, self.encoder_embed = nn.LayerNorm(token_size), nn.Linear(token_size, width)
        self.positional_embedding = nn.Parameter(torch.zeros(GRID * GRID, 1, width))
        self.latent_token_positional_embedding = nn.Parameter(torch.zeros(tokens, 1, width))
        self.global_proj = nn.Linear(width, width)
        self.transformer = nn.ModuleList([QFormerLayer(width) for _ in range(layers)])
        self.ln_post, self.conv_out = nn.LayerNorm(width), nn.Conv2d(width, token_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(x)
        memory = self.encoder_embed(self.ln_pre(x.flatten(2).permute(2, 0, 1)))  # (H*W, B, width)
        grid = memory.permute(1, 2, 0).reshape(n, -1, GRID, GRID)
        queries = self.global_proj(multi_level_queries(grid, self.tokens.bit_length() - 1).transpose(0, 1))
        for layer in self.transformer:
            queries = layer(queries, memory, self.positional_embedding, self.latent_token_positional_embedding)
        return self.conv_out(self.ln_post(queries).permute(1, 2, 0).reshape(n, -1, 1, self.tokens))


class QFormerDecoder(nn.Module):
    """``s1to2decoder``: 256 tokens (B, token_size, 1, 256) -> the 16x16 map."""

    def __init__(self, width: int, layers: int, tokens: int = 256, token_size: int = 256) -> None:
        super().__init__()
        self.ln_pre, self.decoder_embed = nn.LayerNorm(token_size), nn.Linear(token_size, width)
        self.positional_embedding = nn.Parameter(torch.zeros(GRID * GRID, 1, width))
        self.latent_token_positional_embedding = nn.Parameter(torch.zeros(tokens, 1, width))
        self.transformer = nn.ModuleList([QFormerLayer(width) for _ in range(layers)])
        self.ln_post, self.conv_out = nn.LayerNorm(width), nn.Conv2d(width, token_size, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        n = len(z)
        memory = self.decoder_embed(self.ln_pre(z.flatten(1, 2).permute(2, 0, 1)))  # (tokens, B, width)
        queries = memory[:1].repeat(GRID * GRID, 1, 1)  # every cell starts as the first token
        for layer in self.transformer:
            queries = layer(queries, memory, self.latent_token_positional_embedding[: len(memory)], self.positional_embedding)
        return self.conv_out(self.ln_post(queries).permute(1, 2, 0).reshape(n, -1, GRID, GRID))


class CNNDecoder(nn.Module):
    """Levels deepest first, each opened by an adaptive group norm styled by the decoder's input."""

    def __init__(self, ch: int = 128, z_channels: int = 256, blocks: int = 2) -> None:
        super().__init__()
        widths = [ch * m for m in reversed(MULTIPLIERS)]
        self.conv_in = nn.Conv2d(z_channels, widths[0], 3, padding=1)
        self.mid = nn.ModuleList([ResnetBlock(widths[0], widths[0]), ResnetBlock(widths[0], widths[0])])
        self.conv_blocks, self.adaptive = nn.ModuleList(), nn.ModuleList()
        channels = widths[0]
        for i, width in enumerate(widths):
            self.adaptive.append(AdaptiveGroupNorm(z_channels, channels))
            level = residual_level(channels, width, blocks + 1, None, name="res")
            if i != len(widths) - 1:
                level.upsample = DepthToSpaceUpsampler(width)
            self.conv_blocks.append(level)
            channels = width
        self.norm_out, self.conv_out = group_norm(channels), nn.Conv2d(channels, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(z)
        for block in self.mid:
            h = block(h)
        for norm, level in zip(self.adaptive, self.conv_blocks, strict=True):
            h = run_level(level, norm(h, z), name="res")
            if hasattr(level, "upsample"):
                h = level.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class GigaTokModel(nn.Module):
    """The released ``VQVitModelPlus`` (1-D tokens) at inference, key names as published."""

    def __init__(self, encoder: tuple[int, int] = TRANSFORMER_SIZES["small"], decoder: tuple[int, int] = TRANSFORMER_SIZES["base"],
                 codebook_size: int = 16384, codebook_dim: int = 8, ch: int = 128, z_channels: int = 256,
                 tokens: int = 256) -> None:  # fmt: skip
        """``encoder``/``decoder``: (width, layers) of the two Q-Formers (``TRANSFORMER_SIZES``)."""
        super().__init__()
        self.encoder = Encoder(MULTIPLIERS, ch, z_channels, attention=False)  # LlamaGen's, without attention
        self.s2to1encoder = QFormerEncoder(*encoder, tokens, z_channels)
        self.quant_conv = nn.Conv2d(z_channels, codebook_dim, 1)
        self.quantize = VectorQuantizer(codebook_size, codebook_dim)
        self.post_quant_conv = nn.Conv2d(codebook_dim, z_channels, 1)
        self.s1to2decoder = QFormerDecoder(*decoder, tokens, z_channels)
        self.decoder = CNNDecoder(ch, z_channels)


def checkpoint_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The inference weights of a GigaTok ``.pt`` (under ``ema``, ``model`` or ``state_dict``)."""
    state = unwrap_state_dict(path, ("ema", "model", "state_dict"), "s2to1encoder.encoder_embed.weight", "GigaTok",
                              ("quantize.codebook_used",))  # fmt: skip
    return {k: v for k, v in state.items() if not (k.startswith("distill_mlp.") or ".distill_mlp." in k)}


def layout(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The architecture a state dict describes: (width, layers) of each Q-Former, codebook, CNN width, tokens."""

    def transformer(prefix: str) -> tuple[int, int]:
        layers = 1 + max(int(k.split(".")[2]) for k in state if k.startswith(f"{prefix}.transformer."))
        return state[f"{prefix}.ln_post.weight"].shape[0], layers

    codebook_size, codebook_dim = state["quantize.embedding.weight"].shape
    return {"encoder": transformer("s2to1encoder"), "decoder": transformer("s1to2decoder"), "codebook_size": codebook_size,
            "codebook_dim": codebook_dim, "ch": state["encoder.conv_in.weight"].shape[0], "z_channels": state["quant_conv.weight"].shape[1],
            "tokens": state["s2to1encoder.latent_token_positional_embedding"].shape[0]}  # fmt: skip


class GigaTok(NetworkTokenizer):
    """A GigaTok checkpoint (``checkpoint``: weights-store name, or ``weights=PATH``)."""

    def __init__(self, checkpoint: str = "gigatok-s-b", weights: str | None = None, dtype: str = "float32") -> None:
        self.name, self.checkpoint, self.dtype_name = checkpoint, checkpoint, dtype
        self.dtype = compute_dtype(dtype)
        self.weights_path, self.weights_sha256 = find_checkpoint(weights, checkpoint)
        state = checkpoint_state_dict(self.weights_path)
        self.layout = layout(state)
        self.model = GigaTokModel(**self.layout)
        load_exactly(self.model, state, self.weights_path, "GigaTok")
        self.model.eval().requires_grad_(False).to(self.dtype)
        self.model.quantize.float()  # nearest codes in float32 whatever the network's dtype
        tokens = self.layout["tokens"]
        sizes = {shape: name for name, shape in TRANSFORMER_SIZES.items()}
        described = {**self.layout, "encoder": sizes.get(self.layout["encoder"], self.layout["encoder"]),
                     "decoder": sizes.get(self.layout["decoder"], self.layout["decoder"])}  # fmt: skip
        self.info = TokenizerInfo(
            family="discrete", quantizer="vq", codebook_size=self.layout["codebook_size"], token_grid=(tokens,), tokens_per_image=tokens,
            native_resolution=GRID * 16, accepts_any_size=False, input_range=(-1.0, 1.0), license="MIT", source=str(self.weights_path),
            paper="arXiv:2504.08736", extra={**described, "parameters": self.parameter_count(), "weights_sha256": self.weights_sha256},
        )  # fmt: skip

    def options(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "weights": str(self.weights_path), "dtype": self.dtype_name}

    def encode(self, images: torch.Tensor) -> Tokens:
        height, width = images.shape[-2:]
        if (height, width) != (GRID * 16, GRID * 16):
            raise ValueError(f"GigaTok's position grids are fixed at 256x256; got {width}x{height} (use --resolution 256)")
        z = self.model.quant_conv(self.model.s2to1encoder(self.model.encoder(self._input(images))))  # (B, dim, 1, tokens)
        ids = self.model.quantize.ids(z.float())[:, 0]
        return Tokens.from_ids(ids, self.info.codebook_size, (height, width))

    def decode(self, tokens: Tokens) -> torch.Tensor:
        codes = self.model.quantize.lookup(tokens.data[:, None]).to(self.dtype)  # (B, dim, 1, tokens)
        spatial = self.model.s1to2decoder(self.model.post_quant_conv(codes))
        return self._output(self.model.decoder(spatial).clamp(-1, 1))
