"""Settings as declared dataclass fields: each field carries its help text, command-line flag,
range and whether it is part of a run's identity, so the CLI options, the recipe keys, the
range checks and the identity are all derived from the one declaration.

>>> from dataclasses import dataclass
>>> @dataclass
... class Demo:
...     batch_size: int = setting(8, help="Images per batch.", flag="--batch-size", minimum=1, identity=False)
>>> declared(Demo)["batch_size"].flag
'--batch-size'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import MISSING, dataclass
from typing import Any

TASKS = ("reconstruction", "generation")
RUN_PANEL = "Run settings (override the recipe)"


@dataclass(frozen=True)
class Declared:
    """What one setting is, besides its type and default (which the dataclass field holds).

    flag / short / negative: the command-line option (``--strict``, ``-b``, the off switch
        ``--no-strict`` of a boolean); ``via``: the name of another setting whose option also
        sets this one (``metric_options`` comes with ``--metric psnr:key=value``).
    minimum / maximum / choices / check: the range (``check`` returns a problem or None); ``parse``
        turns the option's text into the value.
    identity: whether a different value makes a different run (a finished record with
        another value is not reused, a partial run with another value is not resumed).
        ``False`` is for settings that cannot change a number: batch size, workers, device,
        checkpoint timing, the cache.
    tasks: the run kinds the setting applies to; ``recipe``: whether a recipe may set it;
    commands: the CLI commands that take it as an option.
    """

    help: str
    flag: str | None = None
    short: str | None = None
    negative: str | None = None
    via: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    check: Callable[[Any], str | None] | None = None
    parse: Callable[[Any], Any] | None = None
    identity: bool = True
    tasks: tuple[str, ...] = TASKS
    recipe: bool = True
    commands: tuple[str, ...] = ("run", "validate")
    panel: str = RUN_PANEL
    metavar: str | None = None


def setting(default: Any = MISSING, *, default_factory: Any = MISSING, **declaration: Any) -> Any:
    """A dataclass field declared as a setting (see :class:`Declared` for the keywords)."""
    metadata = {"setting": Declared(**declaration)}
    if default_factory is not MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def declared(cls: Any) -> dict[str, Declared]:
    """Field name -> declaration, for every declared setting of a dataclass (or instance)."""
    return {f.name: f.metadata["setting"] for f in dataclasses.fields(cls) if "setting" in f.metadata}


def range_problems(settings: Any) -> list[str]:
    """One problem per declared setting of ``settings`` whose value is out of its range."""
    problems = []
    for name, declaration in declared(settings).items():
        value = getattr(settings, name)
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if declaration.minimum is not None and number and value < declaration.minimum:
            minimum = int(declaration.minimum) if float(declaration.minimum).is_integer() else declaration.minimum
            problems.append(f"setting {name!r} must be at least {minimum}, got {value}")
        if declaration.maximum is not None and number and value > declaration.maximum:
            maximum = int(declaration.maximum) if float(declaration.maximum).is_integer() else declaration.maximum
            problems.append(f"setting {name!r} must be at most {maximum}, got {value}")
        if declaration.choices is not None and isinstance(value, str) and value not in declaration.choices:
            problems.append(f"setting {name!r} must be one of {', '.join(declaration.choices)}, got {value!r}")
        problem = declaration.check(value) if declaration.check is not None and value is not None else None
        if problem:
            problems.append(f"setting {name!r} {problem}")
    return problems
