"""Built-in tokenizers against the codecs and resamplers they wrap."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

import vtbench
from conftest import skimage_rgb


def _batch(*names: str, size: int = 96) -> tuple[torch.Tensor, list[np.ndarray]]:
    arrays = [np.asarray(Image.fromarray(skimage_rgb(n)).resize((size, size))) for n in names]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255.0, arrays


@pytest.mark.parametrize(
    ("name", "fmt", "options"),
    [
        ("jpeg-q50", "JPEG", {"quality": 50, "subsampling": "4:2:0", "optimize": False}),
        ("webp-q25", "WEBP", {"quality": 25, "method": 4, "lossless": False}),
    ],
)
def test_codec_tokens_are_the_encoded_bytes(name: str, fmt: str, options: dict) -> None:
    images, arrays = _batch("astronaut", "coffee")
    tokenizer = vtbench.create_tokenizer(name)
    recon, tokens = tokenizer.reconstruct(images)
    for i, array in enumerate(arrays):
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format=fmt, **options)
        assert tokens.data[i] == buffer.getvalue()
        assert tokens.bits[i] == 8 * len(buffer.getvalue()) and tokens.counts[i] == len(buffer.getvalue())
        decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
        assert np.array_equal((recon[i].permute(1, 2, 0) * 255).round().byte().numpy(), decoded)
    assert tokenizer.info.family == "codec" and tokenizer.info.codebook_size == 256


def test_higher_quality_costs_more_bits_and_loses_less() -> None:
    images, _ = _batch("astronaut", "rocket")
    errors, bits = [], []
    for quality in (10, 50, 90):
        recon, tokens = vtbench.create_tokenizer("jpeg", quality=quality).reconstruct(images)
        errors.append(float((recon - images).square().mean()))
        bits.append(float(tokens.bits.sum()))
    assert errors == sorted(errors, reverse=True) and bits == sorted(bits)


def test_resample_matches_pillow_down_and_up() -> None:
    images, arrays = _batch("chelsea", size=100)
    recon, tokens = vtbench.create_tokenizer("resample-x4").reconstruct(images)
    small = Image.fromarray(arrays[0]).resize((25, 25), Image.Resampling.BICUBIC)
    expected = np.asarray(small.resize((100, 100), Image.Resampling.BICUBIC))
    assert np.array_equal((recon[0].permute(1, 2, 0) * 255).round().byte().numpy(), expected)
    assert tokens.bits[0] == 25 * 25 * 3 * 8
    assert recon.shape == images.shape


def test_identity_is_lossless_at_24_bits_per_pixel() -> None:
    images, _ = _batch("coffee")
    recon, tokens = vtbench.create_tokenizer("identity").reconstruct(images)
    assert torch.equal((recon * 255).round(), (images * 255).round())
    assert float(tokens.bits[0]) / (96 * 96) == 24.0


def test_codec_handles_odd_sizes() -> None:
    images = torch.rand(1, 3, 7, 13, generator=torch.Generator().manual_seed(0))
    for name in ("jpeg-q75", "webp-q75", "resample-x4", "identity"):
        recon, _ = vtbench.create_tokenizer(name).reconstruct(images)
        assert recon.shape == images.shape and torch.isfinite(recon).all()


def test_bad_options_are_rejected_by_name() -> None:
    with pytest.raises(ValueError, match="quality must be in 0..100"):
        vtbench.create_tokenizer("jpeg", quality=150)
    with pytest.raises(ValueError, match="subsampling"):
        vtbench.create_tokenizer("jpeg", subsampling="4:1:1")
    with pytest.raises(ValueError, match="filter 'sinc'"):
        vtbench.create_tokenizer("resample", filter="sinc")
