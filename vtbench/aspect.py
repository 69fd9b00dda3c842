"""Aspect policies: how evaluation images of any shape become a tokenizer's square input.

:class:`~vtbench.images.Preprocessing` makes the *evaluation* image (what the metrics
compare). For the ``pad`` and ``tile`` modes that image keeps its aspect ratio, and this
module turns a batch of them into what the tokenizer is fed and back:

- ``pad``: the content (longer side already at the resolution) is centred on an S x S
  canvas, the border filled by replicating the edge pixels; after decoding, the canvas is
  cropped back to the content, so padding never enters a metric.
- ``tile``: the image keeps its own size; it is extended to a multiple of S at the bottom
  and right (edge replication), cut into non-overlapping S x S tiles, each tile is encoded
  on its own, and the decoded tiles are stitched and cropped. Tokens and bits of an image
  are the sums over its tiles.
- every other mode feeds the evaluation images as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vtbench.images import Preprocessing
from vtbench.tokenizers.base import Tokens

PAD_FILL = "edge pixels replicated"


@dataclass(frozen=True)
class Fitted:
    """A batch of N evaluation images (N, 3, H, W) as tokenizer inputs (M, 3, S, S).

    inputs: what the tokenizer encodes (M = N for pad and the pass-through modes, N * rows *
        cols for tile).
    box: (top, left, height, width) of the content inside each decoded input (pad, tile).
    grid: (rows, cols) of tiles per image; (1, 1) otherwise.
    """

    inputs: torch.Tensor
    images: int
    box: tuple[int, int, int, int]
    grid: tuple[int, int] = (1, 1)

    @property
    def tiles_per_image(self) -> int:
        return self.grid[0] * self.grid[1]

    def restore(self, decoded: torch.Tensor) -> torch.Tensor:
        """Decoded inputs (M, 3, S, S) -> reconstructions shaped like the evaluation images."""
        rows, cols = self.grid
        if (rows, cols) != (1, 1):
            n, channels, size = self.images, decoded.shape[1], decoded.shape[-1]
            decoded = decoded.reshape(n, rows, cols, channels, size, size).permute(0, 3, 1, 4, 2, 5)
            decoded = decoded.reshape(n, channels, rows * size, cols * size)
        top, left, height, width = self.box
        return decoded[..., top : top + height, left : left + width]

    def merge(self, tokens: list[Tokens]) -> Tokens:
        """Tokens of the M inputs (in chunks) -> per-image Tokens (bits and counts summed
        over an image's tiles; ids keep their grid, or are flattened per image when tiled)."""
        join = (lambda parts: parts[0]) if len(tokens) == 1 else torch.cat  # one chunk: no copy
        bits = join([t.bits for t in tokens]).reshape(self.images, -1).sum(dim=1)
        counts = join([t.counts for t in tokens]).reshape(self.images, -1).sum(dim=1)
        indices = None
        if all(t.indices is not None for t in tokens) and len({tuple(t.indices.shape[1:]) for t in tokens}) == 1:
            indices = join([t.indices for t in tokens])  # the token grid kept when there is one input per image
            indices = indices if self.tiles_per_image == 1 else indices.reshape(self.images, -1)
        data = tokens[0].data if len(tokens) == 1 else None
        _, _, height, width = self.box
        first = tokens[0]
        levels = first.level_sizes if self.tiles_per_image == 1 else None
        return Tokens(data, bits, counts, (height, width), indices, first.codebook_size, levels, first.latent_shape, first.latent_dtype)


def fit(images: torch.Tensor, preprocessing: Preprocessing) -> Fitted:
    """Prepare a batch of evaluation images (N, 3, H, W) for the tokenizer by the policy."""
    n, channels, height, width = images.shape
    size = preprocessing.resolution
    if size is None or preprocessing.mode not in ("pad", "tile"):
        return Fitted(images, n, (0, 0, height, width))
    if preprocessing.mode == "pad":
        if max(height, width) > size:
            raise ValueError(f"pad: a {width}x{height} image does not fit a {size}x{size} canvas (apply the preprocessing first)")
        top, left = (size - height) // 2, (size - width) // 2
        padded = F.pad(images, (left, size - width - left, top, size - height - top), mode="replicate")
        return Fitted(padded, n, (top, left, height, width))
    rows, cols = -(-height // size), -(-width // size)
    extended = F.pad(images, (0, cols * size - width, 0, rows * size - height), mode="replicate")
    tiles = extended.reshape(n, channels, rows, size, cols, size).permute(0, 2, 4, 1, 3, 5)
    return Fitted(tiles.reshape(n * rows * cols, channels, size, size), n, (0, 0, height, width), (rows, cols))


def describe(preprocessing: Preprocessing) -> str:
    """One line for the record: what the tokenizer was fed."""
    size = preprocessing.resolution
    if size is None or preprocessing.mode not in ("pad", "tile"):
        return "evaluation images fed to the tokenizer as they are"
    if preprocessing.mode == "pad":
        return f"content centred on a {size}x{size} canvas ({PAD_FILL}); decoded canvas cropped back to the content"
    return f"image cut into {size}x{size} tiles (extended at bottom/right, {PAD_FILL}); tiles encoded separately and stitched"
