"""A content-keyed cache of OCR results for originals (SQLite, safe across processes).

Key: SHA-256 of (image content hash, preprocessing, crop box, layout, language, engine
version). Re-runs and other tokenizers on the same originals read the text from here.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

from vtbench.weights import home

SCHEMA = 1


def ocr_cache_path() -> Path:
    return home() / "cache" / f"ocr-v{SCHEMA}.sqlite"


def ocr_key(**identity: Any) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


class OCRCache:
    """``get(keys)`` -> {key: text} for the keys present; ``put({key: text})``."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or ocr_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        self._connection.execute("CREATE TABLE IF NOT EXISTS ocr (key TEXT PRIMARY KEY, text TEXT NOT NULL)")
        self._connection.commit()

    def get(self, keys: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            query = f"SELECT key, text FROM ocr WHERE key IN ({','.join('?' * len(chunk))})"
            found.update(self._connection.execute(query, chunk).fetchall())
        return found

    def put(self, entries: dict[str, str]) -> None:
        with self._connection:
            self._connection.executemany("INSERT OR REPLACE INTO ocr (key, text) VALUES (?, ?)", list(entries.items()))

    def close(self) -> None:
        self._connection.close()
