"""Recipes: YAML files that describe a set of runs, checked against the run settings' types.

A recipe crosses tokenizers x datasets (reconstruction runs) and generators x references
(generation runs), with the :class:`~vtbench.engine.settings.Settings` every run shares; a
dataset entry may override parts of the preprocessing with its own ``preprocessing``
mapping (``{name: vtbench, task: task1-varying-resolution, preprocessing: {mode: pad}}``).
``include: other.yaml`` (relative to the recipe) inherits keys, the including file winning.
Unknown keys, names and options are errors with suggestions.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from vtbench.engine.settings import GenerationConfig, RunConfig, Settings, SettingsError
from vtbench.errors import RecipeError, UnknownNameError, VtbenchError
from vtbench.images import Preprocessing
from vtbench.registry import Registry, check_options


@dataclass
class Component:
    """A registered name with options, e.g. ``{name: jpeg, quality: 60, label: jpeg-q60}``;
    datasets may also carry ``preprocessing`` overrides."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    label: str | None = None
    preprocessing: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_cli(cls, text: str) -> Component:
        """``NAME`` or ``NAME:key=value,key=value`` (values read as YAML scalars; ``label=``
        names the run), as given to ``--tokenizer`` / ``--dataset``; a path without ``=``
        after a colon stays a name."""
        name, _, rest = text.partition(":")
        if not rest or "=" not in rest:
            return cls(text)
        options: dict[str, Any] = {}
        for pair in rest.split(","):
            key, equals, value = pair.partition("=")
            if not equals or not key.strip():
                raise RecipeError(f"{text!r}: options are key=value pairs separated by commas, got {pair!r}")
            options[key.strip()] = yaml.safe_load(value) if value.strip() else ""
        label = options.pop("label", None)
        return cls(name, options, None if label is None else str(label))

    @classmethod
    def parse(cls, spec: Any, where: str) -> Component:
        if isinstance(spec, str):
            return cls(spec)
        if isinstance(spec, dict) and isinstance(spec.get("name"), str):
            options = {k: v for k, v in spec.items() if k not in ("name", "label", "preprocessing")}
            overrides = spec.get("preprocessing") or {}
            if not isinstance(overrides, dict):
                raise RecipeError(f"{where}: 'preprocessing' must be a mapping")
            label = spec.get("label")
            if label is not None and not isinstance(label, str):
                raise RecipeError(f"{where}: 'label' must be a string, got {label!r}")
            return cls(spec["name"], options, label, overrides)
        raise RecipeError(f"{where}: expected a name or a mapping with 'name', got {spec!r}")


@dataclass
class Recipe(Settings):
    """A parsed recipe: every tokenizer x every dataset, and every generator x every
    reference, with the shared :class:`Settings`."""

    tokenizers: list[Component] = field(default_factory=list)
    datasets: list[Component] = field(default_factory=list)
    generators: list[Component] = field(default_factory=list)
    references: list[Component] = field(default_factory=list)
    name: str = "recipe"
    description: str = ""
    source: str | None = None

    def runs(self) -> list[RunConfig | GenerationConfig]:
        """One config per (tokenizer, dataset) and per (generator, reference)."""
        settings = self.settings()
        runs: list[RunConfig | GenerationConfig] = []
        for tok in self.tokenizers:
            for data in self.datasets:
                runs.append(RunConfig(
                    tokenizer=tok.name, tokenizer_options=dict(tok.options), label=tok.label, dataset=data.name,
                    dataset_options=dict(data.options), dataset_label=data.label,
                    **{**settings, "preprocessing": replace(self.preprocessing, **data.preprocessing)},
                ))  # fmt: skip
        for gen in self.generators:
            options = dict(gen.options)
            expected = options.pop("expected_samples", None)  # a setting of the run, given beside the generator's options
            for reference in self.references:
                preprocessing = replace(self.preprocessing, **reference.preprocessing)
                runs.append(GenerationConfig(
                    generator=gen.name, generator_options=options, label=gen.label, expected_samples=expected, reference=reference.name,
                    reference_options=dict(reference.options), **{**settings, "preprocessing": preprocessing},
                ))  # fmt: skip
        return runs

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_KEYS = {f.name for f in fields(Recipe)} - {"source"} | {"include"}
_LISTS = ("tokenizers", "datasets", "generators", "references")


