"""Largest deviations from the reference implementations, on real photographs under JPEG,
noise and blur: PSNR and SSIM vs scikit-image, MS-SSIM vs torchmetrics, LPIPS vs the lpips
package, FID / KID / IS vs torch-fidelity (same weights file and images). The tests assert
the tolerances; this reports the actual figures.

LPIPS and Inception use He-initialised weights in the upstream layouts (made here):
agreement depends on the code paths, not on the weights' values.
Usage: python benchmarks/accuracy.py
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from common import save
from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from weights_factory import make_inception_weights, make_torchvision_weights  # noqa: E402

PHOTOS = ["astronaut", "coffee", "camera", "rocket"]


def rgb(name: str) -> np.ndarray:
    import skimage.data

    return np.asarray(Image.fromarray(getattr(skimage.data, name)()).convert("RGB"))


def distortions(array: np.ndarray) -> list[np.ndarray]:
    out = []
    for quality in (20, 80):
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="JPEG", quality=quality)
        out.append(np.asarray(Image.open(buffer).convert("RGB")))
    noise = np.random.default_rng(0).normal(0, 12, array.shape)
    out.append(np.clip(array + noise, 0, 255).round().astype(np.uint8))
    out.append(np.asarray(Image.fromarray(array).filter(ImageFilter.GaussianBlur(2))))
    return out


def tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array.copy()).permute(2, 0, 1)[None].float() / 255


def main() -> None:
    import lpips
    import torch_fidelity
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

    from vtbench.metrics.lpips import load_lpips, lpips_distance
    from vtbench.metrics.ms_ssim import ms_ssim
    from vtbench.metrics.psnr import psnr
    from vtbench.metrics.ssim import ssim

    worst = {"psnr": 0.0, "ssim": 0.0, "ms-ssim": 0.0, "lpips-alex": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        alex = make_torchvision_weights("alexnet", tmp / "alexnet-owt-7be5be79.pth")
        (tmp / "torch" / "hub" / "checkpoints").mkdir(parents=True)
        shutil.copy(alex, tmp / "torch" / "hub" / "checkpoints" / alex.name)
        os.environ["TORCH_HOME"] = str(tmp / "torch")
        reference_lpips = lpips.LPIPS(net="alex", verbose=False).eval()
        ours_lpips = load_lpips("alex", str(alex), torch.device("cpu"))
        for name in PHOTOS:
            photo = rgb(name)
            for distorted in distortions(photo):
                x, y = tensor(distorted), tensor(photo)
                worst["psnr"] = max(worst["psnr"], abs(float(psnr(x, y)) - peak_signal_noise_ratio(photo, distorted, data_range=255)))
                expected = structural_similarity(
                    photo, distorted, channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
                )
                worst["ssim"] = max(worst["ssim"], abs(float(ssim(x, y)) - expected))
                expected = multiscale_structural_similarity_index_measure(x.double(), y.double(), data_range=1.0, normalize="relu")
                worst["ms-ssim"] = max(worst["ms-ssim"], abs(float(ms_ssim(x, y)) - float(expected)))
                crop_x, crop_y = x[..., :256, :256], y[..., :256, :256]
                with torch.no_grad():
                    expected = float(reference_lpips(crop_x, crop_y, normalize=True))
                worst["lpips-alex"] = max(worst["lpips-alex"], abs(float(lpips_distance(ours_lpips, crop_x, crop_y)) - expected))

        weights = make_inception_weights(tmp / "inception.pth")
        crops = tmp / "crops"
        crops.mkdir()
        rng = np.random.default_rng(0)
        for i in range(60):
            photo = rgb(PHOTOS[i % len(PHOTOS)])
            top, left = rng.integers(0, photo.shape[0] - 96), rng.integers(0, photo.shape[1] - 96)
            Image.fromarray(np.ascontiguousarray(photo[top : top + 96, left : left + 96])).save(crops / f"{i:03d}.png")
        env = {**os.environ, "VTBENCH_WEIGHTS_INCEPTION_V3_COMPAT": str(weights), "VTBENCH_HOME": str(tmp / "home")}
        command = [sys.executable, "-m", "vtbench", "run", "-t", "jpeg-q25", "-d", str(crops), "-m", "fid", "-m", "kid", "-m", "isc",
                   "--resize-mode", "none", "--save-reconstructions", "--out", str(tmp / "out")]  # fmt: skip
        subprocess.run(command, check=True, env=env, capture_output=True)
        import json

        record = json.loads((tmp / "out" / "jpeg-q25__crops.json").read_text())["metrics"]
        reference = torch_fidelity.calculate_metrics(
            input1=str(tmp / "out" / "jpeg-q25__crops.recon"), input2=str(crops), fid=True, kid=True, isc=True, kid_subset_size=60,
            cuda=False, cache=False, verbose=False, feature_extractor_weights_path=str(weights),
        )  # fmt: skip
    relative = {
        "fid": abs(record["fid"]["value"] / reference["frechet_inception_distance"] - 1),
        "kid": abs(record["kid"]["value"] / reference["kernel_inception_distance_mean"] - 1),
        "isc": abs(record["isc"]["value"] / reference["inception_score_mean"] - 1),
    }
    save("accuracy", {"max_abs_difference": {k: float(f"{v:.3g}") for k, v in worst.items()},
                      "relative_difference_vs_torch_fidelity": {k: float(f"{v:.3g}") for k, v in relative.items()}})  # fmt: skip


if __name__ == "__main__":
    main()
