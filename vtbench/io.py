"""Atomic file writes and JSON that survives non-finite floats."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def write_output(path: str | Path, data: bytes, what: str = "") -> Path:
    """A file the user asked for (``--out``), written atomically; a place that cannot be
    written is one clear error naming it (and ``what`` was to be written, e.g. "the figure")."""
    from vtbench.errors import VtbenchError

    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise VtbenchError(f"--out {path}: cannot write {what + ' ' if what else ''}there ({exc.strerror or exc})") from None
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; a written file gets the usual mode
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _encode_floats(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # strict JSON; a metric entry says why in its status
    if isinstance(value, dict):
        return {key: _encode_floats(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode_floats(item) for item in value]
    return value


def to_json(value: Any) -> str:
    """Strict JSON text; non-finite floats are written as null."""
    return json.dumps(_encode_floats(value), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def atomic_write_json(path: str | Path, value: Any) -> None:
    atomic_write_bytes(path, to_json(value).encode())


def parse_float(value: Any) -> float | None:
    """A metric value from a record: numbers and the strings "inf"/"-inf"/"nan"."""
    if value is None:
        return None
    return float(value)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(cell: Any) -> Any:
    """A CSV cell a spreadsheet will not run as a formula: text (an image id such as
    ``=1+2;cmd.png``) starting with ``= + - @`` gets a leading ``'`` (as does text that starts
    with ``'`` itself, so :func:`csv_unsafe` gives every text back exactly); numbers pass
    unchanged."""
    if not isinstance(cell, str) or not cell.startswith((*FORMULA_STARTS, "'")):
        return cell
    try:
        float(cell)
        return cell
    except ValueError:
        return "'" + cell


def csv_unsafe(cell: Any) -> Any:
    """The text :func:`csv_safe` was given: one leading ``'`` removed."""
    return cell[1:] if isinstance(cell, str) and cell.startswith("'") else cell
