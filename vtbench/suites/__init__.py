"""Built-in evaluation suites generated deterministically offline (``vtbench data make``).

``text``: lines in five scripts at six font sizes with exact transcripts and boxes;
``detail``: patterns with analytically known spectra (gratings, zone plates, Siemens stars,
checkerboards) and scikit-image textures.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from vtbench.weights import home

SUITES = ("text", "detail")


def suite_dir(name: str) -> Path:
    """Where a built-in suite lives once generated: ``$VTBENCH_HOME/datasets/<name>-v<version>``."""
    return home() / "datasets" / f"{name}-v{_version(name)}"


def _version(name: str) -> int:
    if name == "text":
        from vtbench.suites.text import VERSION
    else:
        from vtbench.suites.detail import VERSION
    return VERSION


def make_suite(name: str, out: str | Path | None = None) -> Path:
    """Generate a suite into ``out`` (default: its cache folder), atomically."""
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; known: {', '.join(SUITES)}")
    target = Path(out) if out else suite_dir(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        if name == "text":
            from vtbench.suites.text import make_text_suite

            make_text_suite(staging)
        else:
            from vtbench.suites.detail import make_detail_suite

            make_detail_suite(staging)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def ensure_suite(name: str) -> Path:
    """The suite's cache folder, generated on first use."""
    folder = suite_dir(name)
    return folder if (folder / "suite.json").is_file() else make_suite(name)
