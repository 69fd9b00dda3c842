"""Resume state on disk in a format that cannot run code: one safetensors file.

Plain values (progress, counts, timings, failures) go into the file's JSON metadata; metric
states (tensors, or lists of tensors) are stored as named tensors. Nothing is unpickled on
load, so a crafted state file can at worst be refused, never execute anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from vtbench.errors import RunStateError
from vtbench.io import atomic_write_bytes

STATE_FORMAT = "vtbench-partial-state/1"
TensorState = dict[str, dict[str, torch.Tensor | list[torch.Tensor]]]


def save_state(path: Path, plain: dict[str, Any], tensors: TensorState) -> None:
    """Write ``plain`` (JSON-serialisable) and ``tensors[group][name]`` (a tensor or a list of
    tensors) atomically to ``path``."""
    atomic_write_bytes(path, encode_state(plain, tensors))


def encode_state(plain: dict[str, Any], tensors: TensorState) -> bytes:
    """The bytes :func:`save_state` writes (also what processes send each other)."""
    stored: dict[str, torch.Tensor] = {}
    layout: dict[str, dict[str, str | list[str]]] = {}
    for group, states in tensors.items():
        layout[group] = {}
        for name, value in states.items():
            if isinstance(value, torch.Tensor):
                key = f"{group}/{name}"
                stored[key] = value.detach().cpu().contiguous().clone()
                layout[group][name] = key
            else:
                keys = [f"{group}/{name}/{i}" for i in range(len(value))]
                stored.update({key: item.detach().cpu().contiguous().clone() for key, item in zip(keys, value, strict=True)})
                layout[group][name] = keys
    metadata = {"format": STATE_FORMAT, "plain": json.dumps(plain), "layout": json.dumps(layout)}
    return save_safetensors(stored, metadata=metadata)


def load_state(path: Path) -> tuple[dict[str, Any], TensorState]:
    """The ``(plain, tensors)`` written by :func:`save_state`; a file of another format or a
    damaged one is a :class:`RunStateError` naming it."""
    try:
        return decode_state(path.read_bytes())
    except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
        raise RunStateError(f"{path}: unreadable resume state ({exc}); run again with --restart to discard it") from None


def decode_state(data: bytes) -> tuple[dict[str, Any], TensorState]:
    """The inverse of :func:`encode_state` (raises ValueError and friends on bad bytes)."""
    stored = load_safetensors(data)
    metadata = _metadata(data)
    if metadata.get("format") != STATE_FORMAT:
        raise ValueError(f"format {metadata.get('format')!r}, expected {STATE_FORMAT!r}")
    plain, layout = json.loads(metadata["plain"]), json.loads(metadata["layout"])
    tensors: TensorState = {
        group: {name: stored[key] if isinstance(key, str) else [stored[k] for k in key] for name, key in states.items()}
        for group, states in layout.items()
    }
    return plain, tensors


def _metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors buffer (header length: 8 bytes little-endian)."""
    header_length = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + header_length]).get("__metadata__") or {}
