"""The built-in detail suite as a dataset (``vtbench data make detail``)."""

from __future__ import annotations

from pathlib import Path

from vtbench.datasets.annotated import read_annotations
from vtbench.datasets.base import Sample
from vtbench.datasets.folder import ImageFolder


class DetailSuite(ImageFolder):
    """Gratings, zone plate, Siemens star, checkerboards and textures (generated on first use)."""

    description = "Built-in detail suite: gratings, zone plate, Siemens star, checkerboards, textures"

    def __init__(self, root: str | Path | None = None) -> None:
        from vtbench.suites import ensure_suite

        super().__init__(root or ensure_suite("detail"))
        self.name = "detail"
        self.annotations = read_annotations(self.root / "annotations.jsonl")

    def load(self, index: int) -> Sample:
        sample = super().load(index)
        sample.meta = {k: v for k, v in self.annotations.get(sample.id, {}).items() if k != "id"}
        return sample
