"""Tokenizers: the contract (``base``) and one module per family, registered as presets.

A preset is a registered name plus default options and metadata, kept as data in
``presets.yaml``; adding one never touches code. Third-party tokenizers arrive through the ``vtbench.tokenizers``
entry-point group.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vtbench.registry import Registry

if TYPE_CHECKING:
    from vtbench.tokenizers.base import Tokenizer

TOKENIZERS: Registry[Tokenizer] = Registry("tokenizers")

PRESETS_FILE = Path(__file__).with_name("presets.yaml")
NOT_METADATA = ("name", "target", "options", "description")


def _register_presets() -> None:
    """Register every preset of ``presets.yaml``: options as defaults, the rest as tags."""
    import yaml

    data = yaml.safe_load(PRESETS_FILE.read_text(encoding="utf-8"))
    targets, evaluations = data["targets"], data.get("evaluations", {})
    for preset in data["presets"]:
        metadata = {key: value for key, value in preset.items() if key not in NOT_METADATA}
        evaluation = preset.get("evaluation", preset["target"])  # how its reported numbers were measured (`vtbench reproduce`)
        if evaluation not in evaluations and "evaluation" in preset:
            raise ValueError(f"preset {preset['name']}: evaluation {evaluation!r} is not in presets.yaml's evaluations")
        metadata.pop("evaluation", None)
        if "reported" in preset and evaluation in evaluations:
            metadata["evaluation"] = {"name": evaluation, **evaluations[evaluation]}
        target = targets.get(preset["target"], preset["target"])
        TOKENIZERS.register(preset["name"], target, description=preset.get("description", ""), tags=metadata, **preset.get("options", {}))


_register_presets()


def create_tokenizer(name: str, /, **options: object) -> Tokenizer:
    """Build a registered tokenizer (preset defaults, then ``options``)."""
    return TOKENIZERS.create(name, **options)


__all__ = ["TOKENIZERS", "Tokenizer", "TokenizerInfo", "Tokens", "create_tokenizer"]


def __getattr__(name: str):  # the contract classes import torch: load them on first use
    if name in {"Tokens", "Tokenizer", "TokenizerInfo"}:
        import importlib

        return getattr(importlib.import_module("vtbench.tokenizers.base"), name)
    raise AttributeError(name)
