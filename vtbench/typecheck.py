"""Checking values against type hints: what recipes, flags and plugin options are held to.

``conform(value, hint)`` says whether a value (as YAML or the command line gives it) fits a
hint made of bool/int/float/str/None, unions, lists, tuples, dicts and dataclasses, and
converts it where that loses nothing (an int for a float, a mapping for a dataclass).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any


def describe_type(expected: Any) -> str:
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe_type(arg) for arg in typing.get_args(expected))
    if origin is not None:
        args = ", ".join(describe_type(arg) for arg in typing.get_args(expected))
        return f"{origin.__name__}[{args}]"
    if expected is type(None):
        return "null"
    if expected is Any:
        return "anything"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        expected, getattr(expected, "__name__", str(expected))
    )


def conform(value: Any, expected: Any) -> tuple[bool, Any]:
    """Whether ``value`` fits the type ``expected``; returns (ok, value converted where lossless:
    an int for a float, a mapping for a dataclass, a list for a tuple)."""
    origin = typing.get_origin(expected)
    if expected is Any:
        return True, value
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(expected):
            ok, converted = conform(value, option)
            if ok:
                return True, converted
        return False, value
    if expected is type(None):
        return value is None, value
    if expected is bool:
        return isinstance(value, bool), value
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if expected is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if expected is str:
        return isinstance(value, str), value
    if origin is list:
        (item,) = typing.get_args(expected) or (Any,)
        if not isinstance(value, (list, tuple)):
            return False, value
        results = [conform(v, item) for v in value]
        return all(ok for ok, _ in results), [v for _, v in results]
    if origin is tuple:
        items = typing.get_args(expected)
        if not isinstance(value, (list, tuple)) or len(value) != len(items):
            return False, value
        results = [conform(v, t) for v, t in zip(value, items, strict=True)]
        return all(ok for ok, _ in results), tuple(v for _, v in results)
    if origin is dict:
        return isinstance(value, dict), value
    if dataclasses.is_dataclass(expected) and isinstance(expected, type):
        if isinstance(value, expected):
            return True, value
        if isinstance(value, dict):
            names = {f.name for f in dataclasses.fields(expected)}
            unknown = sorted(set(value) - names)
            if unknown:
                raise ValueError(f"unknown {expected.__name__.lower()} key {unknown[0]!r} (known: {', '.join(sorted(names))})")
            try:
                return True, expected(**value)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{expected.__name__.lower()}: {exc}") from None
        return False, value
    return isinstance(value, expected) if isinstance(expected, type) else True, value
