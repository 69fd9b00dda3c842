"""Pretrained-format weights made by the tests: the real architectures, with deterministic
He-initialised parameters, saved exactly as the upstream files are (same keys, shapes,
containers). Nothing here downloads anything."""

from __future__ import annotations

import math
from pathlib import Path

import torch


def _he_init(state: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for key, value in state.items():
        if not value.is_floating_point():
            out[key] = value.clone()
        elif key.endswith("running_var"):
            out[key] = torch.ones_like(value)
        elif key.endswith("running_mean") or key.endswith("bias"):
            out[key] = torch.zeros_like(value)
        elif value.dim() >= 2:
            fan_in = value[0].numel()
            out[key] = torch.randn(value.shape, generator=generator) * math.sqrt(2.0 / fan_in)
        else:  # batch-norm scale
            out[key] = torch.ones_like(value)
    return out


def make_inception_weights(path: Path, seed: int = 0) -> Path:
    """A torch-fidelity InceptionV3 weights file (the layout of weights-inception-2015-12-05)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class Skeleton(FeatureExtractorInceptionV3):
        def load_state_dict(self, *args, **kwargs):  # build the module, load nothing
            return None

    empty = path.with_suffix(".empty.pth")
    torch.save({}, empty)
    skeleton = Skeleton("skeleton", ["2048"], feature_extractor_weights_path=str(empty))
    empty.unlink()
    torch.save(_he_init(skeleton.state_dict(), seed), path)
    return path


def make_torchvision_weights(arch: str, path: Path, seed: int = 0) -> Path:
    """A torchvision ImageNet checkpoint layout (``alexnet`` or ``vgg16``)."""
    import torchvision

    model = getattr(torchvision.models, arch)(weights=None)
    torch.save(_he_init(model.state_dict(), seed), path)
    return path
