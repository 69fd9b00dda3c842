"""LPIPS (Zhang et al. 2018) through the ``lpips`` package, fed [-1, 1] as it expects.

The linear calibration layers ship inside the ``lpips`` package; the AlexNet / VGG16
backbone is torchvision's ImageNet checkpoint, found through the weights store and loaded
into the package's own network (never a randomly initialised one).
"""

from __future__ import annotations

from typing import Any

import torch

from vtbench.metrics.base import MeanMetric, MetricBatch
from vtbench.safe_load import load_checkpoint

_BACKBONE_WEIGHTS = {"alex": "alexnet", "vgg": "vgg16"}


def load_lpips(net: str, backbone_path: str, device: torch.device) -> torch.nn.Module:
    """``lpips.LPIPS(net=net)`` with its backbone loaded from a torchvision checkpoint file."""
    import lpips

    model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    state = load_checkpoint(backbone_path)
    loaded = 0
    for index in range(1, model.net.N_slices + 1):
        for layer_index, layer in getattr(model.net, f"slice{index}").named_children():
            for param_name, param in layer.named_parameters(recurse=False):
                param.data.copy_(state[f"features.{layer_index}.{param_name}"])
                loaded += 1
    if loaded == 0:
        raise ValueError(f"lpips-{net}: no backbone parameters found in {backbone_path}")
    return model.eval().to(device)


def lpips_distance(model: torch.nn.Module, preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image LPIPS for (N, 3, H, W) images in [0, 1] (mapped to [-1, 1]) -> float64 (N,)."""
    with torch.inference_mode():
        return model(preds * 2 - 1, target * 2 - 1).flatten().to(torch.float64)


class LPIPS(MeanMetric):
    """Learned perceptual image patch similarity (lower is more similar)."""

    higher_is_better = False
    min_size = 32

    def __init__(self, net: str = "alex") -> None:
        if net not in _BACKBONE_WEIGHTS:
            raise ValueError(f"lpips: net must be one of {', '.join(_BACKBONE_WEIGHTS)}, got {net!r}")
        super().__init__()
        self.net = net
        self.name = f"lpips-{net}"
        self.description = f"LPIPS v0.1 with the {net} backbone (lpips package), images in [-1, 1]"
        self.required_weights = (_BACKBONE_WEIGHTS[net],)
        self.model: torch.nn.Module | None = None  # loaded by prepare()

    def parameters(self) -> dict:
        from importlib import metadata

        return {"net": self.net, "version": "0.1", "lpips": metadata.version("lpips"), "input_range": "[-1, 1]", "spatial": False}

    def prepare(self, located: dict[str, Any], device: torch.device) -> None:
        self.model = load_lpips(self.net, str(located[_BACKBONE_WEIGHTS[self.net]].path), device)

    def score(self, batch: MetricBatch) -> torch.Tensor:
        if self.model is None:
            raise RuntimeError(f"{self.name}: prepare() was not called")
        return lpips_distance(self.model, batch.reconstructions, batch.originals)
