"""Recipes: YAML files that describe a set of runs, parsed into dataclasses and checked.

A recipe crosses tokenizers x datasets, with one metric list and one preprocessing
policy; a dataset entry may override parts of the policy with its own ``preprocessing``
mapping (``{name: vtbench, task: task1-varying-resolution, preprocessing: {mode: pad}}``).
``include: other.yaml`` (relative to the recipe) inherits keys, the including
file winning. Unknown keys and names are errors with suggestions.
"""

from __future__ import annotations

import difflib
import inspect
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from vtbench.errors import RecipeError, UnknownNameError, VtbenchError
from vtbench.images import Preprocessing
from vtbench.registry import Registry


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
        """``NAME`` or ``NAME:key=value,key=value`` (values read as YAML scalars), as given to
        ``--tokenizer`` / ``--dataset``; a path without ``=`` after a colon stays a name."""
        name, _, rest = text.partition(":")
        if not rest or "=" not in rest:
            return cls(text)
        options: dict[str, Any] = {}
        for pair in rest.split(","):
            key, equals, value = pair.partition("=")
            if not equals or not key.strip():
                raise RecipeError(f"{text!r}: options are key=value pairs separated by commas, got {pair!r}")
            options[key.strip()] = yaml.safe_load(value) if value.strip() else ""
        return cls(name, options)

    @classmethod
    def parse(cls, spec: Any, where: str) -> Component:
        if isinstance(spec, str):
            return cls(spec)
        if isinstance(spec, dict) and isinstance(spec.get("name"), str):
            options = {k: v for k, v in spec.items() if k not in ("name", "label", "preprocessing")}
            overrides = spec.get("preprocessing") or {}
            if not isinstance(overrides, dict):
                raise RecipeError(f"{where}: 'preprocessing' must be a mapping")
            return cls(spec["name"], options, spec.get("label"), overrides)
        raise RecipeError(f"{where}: expected a name or a mapping with 'name', got {spec!r}")


@dataclass
class Recipe:
    """A parsed recipe: every tokenizer x every dataset, with these metrics and settings."""

    tokenizers: list[Component]
    datasets: list[Component]
    metrics: list[str] = field(default_factory=lambda: ["psnr", "ssim", "bpp", "tokens"])
    name: str = "recipe"
    description: str = ""
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    batch_size: int = 8
    num_workers: int | None = None
    device: str = "auto"
    limit: int | None = None
    strict: bool = False
    save_reconstructions: bool = False
    skip_unavailable: bool = False
    use_cache: bool = True
    ocr_engine: str = "tesseract"
    compile: bool = False
    checkpoint_every: int = 10
    checkpoint_seconds: float = 30.0
    source: str | None = None

    def runs(self) -> list[Any]:
        """One :class:`~vtbench.runner.RunConfig` per (tokenizer, dataset)."""
        from vtbench.runner import RunConfig

        return [
            RunConfig(
                tokenizer=tok.name,
                tokenizer_options=tok.options,
                label=tok.label,
                dataset=data.name,
                dataset_options=data.options,
                dataset_label=data.label,
                metrics=list(self.metrics),
                preprocessing=replace(self.preprocessing, **data.preprocessing),
                batch_size=self.batch_size,
                num_workers=self.num_workers,
                device=self.device,
                limit=self.limit,
                strict=self.strict,
                save_reconstructions=self.save_reconstructions,
                skip_unavailable=self.skip_unavailable,
                use_cache=self.use_cache,
                ocr_engine=self.ocr_engine,
                compile=self.compile,
                checkpoint_every=self.checkpoint_every,
                checkpoint_seconds=self.checkpoint_seconds,
            )
            for tok in self.tokenizers
            for data in self.datasets
        ]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_KEYS = {f.name for f in fields(Recipe)} - {"source"} | {"include"}
