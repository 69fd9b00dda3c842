"""Recipes: YAML files that describe a set of runs, checked against the run settings' types.

A recipe crosses tokenizers x datasets (reconstruction runs) and generators x references
(generation runs), with the :class:`~vtbench.settings.Settings` every run shares (its keys
are the settings declared with ``recipe=True``); a
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

from vtbench.declaration import declared
from vtbench.errors import RecipeError, VtbenchError
from vtbench.images import Preprocessing
from vtbench.registry import Registry, check_options
from vtbench.settings import GenerationConfig, RunConfig, Settings, SettingsError, resolve


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
            try:
                options[key.strip()] = yaml.safe_load(value) if value.strip() else ""
            except yaml.YAMLError as exc:
                problem = str(getattr(exc, "problem", None) or exc).splitlines()[0]
                raise RecipeError(f"{text!r}: the value of {key.strip()!r} is not a YAML value ({problem})") from None
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
    reference. Its :class:`Settings` fields are the recipe's settings resolved (its protocol
    with its own keys on top); ``given`` keeps the keys it gave, so that command-line options
    resolve on top of them (:meth:`runs`)."""

    tokenizers: list[Component] = field(default_factory=list)
    datasets: list[Component] = field(default_factory=list)
    generators: list[Component] = field(default_factory=list)
    references: list[Component] = field(default_factory=list)
    name: str = "recipe"
    description: str = ""
    source: str | None = None
    given: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, given: dict[str, Any], components: dict[str, list[Component]], **about: Any) -> Recipe:
        """A recipe from its given settings and components: the settings resolved for the task
        of its runs (reconstruction when it has any), checked by type and range."""
        task = "reconstruction" if components.get("tokenizers") or not components.get("generators") else "generation"
        settings = resolve(task, given)
        for key in ("stored_statistics", "expected_samples"):  # the generation settings of a recipe that also makes them
            if key in given and key not in settings:
                settings[key] = given[key]
        return cls(**settings, **components, **about, given=dict(given))

    @property
    def tasks(self) -> list[str]:
        return [task for task, present in (("reconstruction", self.tokenizers and self.datasets),
                                            ("generation", self.generators and self.references)) if present]  # fmt: skip

    def settings_for(self, task: str, overrides: dict[str, Any] | None = None, *component: dict[str, Any]) -> dict[str, Any]:
        """The settings of this recipe's ``task`` runs with command-line ``overrides`` (and a
        component's own layer) on top."""
        return resolve(task, self.given, overrides or {}, *component)

    def runs(self, overrides: dict[str, Any] | None = None) -> list[RunConfig | GenerationConfig]:
        """One config per (tokenizer, dataset) and per (generator, reference), with the
        command line's ``overrides`` on top of the recipe's settings."""
        runs: list[RunConfig | GenerationConfig] = []
        for tok in named_apart(self.tokenizers):
            for data in named_apart(self.datasets):
                settings = self.settings_for("reconstruction", overrides, {"preprocessing": data.preprocessing})
                runs.append(RunConfig(tokenizer=tok.name, tokenizer_options=dict(tok.options), label=tok.label, dataset=data.name,
                                      dataset_options=dict(data.options), dataset_label=data.label, **settings))  # fmt: skip
        for gen in named_apart(self.generators):
            options = dict(gen.options)
            expected = options.pop("expected_samples", None)  # a setting of the run, given beside the generator's options
            for reference in self.references:
                layer = {"preprocessing": reference.preprocessing, "expected_samples": expected}
                settings = self.settings_for("generation", overrides, layer)
                runs.append(GenerationConfig(generator=gen.name, generator_options=options, label=gen.label, reference=reference.name,
                                             reference_options=dict(reference.options), **settings))  # fmt: skip
        return runs

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("given")
        return data


def named_apart(components: list[Component]) -> list[Component]:
    """``components`` with a label made from the options (``jpeg:quality=30`` ->
    ``jpeg-quality=30``) for each unlabelled one that shares its name with another of other
    options, so two variants of one tokenizer write two records without ``label=``."""
    import re

    variants: dict[str, set[str]] = {}
    for component in components:
        if component.label is None:
            variants.setdefault(component.name, set()).add(repr(sorted(component.options.items())))
    out = []
    for component in components:
        if component.label is None and component.options and len(variants.get(component.name, ())) > 1:
            options = "-".join(f"{key}={value}" for key, value in sorted(component.options.items()))
            label = re.sub(r"[^A-Za-z0-9._=+-]", "_", f"{Path(component.name).name}-{options}")
            component = replace(component, label=label)
        out.append(component)
    return out


RECIPE_SETTINGS = {name for name, declaration in declared(Settings).items() if declaration.recipe}
_LISTS = ("tokenizers", "datasets", "generators", "references")
_KEYS = RECIPE_SETTINGS | set(_LISTS) | {"name", "description", "include"}
_COMMAND_LINE_ONLY = {name: declaration.flag for name, declaration in declared(Settings).items() if not declaration.recipe}


