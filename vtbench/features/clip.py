"""OpenAI CLIP image encoders, as torch-fidelity's ``clip-*`` extractors compute them.

The network, the TF-1.x-compatible bilinear resize to the model's resolution and CLIP's
normalisation are torch-fidelity's own (``FeatureExtractorCLIP``); vtbench hands it the
original OpenAI TorchScript file (``ViT-B-32.pt``, ...) from the weights store, so nothing
is downloaded and FD-CLIP here equals torch-fidelity's given the same file.
"""

from __future__ import annotations

import torch

from vtbench.features.base import FeatureExtractor
from vtbench.weights import Located


class CLIP(FeatureExtractor):
    """CLIP image encoder: 'embedding' features (the projected image embedding)."""

    provides = ("embedding",)

    def __init__(self, located: dict[str, Located], device: torch.device) -> None:
        super().__init__(located, device)
        from torch_fidelity.feature_extractor_clip import FeatureExtractorCLIP

        (weights,) = located.values()
        self.model = FeatureExtractorCLIP(self.name, ["clip"], feature_extractor_weights_path=str(weights.path)).to(device)

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.inference_mode():
            (embedding,) = self.model(images)
        return {"embedding": embedding}


def clip_extractor(variant: str, label: str) -> type[CLIP]:
    """The registered extractor class for one CLIP variant (torch-fidelity's name)."""
    attributes = {"name": variant, "weights": (variant,), "description": f"OpenAI CLIP {label} image encoder"}
    return type(f"CLIP{label.replace('/', '').replace('-', '')}", (CLIP,), attributes)


CLIPViTB32 = clip_extractor("clip-vit-b-32", "ViT-B/32")
CLIPViTB16 = clip_extractor("clip-vit-b-16", "ViT-B/16")
CLIPViTL14 = clip_extractor("clip-vit-l-14", "ViT-L/14")