_PREPROCESSING_KEYS = {f.name for f in fields(Preprocessing)}


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
    """Check and convert a recipe mapping; raises :class:`RecipeError` naming ``source``."""
    unknown = set(data) - _KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise RecipeError(f"{source}: unknown key {key!r}{_suggest(key, _KEYS)}")
    for required in ("tokenizers", "datasets"):
        if not data.get(required):
            raise RecipeError(f"{source}: '{required}' must list at least one name")
    values = dict(data)
    for key in ("tokenizers", "datasets"):
        if not isinstance(values[key], list):
            values[key] = [values[key]]
        values[key] = [Component.parse(spec, f"{source}: {key}[{i}]") for i, spec in enumerate(values[key])]
    metrics = values.get("metrics", Recipe.__dataclass_fields__["metrics"].default_factory())
    if isinstance(metrics, str):
        metrics = [metrics]
    if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
        raise RecipeError(f"{source}: 'metrics' must be a list of metric names")
    values["metrics"] = metrics
    values["preprocessing"] = _preprocessing(values.get("preprocessing") or {}, source)
    for i, data in enumerate(values["datasets"]):
        if data.preprocessing:
            _preprocessing({**asdict(values["preprocessing"]), **data.preprocessing}, f"{source}: datasets[{i}]")
    for key, kind in (("batch_size", int), ("checkpoint_every", int), ("limit", (int, type(None))), ("num_workers", (int, type(None)))):
        if key in values and not isinstance(values[key], kind):
            raise RecipeError(f"{source}: '{key}' must be an integer, got {values[key]!r}")
    if values.get("batch_size", 1) < 1:
        raise RecipeError(f"{source}: 'batch_size' must be at least 1")
    return Recipe(**values, source=source)


def _preprocessing(prep: Any, where: str) -> Preprocessing:
    if not isinstance(prep, dict):
        raise RecipeError(f"{where}: 'preprocessing' must be a mapping")
    bad = set(prep) - _PREPROCESSING_KEYS
    if bad:
        key = sorted(bad)[0]
        raise RecipeError(f"{where}: unknown preprocessing key {key!r}{_suggest(key, _PREPROCESSING_KEYS)}")
    try:
        return Preprocessing(**prep)
    except ValueError as exc:
        raise RecipeError(f"{where}: preprocessing: {exc}") from None


def load_recipe(path: str | Path) -> Recipe:
    """Read, include and check a recipe file (names are checked by :func:`validate_recipe`)."""
    path = Path(path)
    return parse_recipe(_read_yaml(path.resolve()), source=str(path))


def _check_options(registry: Registry, component: Component, where: str) -> None:
    from vtbench.runner import create_dataset

    if registry.kind == "datasets":  # opening a dataset lists its files: missing folders show now
        create_dataset(component.name, component.options)
        return
    entry = registry.get(component.name)
    factory = entry.load()
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(**{**entry.defaults, **component.options})
    except TypeError as exc:
        accepted = [p for p in signature.parameters if p != "self"]
        raise RecipeError(f"{where}: bad options for {component.name!r}: {exc} (accepted: {', '.join(accepted) or 'none'})") from None


def validate_recipe(recipe: Recipe) -> list[str]:
    """Check every name and option without running; returns the run names it would make."""
    from vtbench.datasets import DATASETS
    from vtbench.metrics import METRICS
    from vtbench.tokenizers import TOKENIZERS

    source = recipe.source or "<recipe>"
    try:
        for i, tok in enumerate(recipe.tokenizers):
            _check_options(TOKENIZERS, tok, f"{source}: tokenizers[{i}]")
        for i, data in enumerate(recipe.datasets):
            _check_options(DATASETS, data, f"{source}: datasets[{i}]")
        for metric in recipe.metrics:
            METRICS.get(metric)
    except UnknownNameError as exc:
        raise RecipeError(f"{source}: {exc}") from None
    except RecipeError:
        raise
    except VtbenchError as exc:
        raise RecipeError(f"{source}: {exc}") from None
    names = [run.run_name for run in recipe.runs()]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RecipeError(f"{source}: two runs would write the same record {duplicates[0]!r}; give one a 'label'")
    return names


def run_recipe(recipe: Recipe, out_dir: str | Path, progress: Any = None, restart: bool = False) -> list[dict[str, Any]]:
    """Validate, then run every (tokenizer, dataset) of the recipe; returns the records."""
    from vtbench.runner import evaluate

    validate_recipe(recipe)
    resolved = recipe.to_dict()
    return [evaluate(config, out_dir, progress=progress, restart=restart, recipe=resolved) for config in recipe.runs()]
