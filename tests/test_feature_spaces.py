"""DINOv2 and CLIP feature spaces: loaded from files in Meta's and OpenAI's published
formats (made by the tests), checked against an independent forward pass and against
torch-fidelity's own FD-CLIP."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from weights_factory import dinov2_layout, make_clip_weights, make_dinov2_weights

import vtbench
from conftest import skimage_rgb
from vtbench.images import Preprocessing
from vtbench.metrics.frechet import frechet_distance


@pytest.fixture(scope="module")
def crops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("crops")
    for i, name in enumerate(["astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "immunohistochemistry", "hubble_deep_field"]):
        photo = skimage_rgb(name)
        Image.fromarray(np.ascontiguousarray(photo[:96, :96])).save(root / f"{i:02d}.png")
    return root


def reference_dinov2(state: dict[str, torch.Tensor], images: torch.Tensor) -> torch.Tensor:
    """DINOv2's forward written out with plain tensor operations: (N, 3, H, W) uint8 -> CLS."""
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    x = interpolate_bilinear_2d_like_tensorflow1x(images.double(), size=(224, 224), align_corners=False)
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1) * 255
    x = (x - mean) / std
    s = {k: v.double() for k, v in state.items()}
    dim = s["cls_token"].shape[-1]
    heads = dim // 64
    tokens = F.conv2d(x, s["patch_embed.proj.weight"], s["patch_embed.proj.bias"], stride=14).flatten(2).transpose(1, 2)
    grid = s["pos_embed"][:, 1:].reshape(1, 37, 37, dim).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, scale_factor=(16.1 / 37, 16.1 / 37), mode="bicubic").permute(0, 2, 3, 1).reshape(1, 256, dim)
    x = torch.cat([s["cls_token"].expand(len(x), -1, -1), tokens], 1) + torch.cat([s["pos_embed"][:, :1], grid], 1)
    depth = len({k.split(".")[1] for k in s if k.startswith("blocks.")})
    for b in range(depth):
        p = lambda name, b=b: s[f"blocks.{b}.{name}"]  # noqa: E731
        h = F.layer_norm(x, (dim,), p("norm1.weight"), p("norm1.bias"), eps=1e-6)
        q, k, v = F.linear(h, p("attn.qkv.weight"), p("attn.qkv.bias")).reshape(len(x), -1, 3, heads, 64).permute(2, 0, 3, 1, 4)
        attention = torch.softmax(q @ k.transpose(-2, -1) / 8.0, dim=-1)
        h = (attention @ v).transpose(1, 2).reshape(len(x), -1, dim)
        x = x + p("ls1.gamma") * F.linear(h, p("attn.proj.weight"), p("attn.proj.bias"))
        h = F.layer_norm(x, (dim,), p("norm2.weight"), p("norm2.bias"), eps=1e-6)
        h = F.linear(F.gelu(F.linear(h, p("mlp.fc1.weight"), p("mlp.fc1.bias"))), p("mlp.fc2.weight"), p("mlp.fc2.bias"))
        x = x + p("ls2.gamma") * h
    return F.layer_norm(x, (dim,), s["norm.weight"], s["norm.bias"], eps=1e-6)[:, 0]


def test_dinov2_loads_meta_layout_and_matches_an_independent_forward(tmp_path: Path, crops: Path) -> None:
    from vtbench.features import EXTRACTORS
    from vtbench.weights import Located

    path = make_dinov2_weights(tmp_path / "dinov2_vits14_pretrain.pth", depth=2)
    state = torch.load(path, weights_only=True)
    assert {k: tuple(v.shape) for k, v in state.items()} == dinov2_layout(384, depth=2)
    located = {"dinov2-vit-s-14": Located("dinov2-vit-s-14", path, "-", True)}
    extractor = EXTRACTORS.get("dinov2-vit-s-14").load()(located, torch.device("cpu"))
    images = torch.from_numpy(np.stack([np.asarray(Image.open(p)) for p in sorted(crops.glob("*.png"))[:4]])).permute(0, 3, 1, 2)
    ours = extractor(images)["cls"]
    expected = reference_dinov2(state, images)
    assert ours.shape == (4, 384)
    assert torch.allclose(ours.double(), expected, atol=1e-4 * expected.abs().max().item())


def test_dinov2_rejects_a_checkpoint_of_another_layout(tmp_path: Path) -> None:
    from vtbench.errors import VtbenchError
    from vtbench.features.dinov2 import build_dinov2

    with pytest.raises(VtbenchError, match="not a DINOv2 checkpoint.*pos_embed"):
        build_dinov2({"cls_token": torch.zeros(1, 1, 384)}, "other.pth")


def test_fd_clip_equals_torch_fidelity_and_fd_dinov2_equals_numpy(tmp_path: Path, crops: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch_fidelity

    clip = make_clip_weights(tmp_path / "ViT-B-32.pt")
    dinov2 = make_dinov2_weights(tmp_path / "dinov2_vits14_pretrain.pth", depth=1)
    monkeypatch.setenv("VTBENCH_WEIGHTS_CLIP_VIT_B_32", str(clip))
    monkeypatch.setenv("VTBENCH_WEIGHTS_DINOV2_VIT_S_14", str(dinov2))
    config = vtbench.RunConfig(
        "jpeg-q25", str(crops), metrics=["fd-clip-vit-b-32", "fd-dinov2-vit-s-14"], preprocessing=Preprocessing(None),
        batch_size=3, num_workers=0, save_reconstructions=True,
    )  # fmt: skip
    vtbench.evaluate(config, tmp_path / "out")
    record = json.loads((tmp_path / "out" / f"jpeg-q25__{crops.name}.json").read_text())
    metrics = record["metrics"]
    recon = tmp_path / "out" / f"jpeg-q25__{crops.name}.recon"
    reference = torch_fidelity.calculate_metrics(
        input1=str(recon), input2=str(crops), fid=True, feature_extractor="clip-vit-b-32",
        feature_extractor_weights_path=str(clip), cuda=False, cache=False, verbose=False,
    )  # fmt: skip
    assert reference["frechet_inception_distance"] > 0
    # 8 images in 512 dimensions: S1 S2 is singular and torch-fidelity's sqrtm of it carries rounding noise of a
    # few 1e-3 here; vtbench drops the eigenvalues that are zero by rank (exactness: test_metrics_reference.py)
    assert metrics["fd-clip-vit-b-32"]["value"] == pytest.approx(reference["frechet_inception_distance"], rel=5e-3)
    assert {w["name"] for w in record["protocol"]["weights"]} >= {"clip-vit-b-32", "dinov2-vit-s-14"}

    state = torch.load(dinov2, weights_only=True)
    load = lambda folder: torch.from_numpy(np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))]))  # noqa: E731
    recon_features = reference_dinov2(state, load(recon).permute(0, 3, 1, 2)).numpy()
    original_features = reference_dinov2(state, load(crops).permute(0, 3, 1, 2)).numpy()
    stats = lambda f: (f.mean(0), np.cov(f, rowvar=False))  # noqa: E731
    expected = frechet_distance(*stats(recon_features), *stats(original_features), len(recon_features), len(original_features))
    assert metrics["fd-dinov2-vit-s-14"]["value"] == pytest.approx(expected, rel=1e-3)
    assert "8 images < feature dimension 384" in metrics["fd-dinov2-vit-s-14"]["warnings"][0]
