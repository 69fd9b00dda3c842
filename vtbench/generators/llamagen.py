"""LlamaGen class-conditional GPTs (FoundationVision/LlamaGen, arXiv 2406.06525), written here.

The module names reproduce the published ``c2i_*.pt`` state-dict keys (under ``"model"``):
``cls_embedding.embedding_table.weight`` (1,000 classes + the null class of classifier-free
guidance), ``tok_embeddings.weight``, per layer ``attention.wqkv`` / ``attention.wo``,
``feed_forward.w1/w2/w3`` (SwiGLU, hidden ``find_multiple(int(8 dim / 3), 256)``),
``attention_norm`` / ``ffn_norm`` (RMSNorm, eps 1e-5), then ``norm`` and ``output``. No
biases. Positions use 2-D rotary embeddings over the token grid (half the rotary pairs
follow the row, half the column, base 10,000), the class token's rotation being zero as
upstream sets it. Sampling follows upstream's ``generate``: the class token is the prefix,
each next token is drawn from ``uncond + scale * (cond - uncond)`` logits (``cfg_interval``
> -1 turns guidance off after that many tokens), with temperature, top-k and top-p; keys
and values are cached. The tokens are decoded by a vtbench tokenizer (LlamaGen's VQ-16 by
default), so a user can swap in any tokenizer with the same codebook and grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vtbench.generators.base import TokenGenerator
from vtbench.generators.sampling import ClassPlan, guided_logits, sample_rows
from vtbench.tokenizers.base import Tokens
from vtbench.tokenizers.neural import compute_dtype, find_checkpoint, load_exactly, unwrap_state_dict

SIZES = {"B": (12, 12, 768), "L": (24, 16, 1024), "XL": (36, 20, 1280), "XXL": (48, 24, 1536), "3B": (24, 32, 3200)}  # layers, heads, dim


@dataclass(frozen=True)
class GPTConfig:
    layers: int
    heads: int
    dim: int
    vocab_size: int = 16384
    num_classes: int = 1000
    grid: int = 16  # tokens per side: 256 px / 16, 384 px / 24
    rope_base: float = 10000.0
    norm_eps: float = 1e-5

    @property
    def ffn_hidden(self) -> int:
        hidden = int(2 * 4 * self.dim / 3)
        return hidden if hidden % 256 == 0 else hidden + 256 - hidden % 256


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = x.float() * torch.rsqrt(x.float().pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


def rotary_table(grid: int, head_dim: int, base: float, prefix: int = 1) -> torch.Tensor:
    """(prefix + grid², head_dim // 2, 2) cos/sin per position: zeros for the ``prefix``
    condition tokens, then row-major grid positions whose first half of rotary pairs turns
    with the row index and second half with the column index."""
    quarter = head_dim // 4
    frequencies = 1.0 / (base ** (torch.arange(0, head_dim // 2, 2)[:quarter].float() / (head_dim // 2)))
    angles = torch.outer(torch.arange(grid).float(), frequencies)  # (grid, quarter)
    both = torch.cat([angles[:, None, :].expand(-1, grid, -1), angles[None, :, :].expand(grid, -1, -1)], dim=-1)
    table = torch.stack([torch.cos(both), torch.sin(both)], dim=-1).flatten(0, 1)
    return torch.cat([torch.zeros(prefix, head_dim // 2, 2), table])


def rotate(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """x (B, S, H, D) rotated by ``table`` (S, D/2, 2), pairs (2i, 2i+1), computed in float32."""
    pairs = x.float().reshape(*x.shape[:-1], -1, 2)
    cos, sin = table[None, :, None, :, 0], table[None, :, None, :, 1]
    out = torch.stack([pairs[..., 0] * cos - pairs[..., 1] * sin, pairs[..., 1] * cos + pairs[..., 0] * sin], dim=-1)
    return out.flatten(3).type_as(x)


class Attention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.heads, self.head_dim = config.heads, config.dim // config.heads
        self.wqkv = nn.Linear(config.dim, 3 * config.dim, bias=False)
        self.wo = nn.Linear(config.dim, config.dim, bias=False)

    def forward(self, x: torch.Tensor, table: torch.Tensor, cache: list[torch.Tensor] | None) -> torch.Tensor:
        """x (B, S, dim) at the positions of ``table``; ``cache`` [keys, values] of earlier
        positions (extended in place), or None for a causal pass over the whole sequence."""
        batch, length, dim = x.shape
        q, k, v = (t.view(batch, length, self.heads, self.head_dim) for t in self.wqkv(x).split(dim, dim=-1))
        q, k = rotate(q, table).transpose(1, 2), rotate(k, table).transpose(1, 2)
        v = v.transpose(1, 2)
        if cache is None:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            if cache:
                k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
            cache[:] = [k, v]
            mask = None if length == 1 else torch.ones(length, k.shape[2], dtype=torch.bool, device=x.device).tril(k.shape[2] - length)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.wo(out.transpose(1, 2).reshape(batch, length, dim))


class FeedForward(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.w1 = nn.Linear(config.dim, config.ffn_hidden, bias=False)
        self.w3 = nn.Linear(config.dim, config.ffn_hidden, bias=False)
        self.w2 = nn.Linear(config.ffn_hidden, config.dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.attention, self.feed_forward = Attention(config), FeedForward(config)
        self.attention_norm, self.ffn_norm = RMSNorm(config.dim, config.norm_eps), RMSNorm(config.dim, config.norm_eps)

    def forward(self, x: torch.Tensor, table: torch.Tensor, cache: list[torch.Tensor] | None) -> torch.Tensor:
        x = x + self.attention(self.attention_norm(x), table, cache)
        return x + self.feed_forward(self.ffn_norm(x))


class LabelEmbedding(nn.Module):
    def __init__(self, num_classes: int, dim: int) -> None:
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + 1, dim)  # the last row: the null class


class GPT(nn.Module):
    """The class-conditional transformer; ``logits`` for a full causal pass, ``generate`` to sample."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.cls_embedding = LabelEmbedding(config.num_classes, config.dim)
        self.tok_embeddings = nn.Embedding(config.vocab_size, config.dim)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.layers))
        self.norm = RMSNorm(config.dim, config.norm_eps)
        self.output = nn.Linear(config.dim, config.vocab_size, bias=False)
        self.register_buffer("rotary", rotary_table(config.grid, config.dim // config.heads, config.rope_base), persistent=False)

    def _run(self, x: torch.Tensor, start: int, caches: list[list[torch.Tensor]] | None) -> torch.Tensor:
        table = self.rotary[start : start + x.shape[1]]
        for i, layer in enumerate(self.layers):
            x = layer(x, table, None if caches is None else caches[i])
        return self.output(self.norm(x)).float()

    def logits(self, labels: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Without a cache: (B,) labels and (B, T) tokens -> (B, T + 1, V) next-token logits."""
        x = torch.cat([self.cls_embedding.embedding_table(labels)[:, None], self.tok_embeddings(tokens)], dim=1)
        return self._run(x, 0, None)

    @torch.no_grad()
    def generate(self, labels: torch.Tensor, generators: Sequence[torch.Generator], cfg_scale: float = 1.0, cfg_interval: int = -1,
                 temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:  # fmt: skip
        """(B,) class labels -> (B, grid²) token ids, row *b* drawn with ``generators[b]``."""
        guided = cfg_scale != 1.0
        null = torch.full_like(labels, self.config.num_classes)
        conditions = torch.cat([labels, null]) if guided else labels
        caches: list[list[torch.Tensor]] = [[] for _ in self.layers]
        x = self.cls_embedding.embedding_table(conditions)[:, None]
        tokens = []
        for step in range(self.config.grid**2):
            logits = self._run(x, step, caches)[:, -1]
            if guided:
                cond, uncond = logits.chunk(2)
                logits = guided_logits(cond, uncond, cfg_scale) if cfg_interval < 0 or step - 1 <= cfg_interval else cond
            token = sample_rows(logits, generators, temperature, top_k, top_p).to(labels.device)
            tokens.append(token)
            x = self.tok_embeddings(torch.cat([token, token]) if guided else token)[:, None]
        return torch.stack(tokens, dim=1)


def checkpoint_state_dict(path: Any) -> dict[str, torch.Tensor]:
    """The weights of a LlamaGen GPT ``.pt`` (under ``model``, ``module`` or ``state_dict``, or
    the dict itself as FSDP saves it); upstream's ``freqs_cis`` table is recomputed, not read."""
    return unwrap_state_dict(path, ("model", "module", "state_dict"), "tok_embeddings.weight", "LlamaGen GPT", ("freqs_cis",))


def config_from_state(state: dict[str, torch.Tensor], heads: int | None, grid: int) -> GPTConfig:
    """The architecture a state dict holds: dim, vocabulary, classes and depth from the shapes."""
    vocab_size, dim = state["tok_embeddings.weight"].shape
    layers = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("layers."))
    known = {(size[0], size[2]): size[1] for size in SIZES.values()}
    heads = heads or known.get((layers, dim))
    if heads is None:
        raise ValueError(f"a GPT of {layers} layers and width {dim} is not a published size: give heads=")
    return GPTConfig(layers, heads, dim, vocab_size, state["cls_embedding.embedding_table.weight"].shape[0] - 1, grid)


class LlamaGenC2I(TokenGenerator):
    """A LlamaGen class-conditional GPT sampling ImageNet classes, decoded by a vtbench tokenizer.

    ``checkpoint``: a weights-store name (``llamagen-c2i-b-256`` ...), or ``weights=PATH``.
    Sample *i* is class ``i % num_classes`` drawn with its own seed (see :class:`ClassPlan`),
    so the samples are the same whatever the batch, process or resume point."""

    description = "LlamaGen class-conditional GPT (B/L/XL/XXL/3B), sampling with CFG and top-k/top-p"

    def __init__(self, model: str = "B", resolution: int = 256, checkpoint: str | None = None, weights: str | None = None,
                 heads: int | None = None, tokenizer: str = "llamagen-vq-ds16-c2i", tokenizer_options: dict | None = None,
                 cfg_scale: float = 2.0, cfg_interval: int = -1, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                 num_classes: int = 1000, per_class: int = 50, seed: int = 0, dtype: str = "float32") -> None:  # fmt: skip
        from vtbench.tokenizers import create_tokenizer

        ClassPlan(num_classes, per_class, seed)  # its ranges, checked before any file is read
        if model not in SIZES:
            raise ValueError(f"model must be one of {', '.join(SIZES)}, got {model!r}")
        if resolution % 16:
            raise ValueError(f"resolution must be a multiple of 16 (the VQ-16 grid), got {resolution}")
        if temperature <= 0 or not 0 < top_p <= 1 or top_k < 0 or cfg_scale < 0:
            raise ValueError("need temperature > 0, 0 < top_p <= 1, top_k >= 0 and cfg_scale >= 0")
        self.model_size, self.resolution, self.checkpoint = model, resolution, checkpoint or f"llamagen-c2i-{model.lower()}-{resolution}"
        self.weights_path, self.weights_sha256 = find_checkpoint(weights, self.checkpoint)
        state = checkpoint_state_dict(self.weights_path)
        published_width = state["tok_embeddings.weight"].shape[1] == SIZES[model][2]
        config = config_from_state(state, heads or (SIZES[model][1] if published_width else None), resolution // 16)
        self.gpt = GPT(config)
        load_exactly(self.gpt, state, self.weights_path, "LlamaGen GPT")
        self.dtype_name, self.dtype = dtype, compute_dtype(dtype)
        self.gpt.eval().requires_grad_(False).to(self.dtype)
        self.tokenizer_name, self.tokenizer_options = tokenizer, dict(tokenizer_options or {})
        self.tokenizer = create_tokenizer(tokenizer, **self.tokenizer_options)
        codebook = getattr(self.tokenizer.info, "codebook_size", None)
        if codebook != config.vocab_size:
            raise ValueError(f"tokenizer {tokenizer!r} has {codebook} codes; the GPT predicts {config.vocab_size}")
        self.plan = ClassPlan(min(num_classes, config.num_classes), per_class, seed)
        self.sampling = {"cfg_scale": cfg_scale, "cfg_interval": cfg_interval, "temperature": temperature, "top_k": top_k, "top_p": top_p}

    @property
    def network(self) -> nn.Module:
        return self.gpt

    def sample_ids(self, labels: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        return self.gpt.generate(labels, generators, **self.sampling)

    def tokens(self, ids: torch.Tensor) -> Tokens:
        grid = self.gpt.config.grid
        return Tokens.from_ids(ids.view(-1, grid, grid), self.gpt.config.vocab_size, (self.resolution, self.resolution))

    def options(self) -> dict[str, Any]:
        return {
            "model": self.model_size, "resolution": self.resolution, "checkpoint": self.checkpoint, "weights_sha256": self.weights_sha256,
            "tokenizer": self.tokenizer_name, "tokenizer_options": self.tokenizer_options, **self.sampling,
            "num_classes": self.plan.num_classes, "per_class": self.plan.per_class, "seed": self.plan.seed, "dtype": self.dtype_name,
        }  # fmt: skip
