"""Command-line options made from the settings' declarations (:mod:`vtbench.declaration`).

``@settings_options("run", Settings)`` adds one option per declared setting that ``run``
takes (its flag, short name, off switch, help and panel from the declaration) to a Typer
command, and hands the command the values the user gave as one mapping, ``settings``, in the
layout :func:`vtbench.settings.resolve` takes (``preprocessing`` nested). Nothing else lists
the flags: a new setting is one declared field, and every command that takes it shows it.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import typer

from vtbench.declaration import Declared


@dataclass(frozen=True)
class Option:
    """One generated option: the parameter name, where its value goes in ``settings`` (a
    path of keys), the declaration, and the Python type Typer parses."""

    parameter: str
    path: tuple[str, ...]
    declaration: Declared
    annotation: Any
    multiple: bool


def _annotation(hint: Any, declaration: Declared) -> tuple[Any, bool]:
    """The type Typer parses the option as (text when the declaration parses it), and whether
    it repeats."""
    args = [arg for arg in typing.get_args(hint) if arg is not type(None)] if _is_union(hint) else [hint]
    inner = args[0] if len(args) == 1 else hint
    if typing.get_origin(inner) is list:
        return list[str], True
    if declaration.parse is not None or typing.get_origin(inner) is typing.Literal:
        return str | None, False
    if inner in (bool, int, float, str):
        return inner | None, False
    return str | None, False


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def command_options(command: str, *classes: type) -> list[Option]:
    """The options ``command`` takes, from the declared settings of ``classes`` (a nested
    settings dataclass, such as ``preprocessing``, contributes its own declared fields)."""
    options: list[Option] = []

    def visit(cls: type, prefix: tuple[str, ...], commands: tuple[str, ...] | None) -> None:
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            declaration: Declared | None = field.metadata.get("setting")
            if declaration is None or command not in (commands or declaration.commands):
                continue
            hint = hints[field.name]
            nested = [arg for arg in (typing.get_args(hint) or (hint,)) if dataclasses.is_dataclass(arg)]
            if nested:
                visit(nested[0], (*prefix, field.name), declaration.commands)
                continue
            if declaration.flag is None:
                continue  # set through another setting's option (``via``)
            annotation, multiple = _annotation(hint, declaration)
            options.append(Option(field.name, (*prefix, field.name), declaration, annotation, multiple))

    for cls in classes:
        visit(cls, (), None)
    return options


def _via(classes: tuple[type, ...]) -> dict[str, list[tuple[str, Declared]]]:
    """Option parameter -> the settings it also sets (``metrics`` -> ``metric_options``)."""
    found: dict[str, list[tuple[str, Declared]]] = {}
    for cls in classes:
        for field in dataclasses.fields(cls):
            declaration = field.metadata.get("setting")
            if declaration is not None and declaration.via:
                found.setdefault(declaration.via, []).append((field.name, declaration))
    return found


def _typer_option(option: Option) -> Any:
    declaration = option.declaration
    names = [f"{declaration.flag}/{declaration.negative}" if declaration.negative else declaration.flag]
    if declaration.short:
        names.append(declaration.short)
    return typer.Option([] if option.multiple else None, *names, help=declaration.help, rich_help_panel=declaration.panel,
                        metavar=declaration.metavar, show_default=False)  # fmt: skip


def given_settings(options: list[Option], via: dict[str, list[tuple[str, Declared]]], values: dict[str, Any]) -> dict[str, Any]:
    """The settings the user gave on the command line (options left out are not in it)."""
    settings: dict[str, Any] = {}
    for option in options:
        value = values.get(option.parameter)
        if value is None or value == []:
            continue
        raw = value
        if option.declaration.parse is not None:
            value = option.declaration.parse(value)
        if value is not None:
            target = settings
            for key in option.path[:-1]:
                target = target.setdefault(key, {})
            target[option.path[-1]] = value
        for name, declaration in via.get(option.parameter, []):
            extra = declaration.parse(raw) if declaration.parse is not None else raw
            if extra is not None:
                settings[name] = extra
    return settings


def settings_options(command: str, *classes: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a Typer command whose last parameter is ``settings``: it gets an option per
    declared setting ``command`` takes and is called with ``settings`` = what was given."""

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        options = command_options(command, *classes)
        via = _via(classes)
        own = [p for p in inspect.signature(function, eval_str=True).parameters.values() if p.name != "settings"]
        clashes = {p.name for p in own} & {o.parameter for o in options}
        if clashes:
            raise TypeError(f"{function.__name__}: parameters {sorted(clashes)} clash with declared settings")
        generated = [
            inspect.Parameter(o.parameter, inspect.Parameter.KEYWORD_ONLY, default=_typer_option(o), annotation=o.annotation)
            for o in options
        ]
        keyword_only = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]

        @functools.wraps(function)
        def command_function(**values: Any) -> Any:
            settings = given_settings(options, via, {o.parameter: values.pop(o.parameter, None) for o in options})
            return function(**values, settings=settings)

        command_function.__signature__ = inspect.Signature([*keyword_only, *generated])  # type: ignore[attr-defined]
        command_function.__annotations__ = {p.name: p.annotation for p in [*keyword_only, *generated]}
        del command_function.__wrapped__  # Typer reads the signature above, not the function's own
        return command_function

    return decorate
