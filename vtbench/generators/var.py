"""VAR class-conditional next-scale prediction transformers (FoundationVision/VAR, arXiv
2404.02905), written here to the published ``var_d{16,20,24,30}.pth`` layout.

Width 64 x depth, heads = depth, MLP ratio 4, LayerNorm eps 1e-6 without affine weights,
every block modulated by the class embedding (AdaLN: ``ada_lin`` = SiLU + Linear to six
C-vectors gamma1, gamma2, scale1, scale2, shift1, shift2), attention with L2-normalised
queries and keys scaled per head by ``exp(min(scale_mul_1H11, log 100))``, biases on q and v
only. The token pyramid has 10 scales (1, 2, 3, 4, 5, 6, 8, 10, 13, 16 tokens per side at
256 px): scale *k* attends to every earlier scale and to itself (keys and values cached).
The first scale's input is the class embedding plus ``pos_start``; scale *k+1*'s input is
the running latent estimate (the sum of the refined, upsampled code maps so far) area-
downsampled to its side, through ``word_embed``, plus position and level embeddings.
Guidance rises with the scale: logits ``(1 + t) cond - t uncond``, ``t = cfg * k / (K - 1)``.
Tokens are decoded by vtbench's VAR VQVAE tokenizer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vtbench.generators.base import TokenGenerator
from vtbench.generators.sampling import ClassPlan, guided_logits, sample_grid
from vtbench.tokenizers.base import Tokens
from vtbench.tokenizers.neural import compute_dtype, find_checkpoint, load_exactly, unwrap_state_dict

PATCH_NUMS = {256: (1, 2, 3, 4, 5, 6, 8, 10, 13, 16), 512: (1, 2, 3, 4, 6, 9, 13, 18, 24, 32)}
RECOMPUTED_BUFFERS = ("lvl_1L", "attn_bias_for_masking")  # upstream saves them; they follow from the scales


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.mat_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_bias, self.v_bias = nn.Parameter(torch.zeros(dim)), nn.Parameter(torch.zeros(dim))
        self.register_buffer("zero_k_bias", torch.zeros(dim))
        self.scale_mul_1H11 = nn.Parameter(torch.full((1, heads, 1, 1), math.log(4.0)))
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, cache: list[torch.Tensor] | None, mask: torch.Tensor | None = None) -> torch.Tensor:
        batch, length, dim = x.shape
        qkv = F.linear(x, self.mat_qkv.weight, torch.cat([self.q_bias, self.zero_k_bias, self.v_bias]))
        q, k, v = qkv.view(batch, length, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        q = F.normalize(q, dim=-1) * self.scale_mul_1H11.clamp(max=math.log(100)).exp()
        k = F.normalize(k, dim=-1)
        if cache is not None:
            if cache:
                k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
            cache[:] = [k, v]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=1.0)
        return self.proj(out.transpose(1, 2).reshape(batch, length, dim))


class FFN(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class AdaLNSelfAttn(nn.Module):
    def __init__(self, dim: int, heads: int, eps: float) -> None:
        super().__init__()
        self.dim, self.eps = dim, eps
        self.attn, self.ffn = SelfAttention(dim, heads), FFN(dim, 4 * dim)
        self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x: torch.Tensor, condition: torch.Tensor, cache: list[torch.Tensor] | None,
                mask: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        gamma1, gamma2, scale1, scale2, shift1, shift2 = self.ada_lin(condition).view(-1, 1, 6, self.dim).unbind(2)
        normed = F.layer_norm(x, (self.dim,), eps=self.eps)
        x = x + self.attn(normed * (scale1 + 1) + shift1, cache, mask) * gamma1
        normed = F.layer_norm(x, (self.dim,), eps=self.eps)
        return x + self.ffn(normed * (scale2 + 1) + shift2) * gamma2


class AdaLNBeforeHead(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.dim, self.eps = dim, eps
        self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        scale, shift = self.ada_lin(condition).view(-1, 1, 2, self.dim).unbind(2)
        return F.layer_norm(x, (self.dim,), eps=self.eps) * (scale + 1) + shift


class VARTransformer(nn.Module):
    """The transformer of one VAR depth; ``generate`` samples token pyramids, ``logits`` is one
    teacher-forced pass with the block-causal mask (for checks)."""

    def __init__(self, depth: int, patch_nums: Sequence[int], vocab_size: int = 4096, latent_dim: int = 32, num_classes: int = 1000,
                 eps: float = 1e-6, width: int | None = None, heads: int | None = None) -> None:  # fmt: skip
        """Published sizes: width 64 x depth, ``depth`` heads; ``width``/``heads`` for others."""
        super().__init__()
        dim, heads = width or 64 * depth, heads or depth
        self.dim, self.patch_nums, self.vocab_size, self.num_classes = dim, tuple(patch_nums), vocab_size, num_classes
        total = sum(side * side for side in self.patch_nums)
        self.word_embed = nn.Linear(latent_dim, dim)
        self.class_emb = nn.Embedding(num_classes + 1, dim)
        self.pos_start = nn.Parameter(torch.zeros(1, self.patch_nums[0] ** 2, dim))
        self.pos_1LC = nn.Parameter(torch.zeros(1, total, dim))
        self.lvl_embed = nn.Embedding(len(self.patch_nums), dim)
        self.blocks = nn.ModuleList(AdaLNSelfAttn(dim, heads, eps) for _ in range(depth))
        self.head_nm = AdaLNBeforeHead(dim, eps)
        self.head = nn.Linear(dim, vocab_size)
        levels = torch.cat([torch.full((side * side,), i) for i, side in enumerate(self.patch_nums)])
        self.register_buffer("levels", levels, persistent=False)

    def _level_positions(self) -> torch.Tensor:
        return self.lvl_embed(self.levels)[None] + self.pos_1LC  # (1, L, C)

    def _run(self, x: torch.Tensor, condition: torch.Tensor, caches: list[list[torch.Tensor]] | None,
             mask: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        for i, block in enumerate(self.blocks):
            x = block(x, condition, None if caches is None else caches[i], mask)
        return self.head(self.head_nm(x.float(), condition).float()).float()

    def logits(self, labels: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: (B,) labels and (B, L - first, latent) scale inputs (each later
        scale's input, as ``generate`` builds it) -> (B, L, V) logits, block-causal."""
        condition = self.class_emb(labels)
        start = condition[:, None] + self.pos_start
        x = torch.cat([start, self.word_embed(inputs)], dim=1) + self._level_positions()
        mask = self.levels[:, None] >= self.levels[None, :]
        return self._run(x, condition, None, mask)

    @torch.no_grad()
    def generate(self, labels: torch.Tensor, generators: Sequence[torch.Generator], refine: Any, cfg: float = 1.5, top_k: int = 0,
                 top_p: float = 1.0, temperature: float = 1.0, return_inputs: bool = False) -> Any:  # fmt: skip
        """(B,) labels -> (B, L) token ids. ``refine(ids, scale_index)`` returns a scale's
        refined code map at the full latent size (the tokenizer's Phi convolutions)."""
        guided = cfg != 0
        conditions = torch.cat([labels, torch.full_like(labels, self.num_classes)]) if guided else labels
        condition = self.class_emb(conditions)
        positions, first = self._level_positions(), self.patch_nums[0] ** 2
        x = condition[:, None].expand(-1, first, -1) + self.pos_start + positions[:, :first]
        caches: list[list[torch.Tensor]] = [[] for _ in self.blocks]
        estimate, tokens, inputs, offset = None, [], [], 0
        last = len(self.patch_nums) - 1
        for k, side in enumerate(self.patch_nums):
            logits = self._run(x, condition, caches)
            if guided:
                ratio = cfg * k / last
                cond, uncond = logits.chunk(2)
                logits = guided_logits(cond, uncond, 1 + ratio)
            ids = sample_grid(logits, generators, temperature, top_k, top_p)
            tokens.append(ids)
            contribution = refine(ids, k)
            estimate = contribution if estimate is None else estimate + contribution
            offset += side * side
            if k < last:
                following = self.patch_nums[k + 1]
                pooled = F.interpolate(estimate, size=(following, following), mode="area").flatten(2).transpose(1, 2)
                inputs.append(pooled)
                x = self.word_embed(pooled.to(x.dtype)) + positions[:, offset : offset + following**2]
                x = torch.cat([x, x]) if guided else x
        ids = torch.cat(tokens, dim=1)
        return (ids, torch.cat(inputs, dim=1)) if return_inputs else ids


