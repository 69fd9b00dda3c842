"""Image codecs as tokenizers (JPEG, WebP): the encoded bytes are the tokens.

This is JPEG-LM's view of a codec: a byte stream with a 256-entry vocabulary. Bits per
pixel come from the actual encoded bytes, headers included.
"""

from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from PIL import Image, features

from vtbench.errors import VtbenchError
from vtbench.tokenizers.base import Tokenizer, TokenizerInfo, Tokens, from_uint8_hwc, to_uint8_hwc

_POOL = ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1))  # PIL codecs release the GIL


class CodecTokenizer(Tokenizer):
    """Encode each image with a PIL codec; tokens are the encoded bytes."""

    format: str = ""
    quantizer: str = ""

    def __init__(self, quality: int = 75) -> None:
        if not 0 <= int(quality) <= 100:
            raise ValueError(f"{self.format} quality must be in 0..100, got {quality}")
        self.quality = int(quality)
        self.name = f"{self.format.lower()}-q{self.quality}"
        self.info = TokenizerInfo(
            family="codec",
            quantizer=self.quantizer,
            codebook_size=256,
            source=f"Pillow {Image.__version__} ({self.library()})",
            exact_levels=True,  # decoded 8-bit pixels / 255
        )

    def library(self) -> str:
        raise NotImplementedError

    def save_options(self) -> dict[str, Any]:
        return {"quality": self.quality}

    def options(self) -> dict[str, Any]:
        return self.save_options()

    def _encode_one(self, array: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(array, "RGB").save(buffer, format=self.format, **self.save_options())
        return buffer.getvalue()

    @staticmethod
    def _decode_one(data: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"))

    def encode(self, images: torch.Tensor) -> Tokens:
        encoded = list(_POOL.map(self._encode_one, to_uint8_hwc(images)))
        sizes = torch.tensor([len(data) for data in encoded], dtype=torch.int64)
        return Tokens(
            data=encoded,
            bits=sizes.to(torch.float64) * 8,
            counts=sizes,
            image_size=(images.shape[2], images.shape[3]),
        )

    def decode(self, tokens: Tokens) -> torch.Tensor:
        return from_uint8_hwc(list(_POOL.map(self._decode_one, tokens.data)), self.device)


class JPEGTokenizer(CodecTokenizer):
    """Baseline JPEG (libjpeg via Pillow) at a given quality, 4:2:0 chroma subsampling."""

    format = "JPEG"
    quantizer = "jpeg"

    def __init__(self, quality: int = 75, subsampling: str = "4:2:0") -> None:
        if subsampling not in ("4:4:4", "4:2:2", "4:2:0"):
            raise ValueError(f"JPEG subsampling must be 4:4:4, 4:2:2 or 4:2:0, got {subsampling!r}")
        self.subsampling = subsampling
        super().__init__(quality)

    def library(self) -> str:
        return f"libjpeg {features.version('jpg')}"

    def save_options(self) -> dict[str, Any]:
        return {"quality": self.quality, "subsampling": self.subsampling, "optimize": False}


class WebPTokenizer(CodecTokenizer):
    """Lossy WebP (libwebp via Pillow) at a given quality, method 4."""

    format = "WEBP"
    quantizer = "webp"

    def __init__(self, quality: int = 75, method: int = 4) -> None:
        if not features.check("webp"):
            raise VtbenchError("webp: this Pillow build has no WebP support; install Pillow from PyPI (pip install -U pillow)")
        self.method = int(method)
        super().__init__(quality)

    def library(self) -> str:
        return f"libwebp {features.version('webp')}"

    def save_options(self) -> dict[str, Any]:
        return {"quality": self.quality, "method": self.method, "lossless": False}
