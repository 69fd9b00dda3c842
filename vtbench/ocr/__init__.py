"""OCR engines for text-preservation metrics, registered by name.

Third-party engines register through the ``vtbench.ocr`` entry-point group; an engine is a
class implementing :class:`vtbench.ocr.base.OCREngine`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vtbench.registry import Registry

if TYPE_CHECKING:
    from vtbench.ocr.base import OCREngine

OCR_ENGINES: Registry[OCREngine] = Registry("ocr")
OCR_ENGINES.register(
    "tesseract", "vtbench.ocr.tesseract:Tesseract", description="Tesseract 5 (pytesseract, Debian packs en/zh/ja/ko/hi); offline default"
)
OCR_ENGINES.register("easyocr", "vtbench.ocr.easyocr:EasyOCR", description="EasyOCR (CRAFT + CRNN, GPU batches); English offline from PyPI")

__all__ = ["OCR_ENGINES"]
