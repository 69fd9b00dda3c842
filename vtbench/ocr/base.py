"""The OCR-engine contract: uint8 RGB crops in, text out, one language per crop.

Languages are ISO 639-1 codes (``en``, ``zh``, ``ja``, ``ko``, ``hi``); each engine maps
them to its own model names. An engine that cannot run (binary, language pack or weights
missing) raises :class:`OCRUnavailableError` naming what is missing and how to install it,
before any image is read; it never returns empty text in place of an error.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from vtbench.errors import VtbenchError

LANGUAGES = ("en", "zh", "ja", "ko", "hi")


class OCRUnavailableError(VtbenchError):
    """An OCR engine, language pack or model file is missing."""


@dataclass(frozen=True)
class OCRRequest:
    """One crop to read: (H, W, 3) uint8 pixels, its language and layout (line, block or word)."""

    pixels: np.ndarray
    language: str = "en"
    layout: str = "block"


class OCREngine(ABC):
    """Reads text from crops. Subclasses implement :meth:`read_one` (and :meth:`read` when
    they batch); the default :meth:`read` runs crops in a thread pool across the cores."""

    name: str = "ocr"
    description: str = ""
    install_hint: str = ""

    @abstractmethod
    def version(self) -> str:
        """Engine and model version (part of the OCR cache key and the record)."""

    @abstractmethod
    def check(self, languages: list[str]) -> None:
        """Raise :class:`OCRUnavailableError` if any of ``languages`` cannot be read."""

    @abstractmethod
    def read_one(self, request: OCRRequest) -> str:
        """The text in one crop (lines joined with newlines)."""

    def workers(self) -> int:
        return max(1, os.cpu_count() or 1)

    def read(self, requests: list[OCRRequest]) -> list[str]:
        if len(requests) <= 1 or self.workers() == 1:
            return [self.read_one(request) for request in requests]
        with ThreadPoolExecutor(self.workers()) as pool:
            return list(pool.map(self.read_one, requests))

    def describe(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version()}
