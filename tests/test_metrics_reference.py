"""PSNR and SSIM against scikit-image on real photographs, and batch-size independence."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from conftest import skimage_rgb
from vtbench.metrics import create_metric
from vtbench.metrics import ssim as ssim_module
from vtbench.metrics.base import MetricBatch
from vtbench.metrics.psnr import psnr
from vtbench.metrics.ssim import ssim


def _jpeg(array: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def _distortions(array: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    noisy = np.clip(array.astype(np.float64) + rng.normal(0, 12, array.shape), 0, 255).round().astype(np.uint8)
    blurred = np.asarray(Image.fromarray(array).filter(ImageFilter.GaussianBlur(2)))
    return {"jpeg-q20": _jpeg(array, 20), "jpeg-q80": _jpeg(array, 80), "noise": noisy, "blur": blurred}


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array.copy()).permute(2, 0, 1)[None].float() / 255.0


PHOTOS = ["astronaut", "coffee", "camera", "rocket"]


@pytest.mark.parametrize("name", PHOTOS)
def test_psnr_and_ssim_match_scikit_image(name: str) -> None:
    reference = skimage_rgb(name)
    for label, distorted in _distortions(reference).items():
        expected_psnr = peak_signal_noise_ratio(reference, distorted, data_range=255)
        expected_ssim = structural_similarity(
            reference, distorted, channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
        )
        got_psnr = float(psnr(_tensor(distorted), _tensor(reference)))
        got_ssim = float(ssim(_tensor(distorted), _tensor(reference)))
        assert abs(got_psnr - expected_psnr) < 1e-4, (name, label, got_psnr, expected_psnr)
        assert abs(got_ssim - expected_ssim) < 1e-4, (name, label, got_ssim, expected_ssim)
        assert 0 < got_ssim < 1 and 10 < got_psnr < 60


def test_identical_images_give_inf_psnr_and_unit_ssim() -> None:
    x = _tensor(skimage_rgb("chelsea"))
    assert torch.isinf(psnr(x, x)).all()
    assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-12)


def test_psnr_formula_on_a_known_error() -> None:
    x = torch.full((2, 3, 16, 16), 0.5, dtype=torch.float64)
    assert psnr(x + 0.01, x).tolist() == pytest.approx([40.0, 40.0], abs=1e-9)


def test_ssim_refuses_images_smaller_than_its_window() -> None:
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="smaller than the 11x11 window"):
        ssim(x, x)


@pytest.mark.parametrize("metric_name", ["psnr", "ssim"])
def test_metric_is_independent_of_batch_size(metric_name: str) -> None:
    originals = torch.cat([_tensor(skimage_rgb(n)[:256, :256]) for n in ["astronaut", "coffee", "camera", "rocket", "chelsea"]])
    recon = torch.cat([_tensor(_jpeg(skimage_rgb(n)[:256, :256], 30)) for n in ["astronaut", "coffee", "camera", "rocket", "chelsea"]])
    results = []
    for batch_size in (1, 2, 5):
        metric = create_metric(metric_name)
        for start in range(0, 5, batch_size):
            sl = slice(start, start + batch_size)
            metric.update(MetricBatch(ids=[], originals=originals[sl], reconstructions=recon[sl]))
        results.append(metric.compute())
        assert metric.count == 5
    assert max(results) - min(results) < 1e-5, results


def test_state_round_trip_and_merge_equal_a_single_pass() -> None:
    originals = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    recon = (originals + 0.05 * torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    whole = create_metric("ssim")
    whole.update(MetricBatch([], originals, recon))
    first, second = create_metric("ssim"), create_metric("ssim")
    first.update(MetricBatch([], originals[:2], recon[:2]))
    restored = create_metric("ssim")
    restored.load_state_dict(first.state_dict())
    second.update(MetricBatch([], originals[2:], recon[2:]))
    restored.merge_state(second)
    assert restored.compute() == pytest.approx(whole.compute(), abs=1e-12)
    restored.reset()
    assert restored.count == 0


@pytest.mark.parametrize("budget", [5000, 400 * 600 * 2])  # strips of a few rows; two planes at a time
def test_ssim_in_chunks_equals_ssim_at_once(monkeypatch: pytest.MonkeyPatch, budget: int) -> None:
    reference = torch.cat([_tensor(skimage_rgb("coffee")), _tensor(skimage_rgb("coffee")[::-1])])
    distorted = torch.cat([_tensor(_jpeg(skimage_rgb("coffee"), 30)), _tensor(_jpeg(skimage_rgb("coffee")[::-1].copy(), 60))])
    for name in ("_MAX_PIXELS_AT_ONCE", "_CPU_CACHE_PIXELS"):
        monkeypatch.setattr(ssim_module, name, 10**9)
    at_once = ssim(distorted, reference)
    for name in ("_MAX_PIXELS_AT_ONCE", "_CPU_CACHE_PIXELS"):
        monkeypatch.setattr(ssim_module, name, budget)
    assert ssim(distorted, reference).tolist() == pytest.approx(at_once.tolist(), abs=1e-9)


@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_ms_ssim_matches_torchmetrics(name: str) -> None:
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as reference

    from vtbench.metrics.ms_ssim import ms_ssim

    photo = np.ascontiguousarray(skimage_rgb(name)[:256, :320])
    original = _tensor(photo)
    for label, distorted in _distortions(photo).items():
        expected = reference(_tensor(distorted).double(), original.double(), data_range=1.0, normalize="relu")
        got = ms_ssim(_tensor(distorted), original)
        assert abs(float(got) - float(expected)) < 1e-4, (name, label, float(got), float(expected))


def test_frechet_distance_is_exact_with_many_and_with_few_samples() -> None:
    """Against scipy's sqrtm of S1 S2 (torch-fidelity's formula) with more samples than
    dimensions, and against the exact small-Gram-matrix form with fewer (where S1 S2 is
    singular and sqrtm carries ~1e-6 relative rounding noise); identical sets give 0."""
    from scipy import linalg

    from vtbench.metrics.frechet import frechet_distance

    rng = np.random.default_rng(0)
    pixels = np.concatenate([skimage_rgb(name)[:64, :64].reshape(-1, 48) for name in PHOTOS]).astype(np.float64) / 255
    for rows in (800, 30):  # 30 samples in 48 dimensions: rank-deficient, as with few images
        a = pixels[rng.choice(len(pixels), rows, replace=False)]
        b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1)
        mu1, s1, mu2, s2 = a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
        if rows > 48:
            tr_covmean = np.trace(linalg.sqrtm(s1 @ s2).real)
        else:  # the nonzero eigenvalues of S1 S2 are those of the rows x rows matrix A Bt B At
            ca, cb = a - mu1, b - mu2
            tr_covmean = np.sqrt(np.clip(np.linalg.eigvals((ca @ cb.T) @ (cb @ ca.T)).real, 0, None)).sum() / (rows - 1)
        expected = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)
        assert frechet_distance(mu1, s1, mu2, s2, rows, rows) == pytest.approx(expected, rel=1e-6)
        assert 0 <= frechet_distance(mu1, s1, mu1, s1, rows, rows) < 1e-9 * np.trace(s1)  # was -8e-5 with a general eig
    with pytest.raises(ValueError, match="negative beyond rounding"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), -np.eye(2) * 4)
