"""The face-engine contract: uint8 RGB images in; face boxes, alignment points and identity
embeddings out.

An engine aligns a face from points it computes on the original image (or that the dataset
annotates) and embeds the original and the reconstruction with those same points, so both
sides are cropped alike. An engine that cannot run (its package or model file missing)
raises an error naming what is missing and how to install it, before any image is read.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from vtbench.errors import VtbenchError

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
Points = tuple[tuple[float, float], ...]  # (x, y) in pixels


class FaceEngineUnavailableError(VtbenchError):
    """A face engine's package is not installed."""


@dataclass(frozen=True)
class FaceEngineInfo:
    """What an engine is, for the record: its detector, alignment and embedding network."""

    detector: str
    alignment: str
    embedding: str
    embedding_dim: int


class FaceEngine(ABC):
    """Finds, aligns and embeds faces. ``weights`` are weights-store names; :meth:`load` gets
    them located (path and digest) before the first image."""

    name: str = "faces"
    description: str = ""
    install_hint: str = ""
    weights: tuple[str, ...] = ()

    @abstractmethod
    def info(self) -> FaceEngineInfo:
        """The detector, alignment and network (part of the record)."""

    @abstractmethod
    def load(self, paths: dict[str, str]) -> None:
        """Load the models from ``paths`` (weights-store name -> file)."""

    @abstractmethod
    def detect(self, image: np.ndarray) -> list[Box]:
        """The faces of an (H, W, 3) uint8 RGB image, as boxes."""

    @abstractmethod
    def align(self, image: np.ndarray, box: Box, keypoints: Points | None = None) -> Points:
        """The engine's alignment points of the face in ``box`` of ``image`` (the original);
        ``keypoints``: the dataset's five annotated points (eye centres, nose tip, mouth
        corners), used when the engine aligns on those points."""

    @abstractmethod
    def embed(self, image: np.ndarray, faces: list[tuple[Box, Points]]) -> np.ndarray:
        """(F, D) float64 identity embeddings of ``faces`` (box, alignment points) in ``image``."""

    def __deepcopy__(self, memo: dict) -> FaceEngine:
        return copy.copy(self)  # the loaded models only infer: copies (of a metric, for a resumed run) share them

    def describe(self) -> dict[str, Any]:
        info = self.info()
        return {"engine": self.name, "detector": info.detector, "alignment": info.alignment, "embedding": info.embedding,
                "embedding_dim": info.embedding_dim}  # fmt: skip


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (F, D) arrays, float64."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def found_again(box: Box, detections: list[Box]) -> bool:
    """Whether one of ``detections`` is the face in ``box``: its centre lies inside the box."""
    x0, y0, x1, y1 = box
    return any(x0 <= (d[0] + d[2]) / 2 <= x1 and y0 <= (d[1] + d[3]) / 2 <= y1 for d in detections)


# TokBench's face-size buckets by evaluation side: lower edges of the medium and large buckets
# of a face's size ratio (small starts at 0)
FACE_BUCKETS: dict[int, tuple[float, float]] = {256: (0.1, 0.2), 512: (0.05, 0.2), 1024: (0.05, 0.1)}
SIZE_BUCKETS = ("small", "medium", "large")


def face_bucket(ratio: float, side: int) -> str:
    """The size bucket of a face whose box's longer side is ``ratio`` of the image's longer
    side, at the TokBench setting nearest the evaluation side ``side``."""
    setting = min(FACE_BUCKETS, key=lambda s: abs(s - side))
    medium, large = FACE_BUCKETS[setting]
    return "small" if ratio < medium else "medium" if ratio < large else "large"


def face_ratio(box: Box, width: int, height: int) -> float:
    """A face box's longer side over the image's longer side."""
    return max(box[2] - box[0], box[3] - box[1]) / max(width, height, 1)


def faces_at_evaluation(meta: dict[str, Any], source_size: tuple[int, int], preprocessing: Any) -> list[dict[str, Any]] | None:
    """A sample's annotated faces (``meta["faces"]``: ``box`` in source pixels, optional
    ``keypoints`` and ``bucket``) mapped through the preprocessing, or None when it has none
    (the engine then detects them). Faces the crop cuts by more than half are left out."""
    if "faces" not in meta:
        return None
    mapped = []
    for face in meta["faces"]:
        box = preprocessing.map_box(tuple(face["box"]), source_size)
        if box is None:
            continue
        keypoints = face.get("keypoints")
        points = tuple(preprocessing.map_points([tuple(p) for p in keypoints], source_size)) if keypoints else None
        mapped.append({"box": box, "keypoints": points, "bucket": face.get("bucket")})
    return mapped
