"""Tesseract 5 through pytesseract, with the Debian language packs: the offline default.

Each crop is one ``tesseract`` process (pytesseract), so crops run in parallel threads,
one per core. Page segmentation follows the crop's layout: a single line (``--psm 7``),
a single word (``--psm 8``) or a block of text (``--psm 6``).
"""

from __future__ import annotations

import shutil
from functools import lru_cache

from vtbench.ocr.base import OCREngine, OCRRequest, OCRUnavailableError

TESSERACT_LANGUAGES = {"en": "eng", "zh": "chi_sim", "ja": "jpn", "ko": "kor", "hi": "hin"}
PAGE_SEGMENTATION = {"block": 6, "line": 7, "word": 8}
DEBIAN_PACKAGES = {"eng": "tesseract-ocr-eng", "chi_sim": "tesseract-ocr-chi-sim", "jpn": "tesseract-ocr-jpn", "kor": "tesseract-ocr-kor"}


@lru_cache(maxsize=1)
def _installed() -> tuple[str, frozenset[str]]:
    import pytesseract

    return str(pytesseract.get_tesseract_version()), frozenset(pytesseract.get_languages(config=""))


class Tesseract(OCREngine):
    name = "tesseract"
    description = "Tesseract 5 (pytesseract + Debian language packs): en, zh, ja, ko, hi"
    install_hint = "apt-get install tesseract-ocr tesseract-ocr-eng (and -chi-sim, -jpn, -kor, -hin); pip install pytesseract"

    def check(self, languages: list[str]) -> None:
        try:
            import pytesseract  # noqa: F401
        except ImportError:
            raise OCRUnavailableError(f"OCR engine 'tesseract' needs the pytesseract package: {self.install_hint}") from None
        if shutil.which("tesseract") is None:
            raise OCRUnavailableError(f"OCR engine 'tesseract': the tesseract binary is not on PATH; {self.install_hint}")
        _, installed = _installed()
        for language in languages:
            code = TESSERACT_LANGUAGES.get(language)
            if code is None:
                raise OCRUnavailableError(f"OCR engine 'tesseract' has no mapping for language {language!r}")
            if code not in installed:
                package = DEBIAN_PACKAGES.get(code, f"tesseract-ocr-{code.replace('_', '-')}")
                problem = f"language pack {code!r} ({language}) is missing"
                raise OCRUnavailableError(f"OCR engine 'tesseract': {problem}; apt-get install {package}")

    def version(self) -> str:
        version, installed = _installed()
        return f"tesseract {version}; packs {','.join(sorted(installed))}"

    def read_one(self, request: OCRRequest) -> str:
        import pytesseract

        config = f"--psm {PAGE_SEGMENTATION.get(request.layout, 6)}"
        text = pytesseract.image_to_string(request.pixels, lang=TESSERACT_LANGUAGES[request.language], config=config)
        return text.strip()
