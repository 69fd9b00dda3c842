"""dlib's face pipeline, the offline default: the HOG frontal-face detector (one upsampling),
the 5-point landmark model for alignment and the 128-d ResNet face encoder (dlib's
``face_recognition_model_v1``, 0.25 padding, no jitter). The models ship in the PyPI package
``face-recognition-models``; dlib itself in ``dlib-bin`` (prebuilt) or ``dlib``."""

from __future__ import annotations

import numpy as np

from vtbench.faces.base import Box, FaceEngine, FaceEngineInfo, FaceEngineUnavailableError, Points

UPSAMPLE = 1  # face_recognition's default: faces down to about 40 px
PADDING = 0.25  # dlib's default crop padding around the aligned face


def import_dlib():  # noqa: ANN201 - the dlib module
    try:
        import dlib
    except ImportError:
        raise FaceEngineUnavailableError(f"face engine 'dlib' needs the dlib package: {DlibFaces.install_hint}") from None
    return dlib


def dlib_box(dlib, box: Box):  # noqa: ANN001, ANN201
    return dlib.rectangle(*(int(round(v)) for v in box))


def hog_detect(detector, image: np.ndarray) -> list[Box]:  # noqa: ANN001
    """The boxes dlib's HOG ``detector`` finds in an (H, W, 3) uint8 RGB image, upsampled ``UPSAMPLE`` times."""
    return [(r.left(), r.top(), r.right(), r.bottom()) for r in detector(np.ascontiguousarray(image), UPSAMPLE)]


class DlibFaces(FaceEngine):
    name = "dlib"
    description = "dlib HOG detector + 5-point alignment + 128-d ResNet face encoder"
    install_hint = "pip install dlib-bin face-recognition-models"
    weights = ("dlib-shape-predictor-5", "dlib-face-resnet")

    def __init__(self) -> None:
        self._detector = self._landmarks = self._encoder = None

    def info(self) -> FaceEngineInfo:
        return FaceEngineInfo(
            detector=f"dlib HOG frontal face detector, upsampled {UPSAMPLE}x",
            alignment="dlib 5-point landmarks on the original (get_face_chip 150x150, padding 0.25)",
            embedding="dlib_face_recognition_resnet_model_v1 (ResNet-29, 128-d)",
            embedding_dim=128,
        )

    def load(self, paths: dict[str, str]) -> None:
        dlib = import_dlib()
        self._detector = dlib.get_frontal_face_detector()
        self._landmarks = dlib.shape_predictor(paths["dlib-shape-predictor-5"])
        self._encoder = dlib.face_recognition_model_v1(paths["dlib-face-resnet"])

    def detect(self, image: np.ndarray) -> list[Box]:
        return hog_detect(self._detector, image)

    def align(self, image: np.ndarray, box: Box, keypoints: Points | None = None) -> Points:
        shape = self._landmarks(np.ascontiguousarray(image), dlib_box(import_dlib(), box))
        return tuple((float(p.x), float(p.y)) for p in shape.parts())

    def embed(self, image: np.ndarray, faces: list[tuple[Box, Points]]) -> np.ndarray:
        if not faces:
            return np.zeros((0, 128))
        dlib = import_dlib()
        shapes = dlib.full_object_detections()
        for box, points in faces:
            shapes.append(dlib.full_object_detection(dlib_box(dlib, box), [dlib.point(int(x), int(y)) for x, y in points]))
        descriptors = self._encoder.compute_face_descriptor(np.ascontiguousarray(image), shapes, 0, PADDING)
        return np.array([list(d) for d in descriptors], dtype=np.float64)
