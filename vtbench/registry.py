"""One generic, lazy registry for every kind of plugin.

Built-ins are registered as ``"module:attr"`` strings so nothing heavy is imported until
a name is used; third-party packages register through the Python entry-point group named
by the registry (``vtbench.tokenizers``, ``vtbench.metrics``, ...). A preset is an entry
with default keyword arguments: ``jpeg-q50`` is ``JPEGTokenizer`` with ``quality=50``.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Generic, TypeVar

from vtbench.errors import ComponentOptionError, PluginLoadError, UnknownNameError

T = TypeVar("T")

ENTRY_POINT_GROUPS = {
    "tokenizers": "vtbench.tokenizers",
    "generators": "vtbench.generators",
    "metrics": "vtbench.metrics",
    "datasets": "vtbench.datasets",
    "extractors": "vtbench.extractors",
    "ocr": "vtbench.ocr",
}


@dataclass
class Entry:
    """A registered name: what to build (a factory or ``"module:attr"``) and its presets."""

    name: str
    target: Callable[..., Any] | str
    description: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, Any] = field(default_factory=dict)
    source: str = "builtin"

    def load(self) -> Callable[..., Any]:
        """Import (once) and return the factory."""
        if isinstance(self.target, str):
            module_name, _, attr = self.target.partition(":")
            try:
                module = importlib.import_module(module_name)
                self.target = getattr(module, attr) if attr else module
            except Exception as exc:  # a broken plugin must name itself
                raise PluginLoadError(f"{self.name!r} ({self.source}): cannot import {self.target}: {exc}") from exc
        return self.target  # type: ignore[return-value]

    def summary(self) -> str:
        if self.description:
            return self.description
        target = self.target
        doc = getattr(target, "__doc__", None) if not isinstance(target, str) else None
        return (doc or "").strip().splitlines()[0] if doc else ""


class Registry(Generic[T]):
    """Names -> factories, with lazy built-ins, entry points and "did you mean" errors.

    >>> reg = Registry("things")
    >>> reg.register("double", lambda x=1: 2 * x, description="twice x", x=3)
    >>> reg.create("double")
    6
    """

    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group or ENTRY_POINT_GROUPS.get(kind)
        self._entries: dict[str, Entry] = {}
        self._entry_points_loaded = False
        self.plugin_errors: dict[str, str] = {}

    # -- registration -------------------------------------------------------------------
    def register(
        self,
        name: str,
        target: Callable[..., Any] | str | None = None,
        *,
        description: str = "",
        tags: dict[str, Any] | None = None,
        source: str = "builtin",
        **defaults: Any,
    ) -> Any:
        """Register ``target`` under ``name``; without a target, return a decorator."""
        if target is None:

            def decorator(obj: Callable[..., Any]) -> Callable[..., Any]:
                self.register(name, obj, description=description, tags=tags, source=source, **defaults)
                return obj

            return decorator
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered (by {self._entries[name].source})")
        self._entries[name] = Entry(name, target, description, dict(defaults), dict(tags or {}), source)
        return None

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded or not self.entry_point_group:
            return
        self._entry_points_loaded = True
        for ep in metadata.entry_points(group=self.entry_point_group):
            if ep.name in self._entries:
                self.plugin_errors[ep.name] = f"name already registered; {ep.value} ignored"
                warnings.warn(f"vtbench: plugin {self.kind} {ep.name!r} ({ep.value}) clashes with an existing name", stacklevel=2)
                continue
            dist = getattr(ep, "dist", None)
            source = f"plugin {dist.name}" if dist is not None else "plugin"
            try:
                obj = ep.load()
            except Exception as exc:
                self.plugin_errors[ep.name] = f"{type(exc).__name__}: {exc}"
                warnings.warn(f"vtbench: plugin {self.kind} {ep.name!r} ({ep.value}) failed to import: {exc}", stacklevel=2)
                continue
            self.register(
                ep.name,
                obj,
                description=getattr(obj, "description", "") or "",
                tags=dict(getattr(obj, "tags", {}) or {}),
                source=source,
            )

    # -- lookup -------------------------------------------------------------------------
    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._entries)

    def entries(self) -> Iterator[Entry]:
        for name in self.names():
            yield self._entries[name]

    def __contains__(self, name: object) -> bool:
        self._load_entry_points()
        return name in self._entries

    def get(self, name: str) -> Entry:
        self._load_entry_points()
        try:
            return self._entries[name]
        except KeyError:
            if name in self.plugin_errors:
                raise PluginLoadError(f"{self.kind} {name!r} is a plugin that failed to load: {self.plugin_errors[name]}") from None
            close = difflib.get_close_matches(name, list(self._entries), n=5, cutoff=0.5)
            raise UnknownNameError(self.kind, name, self._option_spelling(name) + close, sorted(self._entries)) from None

    def _option_spelling(self, name: str) -> list[str]:
        """``jpeg-q30`` -> ``["jpeg:quality=30"]``: a preset-like name whose stem is registered
        and whose letters start exactly one of its options, spelled as that option."""
        import re

        match = re.fullmatch(r"(.+)-([a-z]+)(\d+(?:\.\d+)?)", name)
        if match is None or match.group(1) not in self._entries:
            return []
        base, letters, number = match.groups()
        try:
            accepted = accepted_options(self._entries[base].load()) or []
        except Exception:  # a suggestion is never worth an import error
            return []
        options = [option for option in accepted if option.startswith(letters)]
        return [f"{base}:{options[0]}={number}"] if len(options) == 1 else []

    def create(self, name: str, /, **overrides: Any) -> T:
        """Build the named object: the preset's defaults, then ``overrides``."""
        entry = self.get(name)
        factory = entry.load()
        kwargs = {**entry.defaults, **overrides}
        check_options(f"{self.kind.rstrip('s')} {name!r}", factory, overrides)
        try:
            return factory(**kwargs)
        except (ValueError, TypeError, OSError) as exc:  # the component's own refusal of its options or files (a missing prompts file ...)
            raise ComponentOptionError(f"{self.kind.rstrip('s')} {name!r}: {exc}") from exc


