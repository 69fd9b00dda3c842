"""InceptionV3 as torch-fidelity builds it: the standard FID/KID/IS feature space.

The network, its TF-1.x-compatible bilinear resize to 299 and its input scaling are
torch-fidelity's own (``FeatureExtractorInceptionV3``); vtbench supplies the weights file
from its store, so FID here equals torch-fidelity's given the same weights and images.
"""

from __future__ import annotations

import torch

from vtbench.features.base import FeatureExtractor
from vtbench.weights import Located

SPATIAL_CHANNELS = 7  # ADM's sFID: the first 7 channels of mixed_6/conv, 17x17 -> 2023 features


class InceptionV3Compat(FeatureExtractor):
    """torch-fidelity InceptionV3: '2048' pool features, 'logits_unbiased' (1008) and
    'spatial' (2023): the first 7 channels of TF ``mixed_6/conv`` (the 1x1 branch of the
    third 17x17 block, torch-fidelity's ``Mixed_6d.branch1x1``, after batch norm and ReLU),
    the features the ADM evaluator's sFID uses."""

    name = "inception-v3-compat"
    provides = ("2048", "logits_unbiased", "spatial")
    weights = ("inception-v3-compat",)
    description = "InceptionV3 (TF 2015-12-05 weights) via torch-fidelity: 2048-d pool features, logits for IS"

    def __init__(self, located: dict[str, Located], device: torch.device) -> None:
        super().__init__(located, device)
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        path = str(located["inception-v3-compat"].path)
        self.model = FeatureExtractorInceptionV3(self.name, ["2048", "logits_unbiased"], feature_extractor_weights_path=path).to(device)
        self._spatial: torch.Tensor | None = None
        self.model.Mixed_6d.branch1x1.register_forward_hook(self._keep_spatial)

    def _keep_spatial(self, module: torch.nn.Module, inputs: object, output: torch.Tensor) -> None:
        self._spatial = output[:, :SPATIAL_CHANNELS].permute(0, 2, 3, 1).flatten(1).float()  # NHWC order, as TF

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.inference_mode():
            pool, logits = self.model(images)
        return {"2048": pool, "logits_unbiased": logits, "spatial": self._spatial}
