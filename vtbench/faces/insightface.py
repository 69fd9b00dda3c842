"""insightface's ArcFace recognisers through onnxruntime, as TokBench measures faces: each
face aligned on five points (eye centres, nose tip, mouth corners) to the ArcFace template
by a similarity transform (``norm_crop``: OpenCV ``warpAffine``, bilinear, black border), RGB
scaled to [-1, 1] (or raw for the old MXNet exports), one embedding per face.

The model is the pack's recognition file (``antelopev2/glintr100.onnx`` or
``buffalo_l/w600k_r50.onnx``) from the user's insightface folder; it is not downloadable
offline. Faces without annotated points (any folder but TokBench's) are found with dlib's
detector and their five points taken from dlib's 68 landmarks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vtbench.faces.base import Box, FaceEngine, FaceEngineInfo, FaceEngineUnavailableError, Points
from vtbench.faces.dlib import dlib_box, hog_detect, import_dlib

# ArcFace's five-point template for a 112x112 crop (insightface utils/face_align.py)
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64
)
MODELS = {"antelopev2": "arcface-antelopev2", "buffalo_l": "arcface-buffalo-l"}


def five_points(landmarks68: np.ndarray) -> np.ndarray:
    """dlib's 68 landmarks (68, 2) -> ArcFace's five points: the eye centres (means of points
    36-41 and 42-47), the nose tip (30) and the mouth corners (48, 54)."""
    return np.stack([landmarks68[36:42].mean(0), landmarks68[42:48].mean(0), landmarks68[30], landmarks68[48], landmarks68[54]])


def alignment_matrix(points: np.ndarray, size: int) -> np.ndarray:
    """The (2, 3) similarity transform (Umeyama, no reflection) taking ``points`` (5, 2) to the
    ArcFace template at ``size`` (a multiple of 112, or of 128 with the template shifted 8/128)."""
    from skimage.transform import SimilarityTransform

    ratio, shift = (size / 112.0, 0.0) if size % 112 == 0 else (size / 128.0, 8.0 * size / 128.0)
    target = ARCFACE_TEMPLATE * ratio + np.array([shift, 0.0])
    source = np.asarray(points, dtype=np.float64)
    if hasattr(SimilarityTransform, "from_estimate"):  # scikit-image >= 0.26
        return SimilarityTransform.from_estimate(source, target).params[:2]
    transform = SimilarityTransform()
    transform.estimate(source, target)
    return transform.params[:2]


class InsightFace(FaceEngine):
    name = "insightface"
    description = "insightface ArcFace recogniser (antelopev2 / buffalo_l) through onnxruntime"
    install_hint = "pip install onnxruntime onnx opencv-python-headless"

    def __init__(self, model: str = "antelopev2") -> None:
        if model not in MODELS:
            raise ValueError(f"model {model!r} is not one of {', '.join(MODELS)}")
        self.model = model
        self.weights = (MODELS[model], "dlib-shape-predictor-68")
        self._session = None
        self._hog = self._landmarks68 = None  # dlib's detector and 68-point model, loaded for faces without keypoints
        self._landmarks68_path = ""
        self.input_mean = self.input_std = 127.5
        self.size = 112

    def info(self) -> FaceEngineInfo:
        return FaceEngineInfo(
            detector="dataset keypoints; else dlib HOG detector with the 5 points from its 68 landmarks",
            alignment=f"ArcFace 5-point similarity transform to {self.size}x{self.size} (cv2.warpAffine, bilinear, black border)",
            embedding=f"insightface {self.model} ArcFace (onnxruntime; input (x - {self.input_mean}) / {self.input_std}, RGB)",
            embedding_dim=int(self._session.get_outputs()[0].shape[-1]) if self._session else 512,
        )

    def load(self, paths: dict[str, str]) -> None:
        try:
            import cv2  # noqa: F401
            import onnx
            import onnxruntime
        except ImportError as exc:
            raise FaceEngineUnavailableError(f"face engine 'insightface' needs {exc.name}: {self.install_hint}") from None
        path = paths[MODELS[self.model]]
        names = [node.name for node in onnx.load(path, load_external_data=False).graph.node[:8]]
        if any(n.startswith(("Sub", "_minus")) for n in names) and any(n.startswith(("Mul", "_mul")) for n in names):
            self.input_mean, self.input_std = 0.0, 1.0  # MXNet exports normalise inside the graph
        available = onnxruntime.get_available_providers()
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available] or available
        self._session = onnxruntime.InferenceSession(path, providers=providers)
        self.size = int(self._session.get_inputs()[0].shape[2])
        self._landmarks68_path = paths["dlib-shape-predictor-68"]

    def detect(self, image: np.ndarray) -> list[Box]:
        if self._hog is None:
            self._hog = import_dlib().get_frontal_face_detector()
        return hog_detect(self._hog, image)

    def align(self, image: np.ndarray, box: Box, keypoints: Points | None = None) -> Points:
        if keypoints is not None:
            return tuple((float(x), float(y)) for x, y in keypoints)
        dlib = import_dlib()
        if self._landmarks68 is None:
            self._landmarks68 = dlib.shape_predictor(self._landmarks68_path)
        shape = self._landmarks68(np.ascontiguousarray(image), dlib_box(dlib, box))
        points = five_points(np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64))
        return tuple((float(x), float(y)) for x, y in points)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "model": self.model}

    def crops(self, image: np.ndarray, faces: list[tuple[Box, Points]]) -> np.ndarray:
        """(F, size, size, 3) uint8 aligned crops, as insightface's ``norm_crop`` makes them."""
        import cv2

        return np.stack([cv2.warpAffine(image, alignment_matrix(np.array(points), self.size), (self.size, self.size), borderValue=0.0)
                         for _, points in faces])  # fmt: skip

    def embed(self, image: np.ndarray, faces: list[tuple[Box, Points]]) -> np.ndarray:
        if not faces:
            return np.zeros((0, self.info().embedding_dim))
        blob = (self.crops(np.ascontiguousarray(image), faces).astype(np.float32) - self.input_mean) / self.input_std
        blob = np.ascontiguousarray(blob.transpose(0, 3, 1, 2), dtype=np.float32)
        session = self._session
        output = session.run([session.get_outputs()[0].name], {session.get_inputs()[0].name: blob})[0]
        return np.asarray(output, dtype=np.float64).reshape(len(faces), -1)
