"""Face identity preservation (TokBench's face task): each face of the original embedded by a
face-recognition network on the original and on the reconstruction, aligned on the same
points, and compared by cosine similarity; and how many faces the detector still finds.

Faces come from the dataset's annotations (TokBench's boxes and five keypoints) or, for any
other images, from the engine's detector run on the original. ``face-similarity`` is the
mean cosine similarity over all faces (TokBench's ``mean_similarity``); its details give it
per size bucket and the mean of the buckets (TokBench's table). ``face-recall`` is the share
of the faces the detector finds on the original that it finds again on the reconstruction
(a detection whose centre lies in the face's box): a face lost in the reconstruction still
has its similarity scored, at the same crop, and is counted here rather than dropped.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from vtbench.faces import FACE_ENGINES
from vtbench.faces.base import SIZE_BUCKETS, cosine_similarity, face_bucket, face_ratio, found_again
from vtbench.metrics.base import Metric, MetricBatch
from vtbench.tokenizers.base import to_uint8_hwc

COLUMNS = ("similarity", "bucket", "found_original", "found_reconstruction")
MEASURES = {
    "similarity": ("cosine similarity of the face's identity embeddings, original vs reconstruction", "mean over faces"),
    "recall": ("share of the original's detected faces the detector finds again on the reconstruction", "pooled over faces"),
}


class FaceMetric(Metric):
    """``face-similarity`` or ``face-recall`` with a face engine (``vtbench list faces``):
    ``engine`` ``dlib`` (default, offline) or ``insightface`` (``model`` antelopev2 or buffalo_l)."""

    kind = "quality"
    on_clips = "no"
    min_size = 32

    def __init__(self, measure: str = "similarity", engine: str = "dlib", model: str | None = None) -> None:
        super().__init__()
        if measure not in MEASURES:
            raise ValueError(f"face metric: measure {measure!r} is not one of {', '.join(MEASURES)}")
        self.measure = measure
        self.name = f"face-{measure}"
        self.description, self.aggregation = MEASURES[measure]
        self.engine = FACE_ENGINES.create(engine, **({"model": model} if model else {}))
        self.required_weights = tuple(self.engine.weights)
        self.add_state("faces", [], "cat")  # (F, len(COLUMNS)) float64 per batch
        self.add_state("n", torch.zeros((), dtype=torch.int64), "sum")
        self.add_state("without_faces", torch.zeros((), dtype=torch.int64), "sum")

    def prepare(self, located: dict[str, Any], device: torch.device) -> None:
        self.engine.load({name: str(located[name].path) for name in self.required_weights})

    def update(self, batch: MetricBatch) -> torch.Tensor:
        originals, reconstructions = to_uint8_hwc(batch.originals), to_uint8_hwc(batch.reconstructions)
        height, width = batch.originals.shape[-2:]
        per_image = []
        for i in range(len(originals)):
            annotated = batch.faces[i] if batch.faces is not None else None
            rows = self._score(originals[i], reconstructions[i], annotated, width, height)
            if len(rows):
                self.faces.append(rows)
            per_image.append(self._value(rows))
        self.n = self.n + sum(1 for v in per_image if v == v)
        self.without_faces = self.without_faces + sum(1 for v in per_image if v != v)
        return torch.tensor(per_image, dtype=torch.float64)

    def _score(self, original: np.ndarray, reconstruction: np.ndarray, annotated: list[dict] | None, width: int,
               height: int) -> torch.Tensor:  # fmt: skip
        """One image's faces as rows of ``COLUMNS``."""
        engine = self.engine
        detected = annotated is None
        faces = [{"box": box, "keypoints": None, "bucket": None} for box in engine.detect(original)] if detected else annotated
        if not faces:
            return torch.zeros(0, len(COLUMNS), dtype=torch.float64)
        boxes = [face["box"] for face in faces]
        similarity = np.full(len(faces), np.nan)
        found_original = np.ones(len(faces))
        found_reconstruction = np.full(len(faces), np.nan)
        if self.measure == "similarity":
            aligned = [(face["box"], engine.align(original, face["box"], face["keypoints"])) for face in faces]
            similarity = cosine_similarity(engine.embed(original, aligned), engine.embed(reconstruction, aligned))
        else:
            if annotated is not None:  # annotated faces the detector cannot find on the original are not counted
                detected = engine.detect(original)
                found_original = np.array([float(found_again(box, detected)) for box in boxes])
            detected = engine.detect(reconstruction)
            found_reconstruction = np.array([float(found_again(box, detected)) for box in boxes])
        buckets = [SIZE_BUCKETS.index(face["bucket"] or face_bucket(face_ratio(face["box"], width, height), max(width, height)))
                   for face in faces]  # fmt: skip
        return torch.tensor(np.stack([similarity, buckets, found_original, found_reconstruction], 1), dtype=torch.float64)

    def _value(self, table: torch.Tensor) -> float:
        if self.measure == "similarity":
            return math.fsum(table[:, 0].tolist()) / len(table) if len(table) else float("nan")
        counted = table[table[:, 2] == 1]
        return math.fsum(counted[:, 3].tolist()) / len(counted) if len(counted) else float("nan")

    def _table(self) -> torch.Tensor:
        return torch.cat(self.faces) if self.faces else torch.zeros(0, len(COLUMNS), dtype=torch.float64)

    def compute(self) -> float:
        return self._value(self._table())

    def parameters(self) -> dict[str, Any]:
        return self.engine.describe()

    def details(self) -> dict[str, Any]:
        table = self._table()
        if not len(table):
            return {"faces": 0, "images_without_faces": int(self.without_faces)}
        bucket = table[:, 1]
        by_size = {name: self._value(table[bucket == i]) for i, name in enumerate(SIZE_BUCKETS) if (bucket == i).any()}
        by_size = {name: value for name, value in by_size.items() if value == value}
        details: dict[str, Any] = {"faces": len(table), "images_without_faces": int(self.without_faces), "by_size": by_size}
        if by_size:
            details["mean_of_size_buckets"] = sum(by_size.values()) / len(by_size)
        if self.measure == "recall":
            counted = table[table[:, 2] == 1]
            details |= {"found_on_original": len(counted), "missed_on_reconstruction": int((counted[:, 3] == 0).sum())}
        return details

    def warnings(self) -> list[str]:
        problems = []
        if int(self.without_faces):
            problems.append(f"{int(self.without_faces)} images have no face the {self.engine.name} engine finds; they are not scored")
        if self.measure == "recall":
            table = self._table()
            missed = int(((table[:, 2] == 1) & (table[:, 3] == 0)).sum()) if len(table) else 0
            if missed:
                problems.append(f"{missed} faces found on the original are not found on the reconstruction")
        return problems
