"""Generators: the contract (``base``) and built-ins, registered by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vtbench.registry import Registry

if TYPE_CHECKING:
    from vtbench.generators.base import Generator

GENERATORS: Registry[Generator] = Registry("generators")
GENERATORS.register(
    "samples-reader",
    "vtbench.generators.samples:SampleReader",
    description="Samples made elsewhere: an image folder or an ADM .npz (arr_0 uint8 NHWC); option: path",
)

__all__ = ["GENERATORS", "Generator"]


def __getattr__(name: str):  # the contract classes import torch: load them on first use
    if name in {"Generator"}:
        import importlib

        return getattr(importlib.import_module("vtbench.generators.base"), name)
    raise AttributeError(name)
