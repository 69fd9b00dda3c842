"""Face engines for face-identity metrics (TokBench's face task), registered by name.

An engine finds faces, aligns them and embeds them with a face-recognition network. Third-
party engines register through the ``vtbench.faces`` entry-point group; an engine is a class
implementing :class:`vtbench.faces.base.FaceEngine`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vtbench.registry import Registry

if TYPE_CHECKING:
    from vtbench.faces.base import FaceEngine

FACE_ENGINES: Registry[FaceEngine] = Registry("face engines", entry_point_group="vtbench.faces")
FACE_ENGINES.register(
    "dlib",
    "vtbench.faces.dlib:DlibFaces",
    description="dlib: HOG face detector, 5-point alignment, 128-d ResNet encoder (weights from PyPI); offline default",
)
FACE_ENGINES.register(
    "insightface",
    "vtbench.faces.insightface:InsightFace",
    description="insightface ArcFace (antelopev2 or buffalo_l) through onnxruntime: TokBench's protocol; model from the user",
)

__all__ = ["FACE_ENGINES"]
