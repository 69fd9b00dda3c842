"""vtbench: benchmark visual tokenizers and the generators built on them.

The library API that the CLI is a thin layer over::

    import vtbench
    record = vtbench.evaluate(vtbench.RunConfig("jpeg-q50", "samples"), out_dir="results/demo")
    table = vtbench.build_leaderboard(vtbench.find_records("results/demo"), rank_by="psnr")

Heavy modules (torch, PIL) load on first use of an attribute, so ``import vtbench`` and
``vtbench --help`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "evaluate": "vtbench.engine",
    "evaluate_all": "vtbench.engine",
    "merge_shards": "vtbench.engine",
    "RunConfig": "vtbench.engine",
    "GenerationConfig": "vtbench.engine",
    "Settings": "vtbench.engine",
    "Preprocessing": "vtbench.images",
    "load_recipe": "vtbench.recipe",
    "run_recipe": "vtbench.recipe",
    "Recipe": "vtbench.recipe",
    "find_records": "vtbench.schema",
    "load_record": "vtbench.schema",
    "build_leaderboard": "vtbench.leaderboard",
    "compare_runs": "vtbench.compare",
    "load_records": "vtbench.analysis",
    "load_images": "vtbench.analysis",
    "bd_rate": "vtbench.analysis",
    "bd_quality": "vtbench.analysis",
    "TOKENIZERS": "vtbench.tokenizers",
    "create_tokenizer": "vtbench.tokenizers",
    "Tokenizer": "vtbench.tokenizers",
    "TokenizerInfo": "vtbench.tokenizers",
    "Tokens": "vtbench.tokenizers",
    "METRICS": "vtbench.metrics",
    "create_metric": "vtbench.metrics",
    "Metric": "vtbench.metrics",
    "DATASETS": "vtbench.datasets",
    "Dataset": "vtbench.datasets",
    "GENERATORS": "vtbench.generators",
    "Generator": "vtbench.generators",
    "EXTRACTORS": "vtbench.features",
    "OCR_ENGINES": "vtbench.ocr",
    "FACE_ENGINES": "vtbench.faces",
}

_MODULES = ("protocols",)  # submodules reachable as attributes (vtbench.protocols.apply)

__all__ = ["__version__", *_LAZY, *_MODULES]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _MODULES:
        return importlib.import_module(f"vtbench.{name}")
    raise AttributeError(f"module 'vtbench' has no attribute {name!r}")


def __dir__() -> list[str]:  # tab completion sees the lazy names too
    return sorted([*globals(), *_LAZY, *_MODULES])


def registries() -> dict[str, Any]:
    """Every registry by the name ``vtbench list`` uses."""
    return {
        "tokenizers": __getattr__("TOKENIZERS"),
        "generators": __getattr__("GENERATORS"),
        "metrics": __getattr__("METRICS"),
        "datasets": __getattr__("DATASETS"),
        "extractors": __getattr__("EXTRACTORS"),
        "ocr": __getattr__("OCR_ENGINES"),
        "faces": __getattr__("FACE_ENGINES"),
    }