def _suggest(word: str, choices: set[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=3, cutoff=0.5)
    return f" (did you mean {', '.join(close)}?)" if close else f" (known keys: {', '.join(sorted(choices))})"


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if path in seen:
        raise RecipeError(f"{path}: include cycle ({' -> '.join(map(str, seen + (path,)))})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecipeError(f"{path}: recipe file not found") from None
    except IsADirectoryError:
        raise RecipeError(f"{path}: a folder, not a recipe file") from None
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe must be a YAML mapping, got {type(data).__name__}")
    include = data.pop("include", None)
    if include is None:
        return data
    base = _read_yaml((path.parent / include).resolve(), seen + (path,))
    return {**base, **data}


def parse_recipe(data: dict[str, Any], source: str = "<recipe>") -> Recipe:
    """Check and convert a recipe mapping; raises :class:`RecipeError` naming ``source`` and the key."""
    unknown = set(data) - _KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise RecipeError(f"{source}: unknown key {key!r}{_suggest(key, _KEYS)}")
    values = dict(data)
    for key in _LISTS:
        specs = values.get(key) or []
        values[key] = [
            Component.parse(spec, f"{source}: {key}[{i}]") for i, spec in enumerate(specs if isinstance(specs, list) else [specs])
        ]
    if not (values["tokenizers"] and values["datasets"]) and not (values["generators"] and values["references"]):
        raise RecipeError(f"{source}: list at least one tokenizer and one dataset, or one generator and one reference")
    if isinstance(values.get("metrics"), str):
        values["metrics"] = [values["metrics"]]
    if isinstance(values.get("shard"), str):
        raise RecipeError(f"{source}: 'shard' is a command-line setting (--shard K/N), not a recipe key")
    values["preprocessing"] = _preprocessing(values.get("preprocessing") or {}, source)
    for key in ("datasets", "references"):
        for i, item in enumerate(values[key]):
            if item.preprocessing:
                _preprocessing({**asdict(values["preprocessing"]), **item.preprocessing}, f"{source}: {key}[{i}]")
    try:
        return Recipe(**values, source=source)
    except SettingsError as exc:
        raise RecipeError(f"{source}: {exc}") from None


def _preprocessing(prep: Any, where: str) -> Preprocessing:
    if not isinstance(prep, dict):
        raise RecipeError(f"{where}: 'preprocessing' must be a mapping")
    known = {f.name for f in fields(Preprocessing)}
    bad = set(prep) - known
    if bad:
        key = sorted(bad)[0]
        raise RecipeError(f"{where}: unknown preprocessing key {key!r}{_suggest(key, known)}")
    try:
        return Preprocessing(**prep)
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"{where}: preprocessing: {exc}") from None


def load_recipe(path: str | Path) -> Recipe:
    """Read, include and check a recipe file (names are checked by :func:`validate_recipe`)."""
    path = Path(path)
    return parse_recipe(_read_yaml(path.resolve()), source=str(path))


def _check_component(registry: Registry, component: Component, where: str) -> None:
    from vtbench.engine.components import create_dataset, create_generator

    options = {k: v for k, v in component.options.items() if not (registry.kind == "generators" and k == "expected_samples")}
    if registry.kind == "datasets":  # opening a dataset lists its files: missing folders show now
        create_dataset(component.name, options)
        return
    if registry.kind == "generators" and component.name not in registry and Path(component.name).expanduser().exists():
        create_generator(component.name, options)
        return
    entry = registry.get(component.name)
    check_options(f"{where}: {registry.kind.rstrip('s')} {component.name!r}", entry.load(), options)


def validate_recipe(recipe: Recipe) -> list[str]:
    """Check every name and option without running; returns the run names it would make."""
    from vtbench.datasets import DATASETS
    from vtbench.generators import GENERATORS
    from vtbench.metrics import METRICS
    from vtbench.tokenizers import TOKENIZERS

    source = recipe.source or "<recipe>"
    try:
        for key, registry in (("tokenizers", TOKENIZERS), ("datasets", DATASETS), ("generators", GENERATORS), ("references", DATASETS)):
            for i, component in enumerate(getattr(recipe, key)):
                if key == "references" and Path(component.name).expanduser().is_file():
                    continue  # an .npz of images or statistics
                _check_component(registry, component, f"{source}: {key}[{i}]")
        for metric in recipe.metrics or []:
            METRICS.get(metric)
        names = [run.run_name for run in recipe.runs()]
    except UnknownNameError as exc:
        raise RecipeError(f"{source}: {exc}") from None
    except RecipeError:
        raise
    except VtbenchError as exc:
        raise RecipeError(f"{source}: {exc}") from None
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RecipeError(f"{source}: two runs would write the same record {duplicates[0]!r}; give one a 'label'")
    return names


def run_recipe(recipe: Recipe, out_dir: str | Path, progress: Any = None, restart: bool = False, on_skip: Any = None) -> Any:
    """Validate, then run every run of the recipe; returns the :class:`~vtbench.engine.Outcome`
    (records written, runs skipped as already done, runs that failed)."""
    from vtbench.engine import evaluate_all

    validate_recipe(recipe)
    return evaluate_all(recipe.runs(), out_dir, progress=progress, restart=restart, recipe=recipe.to_dict(), on_skip=on_skip)
