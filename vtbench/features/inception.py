"""InceptionV3 as torch-fidelity builds it: the standard FID/KID/IS feature space.

The network, its TF-1.x-compatible bilinear resize to 299 and its input scaling are
torch-fidelity's own (``FeatureExtractorInceptionV3``); vtbench supplies the weights file
from its store, so FID here equals torch-fidelity's given the same weights and images.
"""

from __future__ import annotations

import torch

from vtbench.features.base import FeatureExtractor
from vtbench.weights import Located


class InceptionV3Compat(FeatureExtractor):
    """torch-fidelity InceptionV3: '2048' pool features and 'logits_unbiased' (1008)."""

    name = "inception-v3-compat"
    provides = ("2048", "logits_unbiased")
    weights = ("inception-v3-compat",)
    description = "InceptionV3 (TF 2015-12-05 weights) via torch-fidelity: 2048-d pool features, logits for IS"

    def __init__(self, located: dict[str, Located], device: torch.device) -> None:
        super().__init__(located, device)
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        path = str(located["inception-v3-compat"].path)
        self.model = FeatureExtractorInceptionV3(self.name, list(self.provides), feature_extractor_weights_path=path).to(device)

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.inference_mode():
            outputs = self.model(images)
        return dict(zip(self.provides, outputs, strict=True))