def checkpoint_state_dict(path: Any) -> dict[str, torch.Tensor]:
    """The weights of a ``var_d*.pth`` (a plain state dict, or under ``model``/``state_dict``)."""
    state = unwrap_state_dict(path, ("model", "state_dict", "trainer"), "class_emb.weight", "VAR transformer", RECOMPUTED_BUFFERS)
    if "pos_1LC" not in state:
        raise ValueError(f"{path}: not a VAR transformer checkpoint (no pos_1LC)")
    return state


class VARGenerator(TokenGenerator):
    """A VAR transformer sampling ImageNet classes at 256 (or 512) px, decoded by vtbench's VAR
    VQVAE tokenizer; sample *i* is class ``i % num_classes`` with its own seed."""

    description = "VAR next-scale prediction transformer (d16/d20/d24/d30), CFG rising with the scale, top-k/top-p"

    def __init__(self, depth: int = 16, resolution: int = 256, checkpoint: str | None = None, weights: str | None = None,
                 tokenizer_options: dict | None = None, cfg: float = 1.5, top_k: int = 900, top_p: float = 0.96,
                 temperature: float = 1.0, num_classes: int = 1000, per_class: int = 50, seed: int = 0,
                 dtype: str = "float32") -> None:  # fmt: skip
        from vtbench.tokenizers import create_tokenizer

        ClassPlan(num_classes, per_class, seed)  # its ranges, checked before any file is read
        if resolution not in PATCH_NUMS:
            raise ValueError(f"resolution must be one of {', '.join(map(str, PATCH_NUMS))}, got {resolution}")
        if temperature <= 0 or not 0 < top_p <= 1 or top_k < 0 or cfg < 0:
            raise ValueError("need temperature > 0, 0 < top_p <= 1, top_k >= 0 and cfg >= 0")
        self.depth, self.resolution = depth, resolution
        self.checkpoint = checkpoint or (f"var-d{depth}" if resolution == 256 else f"var-d{depth}-{resolution}")
        self.weights_path, self.weights_sha256 = find_checkpoint(weights, self.checkpoint)
        state = checkpoint_state_dict(self.weights_path)
        layers = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
        vocab_size, dim = state["head.weight"].shape
        latent_dim, classes = state["word_embed.weight"].shape[1], state["class_emb.weight"].shape[0] - 1
        heads = state["blocks.0.attn.scale_mul_1H11"].shape[1]
        self.model = VARTransformer(layers, PATCH_NUMS[resolution], vocab_size, latent_dim, classes, width=dim, heads=heads)
        if state["pos_1LC"].shape[1] != sum(side * side for side in PATCH_NUMS[resolution]):
            raise ValueError(f"{self.weights_path}: {state['pos_1LC'].shape[1]} token positions, not VAR's {resolution} px pyramid")
        load_exactly(self.model, state, self.weights_path, "VAR transformer")
        self.dtype_name = dtype
        self.model.eval().requires_grad_(False).to(compute_dtype(dtype))
        self.tokenizer_options = dict(tokenizer_options or {})
        self.tokenizer = create_tokenizer(f"var-vqvae-{resolution}", **self.tokenizer_options)
        if self.tokenizer.info.codebook_size != vocab_size:
            raise ValueError(f"the VQVAE has {self.tokenizer.info.codebook_size} codes; the transformer predicts {vocab_size}")
        self.plan = ClassPlan(min(num_classes, self.model.num_classes), per_class, seed)
        self.sampling = {"cfg": cfg, "top_k": top_k, "top_p": top_p, "temperature": temperature}

    @property
    def network(self) -> nn.Module:
        return self.model

    def refine(self, ids: torch.Tensor, scale: int) -> torch.Tensor:
        """One scale's ids (B, side²) -> its refined contribution at the full latent size."""
        patch_nums, quantize = self.model.patch_nums, self.tokenizer.model.quantize
        side, size, last = patch_nums[scale], patch_nums[-1], len(patch_nums) - 1
        return quantize.refine(ids, side, size, self.tokenizer.phi[scale], scale == last).float()

    def sample_ids(self, labels: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        return self.model.generate(labels, generators, self.refine, **self.sampling)

    def tokens(self, ids: torch.Tensor) -> Tokens:
        levels = tuple(side * side for side in self.model.patch_nums)
        return Tokens.from_ids(ids, self.model.vocab_size, (self.resolution, self.resolution), level_sizes=levels)

    def options(self) -> dict[str, Any]:
        return {"depth": self.depth, "resolution": self.resolution, "checkpoint": self.checkpoint, "weights_sha256": self.weights_sha256,
                "tokenizer": f"var-vqvae-{self.resolution}", "tokenizer_options": self.tokenizer_options, **self.sampling,
                "num_classes": self.plan.num_classes, "per_class": self.plan.per_class, "seed": self.plan.seed,
                "dtype": self.dtype_name}  # fmt: skip
