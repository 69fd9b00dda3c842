"""The tokenizer contract.

Images cross the contract as float32 tensors of shape (N, 3, H, W), RGB, values in
[0, 1], on the tokenizer's device; a video tokenizer (``info.video``) also takes clips
(N, T, 3, H, W), and its Tokens are per clip. A tokenizer that works in another range (most VQGANs
use [-1, 1]) converts inside ``encode``/``decode`` and says so in ``info.input_range``.
``encode`` returns :class:`Tokens`, which carry what the cost and codebook metrics need:
the bits each image's tokens occupy, the token count, and discrete ids when there are any.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch

Family = Literal["discrete", "continuous", "codec", "pixel"]


@dataclass(frozen=True)
class TokenizerInfo:
    """Metadata as data: what the tokenizer is, what it costs, where it comes from."""

    family: Family
    quantizer: str = "none"
    codebook_size: int | None = None
    token_grid: tuple[int, ...] | None = None
    tokens_per_image: int | None = None
    native_resolution: int | None = None
    accepts_any_size: bool = True
    input_range: tuple[float, float] = (0.0, 1.0)
    license: str = ""
    source: str = ""
    paper: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    exact_levels: bool = False  # decode returns finite 8-bit levels k/255 already: no clamping or rounding needed
    video: bool = False  # encode/decode take clips (N, T, 3, H, W) whole (and images as one-frame clips)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def bits_per_token(self) -> float | None:
        return math.log2(self.codebook_size) if self.codebook_size else None


@dataclass
class Tokens:
    """An encoded batch of N images.

    data: whatever ``decode`` needs (id tensor, latent tensor, list of encoded bytes).
    bits: float64 tensor (N,), storage cost of each image's tokens in bits.
    counts: int64 tensor (N,), tokens per image.
    image_size: (H, W) of the images that were encoded.
    indices: discrete ids (N, ...) for codebook statistics, or None.
    codebook_size: how many distinct ids there are (None when unknown or continuous).
    level_sizes: for multi-scale / residual quantizers, how many of each image's ids (in
        order along dim 1 of ``indices``) belong to each level.
    latent_shape, latent_dtype: for continuous latents, one image's latent shape and dtype.
    frames: for clips (N, T, 3, H, W), T: each entry is one clip's; None for images.
    """

    data: Any
    bits: torch.Tensor
    counts: torch.Tensor
    image_size: tuple[int, int]
    indices: torch.Tensor | None = None
    codebook_size: int | None = None
    level_sizes: tuple[int, ...] | None = None
    latent_shape: tuple[int, ...] | None = None
    latent_dtype: str | None = None
    frames: int | None = None

    def __len__(self) -> int:
        return int(self.bits.shape[0])

    @classmethod
    def from_ids(cls, ids: torch.Tensor, codebook_size: int, image_size: tuple[int, int], data: Any = None,
                 level_sizes: tuple[int, ...] | None = None) -> Tokens:  # fmt: skip
        """Discrete ids (N, ...) of a ``codebook_size``-entry codebook: each id costs
        log2(codebook_size) bits (exact for the 2^k codebooks of LFQ/BSQ); ``data`` defaults to the ids."""
        n, per_image = ids.shape[0], ids[0].numel()
        bits = torch.full((n,), per_image * math.log2(codebook_size), dtype=torch.float64)
        counts = torch.full((n,), per_image, dtype=torch.int64)
        return cls(ids if data is None else data, bits, counts, image_size, ids, codebook_size, level_sizes)


class Tokenizer(ABC):
    """Encode images to tokens and decode them back; see the module docstring for ranges."""

    name: str = "tokenizer"
    info: TokenizerInfo
    description: ClassVar[str] = ""  # one line for `vtbench list`
    tags: ClassVar[dict[str, Any]] = {}  # metadata as data for `vtbench list/show` (family, quantizer, ...)
    device: torch.device = torch.device("cpu")

    @abstractmethod
    def encode(self, images: torch.Tensor) -> Tokens:
        """(N, 3, H, W) float in [0, 1] -> Tokens."""

    @abstractmethod
    def decode(self, tokens: Tokens) -> torch.Tensor:
        """Tokens -> (N, 3, H, W) float, nominally in [0, 1]."""

    def reconstruct(self, images: torch.Tensor) -> tuple[torch.Tensor, Tokens]:
        tokens = self.encode(images)
        return self.decode(tokens), tokens

    def to(self, device: torch.device | str) -> Tokenizer:
        self.device = torch.device(device)
        return self

    def compile(self) -> list[str]:
        """Wrap the network's encoder and decoder modules (``self.model.encoder``, ``.decoder``,
        ``.pixel_decoder``) in ``torch.compile``; returns the parts compiled (none for a
        tokenizer without a network, which a subclass may change)."""
        model = getattr(self, "model", None)
        parts = [part for part in ("encoder", "decoder", "pixel_decoder") if isinstance(getattr(model, part, None), torch.nn.Module)]
        for part in parts:
            setattr(model, part, torch.compile(getattr(model, part)))
        return parts

    def options(self) -> dict[str, Any]:
        """The options that define this tokenizer (written into the record)."""
        return {}


def _bit_shifts(n: int, dim: int, ndim: int, lsb_first: bool, device: torch.device) -> torch.Tensor:
    shifts = torch.arange(n, device=device) if lsb_first else torch.arange(n - 1, -1, -1, device=device)
    shape = [1] * ndim
    shape[dim] = n
    return shifts.view(shape)


def bits_to_ids(bits: torch.Tensor, dim: int = 1, lsb_first: bool = True) -> torch.Tensor:
    """Binary codes -> int64 ids: ``bits`` (bool or 0/1) along ``dim``, bit c worth 2^c
    (``lsb_first``) or 2^(n-1-c); 64-bit codes wrap to a signed int64 (all 2^64 codes stay distinct)."""
    dim = dim % bits.dim()
    return (bits.long() << _bit_shifts(bits.shape[dim], dim, bits.dim(), lsb_first, bits.device)).sum(dim=dim)


def ids_to_signs(ids: torch.Tensor, n_bits: int, dim: int = 1, lsb_first: bool = True, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The inverse of :func:`bits_to_ids` as ±1 codes: a new axis of ``n_bits`` at ``dim``."""
    expanded = ids.unsqueeze(dim)
    dim = dim % expanded.dim()
    return ((expanded >> _bit_shifts(n_bits, dim, expanded.dim(), lsb_first, ids.device)) & 1).to(dtype) * 2 - 1


def nearest_codes(vectors: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(M, C) vectors, (K, C) codebook -> (M,) index of each vector's nearest entry (squared
    L2, ties to the lowest index); normalise both first for cosine-nearest codebooks."""
    distances = vectors.pow(2).sum(1, keepdim=True) + codebook.pow(2).sum(1) - 2 * vectors @ codebook.T
    return distances.argmin(dim=1)


def to_uint8_hwc(images: torch.Tensor) -> list[np.ndarray]:
    """(N, 3, H, W) float in [0, 1] -> list of N uint8 arrays (H, W, 3), rounded."""
    batch = (images.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [np.ascontiguousarray(image) for image in batch]


def from_uint8_hwc(arrays: list[np.ndarray], device: torch.device) -> torch.Tensor:
    """List of uint8 (H, W, 3) arrays -> (N, 3, H, W) float32 in [0, 1] on ``device``."""
    batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
    return batch.to(device=device, dtype=torch.float32) / 255.0