def _suggest(word: str, choices: set[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=3, cutoff=0.5)
    return f" (did you mean {', '.join(close)}?)" if close else f" (known keys: {', '.join(sorted(choices))})"


MAX_ALIASES = 100  # YAML aliases a recipe may use: enough to share option mappings
MAX_DEPTH = 32
MAX_VALUES = 100_000  # values a recipe holds with every alias expanded: a "billion laughs" file is refused before it is built


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing more than ``MAX_ALIASES`` aliases and nesting deeper than
    ``MAX_DEPTH`` before anything is built (so neither a billion-laughs file nor a deep one
    can exhaust memory or the stack)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.aliases = 0
        self.depth = 0

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        sizes: dict[int, int] = {}

        def expanded(item: Any) -> int:  # aliases are the same node object: each counted once, multiplied by its uses
            if id(item) not in sizes:
                children = item.value if isinstance(item.value, list) else []
                parts = [part for child in children for part in (child if isinstance(child, tuple) else (child,))]
                sizes[id(item)] = 1 + sum(expanded(part) for part in parts)
            return sizes[id(item)]

        if expanded(node) > MAX_VALUES:
            raise RecipeError(f"more than {MAX_VALUES:,} values once its aliases are expanded: not a recipe")
        return self.construct_document(node)

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise RecipeError(f"more than {MAX_ALIASES} YAML aliases: not a recipe")
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise RecipeError(f"nested more than {MAX_DEPTH} levels deep: not a recipe")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if path in seen:
        raise RecipeError(f"{path}: include cycle ({' -> '.join(map(str, seen + (path,)))})")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader, bounded
    except RecursionError:
        raise RecipeError(f"{path}: nested too deeply to be a recipe") from None
    except RecipeError as exc:  # the loader's bounds
        raise RecipeError(f"{path}: {exc}") from None
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
    if not isinstance(include, str):
        raise RecipeError(f"{path}: 'include' must be one recipe file's name, got {include!r}")
    base = _read_yaml((path.parent / include).resolve(), seen + (path,))
    return {**base, **data}


def parse_recipe(data: dict[str, Any], source: str = "<recipe>") -> Recipe:
    """Check and convert a recipe mapping; raises :class:`RecipeError` naming ``source`` and
    the key of every problem found, one per line."""
    problems: list[str] = []
    for key in sorted(set(data) - _KEYS):
        if key in _COMMAND_LINE_ONLY:
            problems.append(f"{source}: {key!r} is a command-line setting ({_COMMAND_LINE_ONLY[key]}), not a recipe key")
        else:
            problems.append(f"{source}: unknown key {key!r}{_suggest(key, _KEYS)}")
    components: dict[str, list[Component]] = {}
    for key in _LISTS:
        specs = data.get(key) or []
        components[key] = []
        for i, spec in enumerate(specs if isinstance(specs, list) else [specs]):
            try:
                components[key].append(Component.parse(spec, f"{source}: {key}[{i}]"))
            except RecipeError as exc:
                problems.append(str(exc))
    has_runs = (components["tokenizers"] and components["datasets"]) or (components["generators"] and components["references"])
    if not has_runs and not problems:
        problems.append(f"{source}: list at least one tokenizer and one dataset, or one generator and one reference")
    given = {k: v for k, v in data.items() if k in RECIPE_SETTINGS}
    if isinstance(given.get("metrics"), str):
        given["metrics"] = [given["metrics"]]
    try:
        _preprocessing(given.get("preprocessing") or {}, source)  # checked here; the keys given stay as given
    except RecipeError as exc:
        problems.append(str(exc))
        given.pop("preprocessing")
    for key in ("datasets", "references"):
        for i, item in enumerate(components[key]):
            if item.preprocessing:
                try:
                    _preprocessing({**given.get("preprocessing", {}), **item.preprocessing}, f"{source}: {key}[{i}]")
                except RecipeError as exc:
                    problems.append(str(exc))
    about = {"name": data.get("name", "recipe"), "description": data.get("description", ""), "source": source}
    recipe = None
    try:
        recipe = Recipe.build(given, components, **about)
    except SettingsError as exc:
        problems += [f"{source}: {problem}" for problem in exc.problems]
    except VtbenchError as exc:  # an unknown protocol
        problems.append(f"{source}: {exc}")
    if problems or recipe is None:
        raise all_problems(problems)
    return recipe


def all_problems(problems: list[str]) -> RecipeError:
    """One error for every problem: a single line, or a count and one indented line each."""
    if len(problems) == 1:
        return RecipeError(problems[0])
    return RecipeError(f"{len(problems)} problems:\n" + "\n".join(f"  {problem}" for problem in problems))


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


def recipe_problems(
    recipe: Recipe, check_weights: bool = True, overrides: dict[str, Any] | None = None
) -> tuple[list[str], list[str], list[str]]:
    """Every problem of a recipe at once, without running it: (the run names it would make,
    problems, notes), with the command line's ``overrides`` on top of its settings. With
    ``check_weights``, weights files the runs need and cannot get are problems (each with its
    fix) and files a run would download are notes."""
    from vtbench.datasets import DATASETS
    from vtbench.generators import GENERATORS
    from vtbench.metrics import METRICS
    from vtbench.tokenizers import TOKENIZERS

    source = recipe.source or "<recipe>"
    problems: list[str] = []

    def problem(exc: VtbenchError) -> None:
        problems.append(str(exc) if isinstance(exc, RecipeError) else f"{source}: {exc}")

    for key, registry in (("tokenizers", TOKENIZERS), ("datasets", DATASETS), ("generators", GENERATORS), ("references", DATASETS)):
        for i, component in enumerate(getattr(recipe, key)):
            if key == "references" and Path(component.name).expanduser().is_file():
                continue  # an .npz of images or statistics
            try:
                _check_component(registry, component, f"{key}[{i}]")  # problem() adds the source
            except VtbenchError as exc:
                problem(exc)
    try:
        runs = recipe.runs(overrides)
    except SettingsError as exc:
        problems += [f"{source}: {message}" for message in exc.problems]
        return [], problems, []
    except VtbenchError as exc:
        problem(exc)
        return [], problems, []
    for metric in dict.fromkeys(name for run in runs for name in run.metrics):
        try:
            METRICS.get(metric)
        except VtbenchError as exc:
            problem(exc)
    for metric, options in {name: o for run in runs for name, o in run.metric_options.items()}.items():
        try:
            check_options(f"metric_options: metric {metric!r}", METRICS.get(metric).load(), options)
        except VtbenchError as exc:
            problem(exc)
    if problems:
        return [], problems, []
    names = [run.run_name for run in runs]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{source}: two runs would write the same record {name!r}; give one a 'label'")
    notes: list[str] = []
    if check_weights:
        missing, downloads = missing_weights([run for run in runs if not run.skip_unavailable])
        problems += [f"{source}: {reason}" for reason in missing]
        notes += downloads
        skipped, _ = missing_weights([run for run in runs if run.skip_unavailable])
        notes += [f"{reason.split(': ', 1)[0]} will be recorded as not computed (skip_unavailable): {reason.split(': ', 1)[-1]}"
                  for reason in skipped]  # fmt: skip
    return names, problems, notes


def missing_weights(runs: list[Any]) -> tuple[list[str], list[str]]:
    """The weights files ``runs`` need that are not here: (those a run cannot get, each with
    its fix; those a run would download). Tokenizer checkpoints of the weights store and every
    metric's files are checked; hub models are found when the run loads them."""
    from vtbench import weights as store
    from vtbench.engine.components import create_metrics, weights_of
    from vtbench.tokenizers import TOKENIZERS

    users: dict[str, list[str]] = {}
    for run in runs:
        tokenizer = getattr(run, "tokenizer", None)
        if tokenizer and tokenizer in TOKENIZERS:
            options = {**TOKENIZERS.get(tokenizer).defaults, **run.tokenizer_options}
            checkpoint = options.get("checkpoint")
            if isinstance(checkpoint, str) and checkpoint in store.WEIGHTS and not options.get("weights"):
                users.setdefault(checkpoint, []).append(f"tokenizer {tokenizer}")
        for name, metric in create_metrics(run.metrics, run.metric_options).items():
            for weights_name in weights_of(metric):
                users.setdefault(weights_name, []).append(f"metric {name}")
    missing, downloads = [], []
    for weights_name, used_by in users.items():
        try:
            store.locate(weights_name, fetch=False)
        except store.WeightsUnavailableError as exc:
            entry = store.get(weights_name)
            who = ", ".join(dict.fromkeys(used_by))
            absent = "not on this machine" in str(exc)
            if absent and not store.offline() and not entry.manual and not entry.package and entry.url:
                downloads.append(f"{entry.filename} ({entry.size_mb:.0f} MB, for {who}) will be downloaded on first use")
            else:
                missing.append(f"{who}: {exc}")
    return missing, downloads


def validate_recipe(recipe: Recipe, check_weights: bool = False, overrides: dict[str, Any] | None = None) -> list[str]:
    """Check every name and option without running; returns the run names it would make.
    Raises :class:`RecipeError` listing every problem, one per line."""
    names, problems, _ = recipe_problems(recipe, check_weights, overrides)
    if problems:
        raise all_problems(problems)
    return names


def run_recipe(recipe: Recipe, out_dir: str | Path, progress: Any = None, restart: bool = False, on_skip: Any = None,
               overrides: dict[str, Any] | None = None) -> Any:  # fmt: skip
    """Validate, then run every run of the recipe (with the command line's ``overrides`` on
    top of its settings); returns the :class:`~vtbench.engine.Outcome` (records written, runs
    skipped as already done, runs that failed)."""
    from vtbench.engine import evaluate_all

    validate_recipe(recipe, overrides=overrides)
    runs = recipe.runs(overrides)
    about = {**recipe.to_dict(), **(runs[0].settings() if runs else {})}  # the recipe as its runs were made
    return evaluate_all(runs, out_dir, progress=progress, restart=restart, recipe=about, on_skip=on_skip)
