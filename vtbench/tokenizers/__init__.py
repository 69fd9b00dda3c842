"""Tokenizers: the contract (``base``) and one module per family, registered as presets.

A preset is a registered name plus default options, kept here as data; adding one never
touches code elsewhere. Third-party tokenizers arrive through the ``vtbench.tokenizers``
entry-point group.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vtbench.registry import Registry

if TYPE_CHECKING:
    from vtbench.tokenizers.base import Tokenizer

TOKENIZERS: Registry[Tokenizer] = Registry("tokenizers")

# name -> (target, description, default options, tags)
_PRESETS: list[tuple[str, str, str, dict, dict]] = [
    ("identity", "vtbench.tokenizers.identity:IdentityTokenizer", "8-bit pixels as tokens: the upper bound", {}, {"family": "pixel"}),
    ("jpeg", "vtbench.tokenizers.codec:JPEGTokenizer", "JPEG via Pillow/libjpeg (option: quality, subsampling)", {}, {"family": "codec"}),
    ("webp", "vtbench.tokenizers.codec:WebPTokenizer", "Lossy WebP via Pillow/libwebp (option: quality, method)", {}, {"family": "codec"}),
    (
        "resample",
        "vtbench.tokenizers.resample:ResampleTokenizer",
        "Downscale, keep uint8, upscale back (option: factor, filter)",
        {},
        {"family": "pixel"},
    ),
]
_PRESETS += [
    (f"{codec}-q{q}", f"vtbench.tokenizers.codec:{cls}", f"{label} at quality {q}", {"quality": q}, {"family": "codec"})
    for codec, cls, label in (("jpeg", "JPEGTokenizer", "JPEG 4:2:0"), ("webp", "WebPTokenizer", "Lossy WebP"))
    for q in (10, 25, 50, 75, 90)
]
_PRESETS += [
    (
        f"resample-x{f}",
        "vtbench.tokenizers.resample:ResampleTokenizer",
        f"Bicubic downscale x{f} and upscale back",
        {"factor": f},
        {"family": "pixel"},
    )
    for f in (2, 4, 8, 16)
]
for _name, _target, _description, _defaults, _tags in _PRESETS:
    TOKENIZERS.register(_name, _target, description=_description, tags=_tags, **_defaults)


def create_tokenizer(name: str, **options: object) -> Tokenizer:
    """Build a registered tokenizer (preset defaults, then ``options``)."""
    return TOKENIZERS.create(name, **options)


__all__ = ["TOKENIZERS", "Tokenizer", "TokenizerInfo", "Tokens", "create_tokenizer"]


def __getattr__(name: str):  # the contract classes import torch: load them on first use
    if name in {"Tokens", "Tokenizer", "TokenizerInfo"}:
        import importlib

        return getattr(importlib.import_module("vtbench.tokenizers.base"), name)
    raise AttributeError(name)