REQUIRED = "<required>"


def option_defaults(factory: Any) -> dict[str, Any] | None:
    """The keyword options ``factory`` accepts with their defaults (``REQUIRED`` for one
    without); None when it takes ``**kwargs`` (anything) or cannot be inspected."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name: REQUIRED if p.default is inspect.Parameter.empty else p.default for p in parameters if p.kind in keyword}


def accepted_options(factory: Any) -> list[str] | None:
    """The keyword options ``factory`` accepts; None when it takes ``**kwargs`` (anything)."""
    defaults = option_defaults(factory)
    return None if defaults is None else list(defaults)


SIMPLE_TYPES = (bool, int, float, str, type(None))


def _is_simple(hint: Any) -> bool:
    """A hint made only of bool/int/float/str/None (and unions of them): checkable on YAML values."""
    import types
    import typing

    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return all(_is_simple(arg) for arg in typing.get_args(hint))
    return hint in SIMPLE_TYPES


def check_options(component: str, factory: Any, options: dict[str, Any]) -> None:
    """Refuse option names ``factory`` does not accept (with "did you mean" suggestions) and
    values that do not fit a simple annotated type (``quality: int`` given ``"high"``)."""
    accepted = accepted_options(factory)
    if accepted is not None:
        for option in options:
            if option not in accepted:
                close = difflib.get_close_matches(option, accepted, n=3, cutoff=0.5)
                hint = f" Did you mean: {', '.join(close)}?" if close else ""
                raise ComponentOptionError(f"{component}: unknown option {option!r}.{hint} (accepted: {', '.join(accepted) or 'none'})")
    import typing

    from vtbench.typecheck import conform, describe_type

    try:
        hints = typing.get_type_hints(factory.__init__ if isinstance(factory, type) else factory)
    except Exception:  # annotations a plugin cannot resolve: nothing to check against
        return
    for option, value in options.items():
        expected = hints.get(option)
        if expected is None or not _is_simple(expected) or conform(value, expected)[0]:
            continue
        if isinstance(value, (int, float)) and conform("", expected)[0]:
            continue  # a YAML number where text is expected (revision=2024): passed on as given
        raise ComponentOptionError(f"{component}: option {option!r} must be {describe_type(expected)}, got {value!r}")
