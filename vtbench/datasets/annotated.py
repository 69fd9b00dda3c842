"""An image folder with text annotations: ``annotations.jsonl`` beside the images.

Each line: ``{"id": "<relative image path>", "language": "en", "regions": [{"text": ...,
"language": ..., "box": [x0, y0, x1, y1], "layout": "line", "text_height": 16}]}`` with
boxes in the image's own pixels. The built-in text suite is written in this format, and
users can point ``--dataset`` at their own (``annotated`` with ``root=DIR``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vtbench.datasets.base import Sample
from vtbench.datasets.folder import ImageFolder
from vtbench.errors import DatasetError

ANNOTATIONS = "annotations.jsonl"


def read_annotations(path: Path) -> dict[str, dict[str, Any]]:
    annotations: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            annotations[entry["id"]] = entry
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DatasetError(f"{path}:{number}: not an annotation line ({exc})") from None
    return annotations


class AnnotatedFolder(ImageFolder):
    """Images under ``root`` with their text regions from ``root/annotations.jsonl``."""

    description = "An image folder with text regions and transcripts in annotations.jsonl"

    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        path = self.root / ANNOTATIONS
        if not path.is_file():
            raise DatasetError(f"{self.root}: no {ANNOTATIONS} (text regions and transcripts) in this folder")
        self.annotations = read_annotations(path)
        self.languages = sorted(
            {r.get("language", e.get("language", "en")) for e in self.annotations.values() for r in e.get("regions", [])}
            | {e["language"] for e in self.annotations.values() if "language" in e}
        )

    def load(self, index: int) -> Sample:
        sample = super().load(index)
        entry = self.annotations.get(sample.id, {})
        regions = [{"language": entry.get("language", "en"), "layout": "line", **region} for region in entry.get("regions", [])]
        sample.meta = {"language": entry.get("language", "en"), "regions": regions, **{k: v for k, v in entry.items() if k == "text"}}
        return sample

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "languages": self.languages}


class TextSuite(AnnotatedFolder):
    """The built-in text suite (``vtbench data make text``), generated on first use."""

    description = "Built-in text suite: 5 scripts x 6 font sizes x 2 backgrounds, exact transcripts and boxes"

    def __init__(self, root: str | Path | None = None) -> None:
        from vtbench.suites import ensure_suite

        super().__init__(root or ensure_suite("text"))
        self.name = "text"
