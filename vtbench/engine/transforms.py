"""Transforms: what happens to images between their source and the scorers. A tokenizer round
trip (encode, decode, checked, clamped and rounded to 8-bit levels) for reconstruction runs;
the run, the gallery's recomputed reconstructions and the AR probe's encoder use the same one."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from vtbench import aspect
from vtbench.errors import TokenizerOutputError
from vtbench.images import Preprocessing
from vtbench.tokenizers import Tokenizer, Tokens

Timer = Callable[[str, Callable[[], Any]], Any]  # (timing key, work) -> the work's result, its time added under the key


def untimed(key: str, work: Callable[[], Any]) -> Any:
    return work()


class Clock:
    """Adds the wall time of each step to a timings mapping (synchronising CUDA around it)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.timings: dict[str, float] = {}

    def __call__(self, key: str, work: Callable[[], Any]) -> Any:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        start = time.perf_counter()
        result = work()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - start
        return result


def to_8bit_levels(images: torch.Tensor) -> torch.Tensor:
    """Float images clamped to [0, 1] and rounded to the nearest of the 256 levels k/255 (as a
    saved PNG would be), still float."""
    return images.clamp(0, 1).mul_(255).round_().div_(255)


def finite_images(images: torch.Tensor) -> list[bool]:
    """Per image, whether every value is finite (one pass: NaN and inf survive a sum)."""
    return torch.isfinite(images.flatten(1).sum(dim=1, dtype=torch.float64)).tolist()


class TokenizerRoundTrip:
    """Encode and decode same-sized images through a tokenizer under the run's aspect policy
    (pad, tile or as they are), at most ``batch_size`` tokenizer inputs at a time when tiling.
    ``name`` names the tokenizer in errors; ``timer`` receives ``encode_s`` and ``decode_s``."""

    def __init__(self, tokenizer: Tokenizer, preprocessing: Preprocessing, batch_size: int, name: str, timer: Timer = untimed) -> None:
        self.tokenizer, self.preprocessing, self.batch_size, self.name, self.timer = tokenizer, preprocessing, batch_size, name, timer
        self.calls = 0

    def __call__(self, originals: torch.Tensor, first_id: str = "") -> tuple[torch.Tensor, Tokens]:
        """(B, 3, H, W) float in [0, 1] -> (reconstructions as decoded, their tokens). A decode
        of the wrong shape or type raises :class:`TokenizerOutputError` naming the tokenizer."""
        fitted = aspect.fit(originals, self.preprocessing)
        chunk = len(originals) if fitted.tiles_per_image == 1 else self.batch_size
        decoded, chunks = [], []
        with torch.inference_mode():
            for inputs in fitted.inputs.split(chunk):
                tokens = self.timer("encode_s", lambda inputs=inputs: self.tokenizer.encode(inputs))
                recon = self.timer("decode_s", lambda tokens=tokens: self.tokenizer.decode(tokens))
                if not isinstance(recon, torch.Tensor) or recon.shape != inputs.shape or not recon.is_floating_point():
                    got = type(recon).__name__ + (f" {tuple(recon.shape)} {recon.dtype}" if isinstance(recon, torch.Tensor) else "")
                    raise TokenizerOutputError(
                        f"tokenizer {self.name!r} returned {got} for input {tuple(inputs.shape)} "
                        f"float32 (first image {first_id}); decode must return float images of the input's shape"
                    )
                decoded.append(recon)
                self.calls += 1
                chunks.append(tokens)
        return fitted.restore(decoded[0] if len(decoded) == 1 else torch.cat(decoded)), fitted.merge(chunks)

    def clips(self, clips: torch.Tensor, first_id: str = "") -> tuple[torch.Tensor, Tokens]:
        """(N, T, 3, H, W) float in [0, 1] -> (reconstructions of that shape, tokens per clip). A
        video tokenizer (``info.video``) takes the clips whole; an image tokenizer takes their
        frames one by one (``batch_size`` frames at a time), each clip's tokens being its frames'."""
        if not self.tokenizer.info.video:
            parts = [self(frames, first_id) for frames in clips.flatten(0, 1).split(self.batch_size)]
            recon = parts[0][0] if len(parts) == 1 else torch.cat([part[0] for part in parts])
            return recon.reshape(clips.shape), clip_tokens([part[1] for part in parts], len(clips))
        with torch.inference_mode():
            tokens = self.timer("encode_s", lambda: self.tokenizer.encode(clips))
            recon = self.timer("decode_s", lambda: self.tokenizer.decode(tokens))
        if not isinstance(recon, torch.Tensor) or recon.shape != clips.shape or not recon.is_floating_point():
            got = type(recon).__name__ + (f" {tuple(recon.shape)} {recon.dtype}" if isinstance(recon, torch.Tensor) else "")
            raise TokenizerOutputError(
                f"tokenizer {self.name!r} returned {got} for clips {tuple(clips.shape)} float32 (first clip {first_id}); "
                "decode must return float clips of the input's shape"
            )
        self.calls += 1
        return recon, tokens

    def encode(self, originals: torch.Tensor) -> Tokens:
        """(B, 3, H, W) float in [0, 1] -> their tokens, under the same aspect policy."""
        fitted = aspect.fit(originals, self.preprocessing)
        chunk = len(originals) if fitted.tiles_per_image == 1 else self.batch_size
        with torch.inference_mode():
            return fitted.merge(
                [self.timer("encode_s", lambda inputs=inputs: self.tokenizer.encode(inputs)) for inputs in fitted.inputs.split(chunk)]
            )

    def reconstruct_8bit(self, originals: torch.Tensor) -> torch.Tensor:
        """The reconstructions as the metrics see them: decoded, clamped and rounded to 8-bit levels."""
        recon, _ = self(originals)
        return recon if self.tokenizer.info.exact_levels else to_8bit_levels(recon)


def select_tokens(tokens: Tokens, index: torch.Tensor) -> Tokens:
    """The cost fields and ids of the images in ``index`` (``data`` is not needed after decode)."""
    indices = tokens.indices[index.to(tokens.indices.device)] if tokens.indices is not None else None
    kept = (tokens.bits[index], tokens.counts[index], tokens.image_size, indices, tokens.codebook_size, tokens.level_sizes)
    return Tokens(None, *kept, tokens.latent_shape, tokens.latent_dtype, tokens.frames)


def clip_tokens(frame_tokens: list[Tokens], clips: int) -> Tokens:
    """Tokens of the frames of ``clips`` clips (in chunks, in clip order) -> Tokens per clip: bits
    and counts summed over each clip's frames, ids flattened per clip in frame order."""
    bits = torch.cat([t.bits for t in frame_tokens]).reshape(clips, -1)
    counts = torch.cat([t.counts for t in frame_tokens]).reshape(clips, -1).sum(dim=1)
    frames, first = bits.shape[1], frame_tokens[0]
    indices = None
    if all(t.indices is not None for t in frame_tokens) and len({tuple(t.indices.shape[1:]) for t in frame_tokens}) == 1:
        indices = torch.cat([t.indices for t in frame_tokens]).reshape(clips, -1)
    levels = first.level_sizes * frames if first.level_sizes else None
    latent = (frames, *first.latent_shape) if first.latent_shape else None
    return Tokens(None, bits.sum(dim=1), counts, first.image_size, indices, first.codebook_size, levels, latent, first.latent_dtype, frames)
