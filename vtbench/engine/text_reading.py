"""Reading text regions with an OCR engine: the engine built and checked once per run, box
mapping through the preprocessing, and originals' readings from the content-keyed OCR cache."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vtbench.engine.loading import LoadedItem
from vtbench.images import Preprocessing
from vtbench.metrics.base import Metric, TextReading
from vtbench.metrics.text import NORMALISATION, size_bucket
from vtbench.ocr import OCR_ENGINES
from vtbench.ocr.base import OCREngine, OCRRequest, OCRUnavailableError
from vtbench.ocr.cache import OCRCache, ocr_key
from vtbench.tokenizers.base import to_uint8_hwc

MARGIN = 2  # pixels added around every mapped box
READING = f"text regions read at the evaluation resolution (boxes mapped through the preprocessing), {MARGIN}-px margin"


def text_regions(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """A sample's text regions: ``meta["regions"]`` (boxes in source pixels), else the whole
    image with ``meta["text"]`` (None when the dataset has no transcript)."""
    if meta.get("regions"):
        return list(meta["regions"])
    return [{"text": meta.get("text"), "language": meta.get("language", "en"), "box": None, "layout": "block"}]


class TextReader:
    """OCR of every text region of a batch, for the metrics that asked for it (``needs_ocr``)."""

    def __init__(self, engine: OCREngine, preprocessing: Preprocessing, read_originals: bool, use_cache: bool) -> None:
        self.engine, self.preprocessing, self.read_originals = engine, preprocessing, read_originals
        self.cache = OCRCache() if use_cache else None
        self.counts = {"reconstructions_read": 0, "originals_read": 0, "originals_cached": 0}

    @classmethod
    def for_metrics(
        cls, metrics: dict[str, Metric], unavailable: dict[str, tuple[Metric, str]], engine_name: str, languages: list[str],
        preprocessing: Preprocessing, skip_unavailable: bool, use_cache: bool,
    ) -> TextReader | None:  # fmt: skip
        """The reader for a run, or None when no metric reads text. An engine that cannot read
        the dataset's languages fails the run before any work, or (``skip_unavailable``) moves
        the text metrics from ``metrics`` to ``unavailable``."""
        readers = {name: metric for name, metric in metrics.items() if metric.needs_ocr}
        if not readers:
            return None
        try:
            engine = OCR_ENGINES.create(engine_name)
            engine.check(languages)
        except OCRUnavailableError as exc:
            if not skip_unavailable:
                raise OCRUnavailableError(
                    f"cannot compute {', '.join(readers)}: {exc}\nFix that, pick another engine with --ocr-engine "
                    "(`vtbench list ocr`), or pass --skip-unavailable to record these metrics as not computed."
                ) from None
            for name, metric in readers.items():
                unavailable[name] = (metric, str(exc))
                del metrics[name]
            return None
        read_originals = any(metric.needs_original_ocr for metric in readers.values())
        return cls(engine, preprocessing, read_originals, use_cache)

    def _regions(self, items: list[LoadedItem], height: int, width: int) -> tuple[list[tuple[int, dict, tuple]], list[float]]:
        """Each readable region as (image position, region, crop box at evaluation size), and its
        text height relative to the image."""
        regions: list[tuple[int, dict[str, Any], tuple[int, int, int, int]]] = []
        relative_heights: list[float] = []
        for position, item in enumerate(items):
            source_w, source_h = item.source_dimensions
            for region in text_regions(item.meta):
                box = region.get("box")
                mapped = self.preprocessing.map_box(tuple(box), (source_w, source_h)) if box else (0, 0, width, height)
                if mapped is None:
                    continue
                x0, y0 = max(0, int(mapped[0]) - MARGIN), max(0, int(mapped[1]) - MARGIN)
                x1, y1 = min(width, int(np.ceil(mapped[2])) + MARGIN), min(height, int(np.ceil(mapped[3])) + MARGIN)
                if x1 - x0 >= 2 and y1 - y0 >= 2:
                    regions.append((position, region, (x0, y0, x1, y1)))
                    text_height = region.get("text_height")  # in source pixels, when the dataset knows it
                    relative_heights.append(text_height / source_h if text_height else (mapped[3] - mapped[1]) / height)
        return regions, relative_heights

    def read(self, items: list[LoadedItem], originals: torch.Tensor, reconstructions: torch.Tensor) -> list[list[TextReading]]:
        """OCR every text region of the batch at the evaluation resolution (crops in parallel);
        originals' readings come from the OCR cache when it has them."""
        height, width = originals.shape[-2:]
        regions, relative_heights = self._regions(items, height, width)

        def requests(pixels: np.ndarray, which: list[int]) -> list[OCRRequest]:
            return [
                OCRRequest(np.ascontiguousarray(pixels[p][y0:y1, x0:x1]), r.get("language", "en"), r.get("layout", "block"))
                for p, r, (x0, y0, x1, y1) in (regions[i] for i in which)
            ]

        recon_text = self.engine.read(requests(to_uint8_hwc(reconstructions), list(range(len(regions)))))
        original_text: list[str | None] = [None] * len(regions)
        if self.read_originals:
            original_text = self._read_originals(items, originals, regions, requests)
        self.counts["reconstructions_read"] += len(regions)
        readings: list[list[TextReading]] = [[] for _ in items]
        readouts = zip(regions, relative_heights, recon_text, original_text, strict=True)
        for (position, region, _), relative, recon_ocr, original_ocr in readouts:
            bucket = region.get("bucket") or size_bucket(relative, 1.0)  # a dataset's own buckets (TokBench) come first
            readings[position].append(TextReading(region.get("text"), region.get("language", "en"), bucket, recon_ocr, original_ocr))
        return readings

    def _read_originals(self, items: list[LoadedItem], originals: torch.Tensor, regions: list, requests: Any) -> list[str | None]:
        version = self.engine.version()
        keys = [
            ocr_key(image=items[p].sha256, preprocessing=self.preprocessing.canonical(), box=box, layout=r.get("layout", "block"),
                    language=r.get("language", "en"), engine=self.engine.name, version=version)
            for p, r, box in regions
        ]  # fmt: skip
        cached = self.cache.get(keys) if self.cache else {}
        todo = [i for i, key in enumerate(keys) if key not in cached]
        fresh = self.engine.read(requests(to_uint8_hwc(originals), todo)) if todo else []
        if self.cache and todo:
            self.cache.put({keys[i]: text for i, text in zip(todo, fresh, strict=True)})
        found = dict(zip(todo, fresh, strict=True))
        self.counts["originals_cached"] += len(keys) - len(todo)
        self.counts["originals_read"] += len(todo)
        return [cached[key] if key in cached else found[i] for i, key in enumerate(keys)]

    def protocol(self) -> dict[str, Any]:
        """The ``protocol.ocr`` block of the record (counts are added when shards merge)."""
        return {**self.engine.describe(), "reading": READING, "normalisation": NORMALISATION}
