"""Run settings, declared once: each is one dataclass field with its type, default, help,
command-line flag, range and whether it is part of the run's identity.

:class:`Settings` holds how runs are made (metrics, preprocessing, batching, device,
checkpointing, ...). A reconstruction run (:class:`RunConfig`) adds a tokenizer and a
dataset; a generation run (:class:`GenerationConfig`) a generator and a reference. From the
one declaration come: the options of ``vtbench run`` and ``vtbench validate`` (and the shared
ones of ``probe`` and ``reference-stats``, see :mod:`vtbench.cli.options`), the keys a recipe
accepts, the type and range checks (a recipe value of the wrong type fails in ``vtbench
validate`` with the setting's name), and :meth:`RunConfig.identity`, which decides when a
finished record is reused and a partial run resumed. :func:`resolve` puts a protocol, a
recipe and the command line together, for every entry point. :class:`ProbeConfig` is the
AR probe's run: the shared settings it takes, and its own (training recipe, steps, seed).
"""

from __future__ import annotations

import dataclasses
import os
import re
import typing
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar

from vtbench.declaration import TASKS, declared, range_problems, setting
from vtbench.errors import VtbenchError
from vtbench.images import Preprocessing
from vtbench.typecheck import conform, describe_type

RECONSTRUCTION_METRICS = ("psnr", "ssim", "bpp", "tokens")
GENERATION_METRICS = ("fid", "sfid", "kid", "isc", "precision", "recall")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|(cuda|xpu)(:\d+)?)$")
GENERATION_PANEL = "Generation (gFID and co.)"


class SettingsError(VtbenchError):
    """Settings of the wrong type or out of range; ``problems`` names each setting, one per line."""

    def __init__(self, *problems: str) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> (K, N)."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise SettingsError(f"--shard takes K/N (e.g. 0/4 for the first of four slices), got {text!r}")
    shard = (int(match.group(1)), int(match.group(2)))
    if not 0 <= shard[0] < shard[1]:
        raise SettingsError(f"--shard {text}: K must be in 0..N-1")
    return shard


def metric_names(values: list[str]) -> list[str] | None:
    """``-m`` values -> metric names: ``psnr,ssim`` (comma lists) or ``isc:split_size=5000``."""
    names: list[str] = []
    for value in values:
        if ":" in value and "=" in value.partition(":")[2]:
            names.append(value.partition(":")[0])
        else:
            names += [name.strip() for name in value.split(",") if name.strip()]
    return names or None


def metric_options(values: list[str]) -> dict[str, dict[str, Any]] | None:
    """``-m`` values -> options by metric (``isc:split_size=5000``, read as tokenizer options are)."""
    from vtbench.recipe import Component

    options = {}
    for value in values:
        if ":" in value and "=" in value.partition(":")[2]:
            component = Component.from_cli(value)
            options[component.name] = component.options
    return options or None


def _device_problem(device: Any) -> str | None:
    if isinstance(device, str) and not DEVICE_PATTERN.match(device):
        return f"must be auto, cpu, cuda, cuda:N, mps or xpu, got {device!r}"
    return None


def _shard_problem(shard: Any) -> str | None:
    if isinstance(shard, tuple) and len(shard) == 2 and all(isinstance(v, int) for v in shard):
        index, count = shard
        if count < 1 or not 0 <= index < count:
            return f"must be K/N with 0 <= K < N, got {index}/{count}"
    return None


@dataclass(kw_only=True)
class Settings:
    """How runs are made; shared by every run of a recipe or command. Each field's
    declaration (:func:`vtbench.declaration.setting`) says what it does."""

    metrics: list[str] | None = setting(
        None, flag="--metric", short="-m", parse=metric_names,
        help="Metric, repeatable or comma-separated (-m psnr,ssim); NAME:key=value for options. `vtbench list metrics`.",
    )  # fmt: skip
    metric_options: dict[str, dict[str, Any]] = setting(
        default_factory=dict, via="metrics", parse=metric_options,
        help="Keyword arguments per metric, e.g. {isc: {split_size: 5000}} (on the command line: -m isc:split_size=5000).",
    )  # fmt: skip
    protocol: str | None = setting(
        None, flag="--protocol", short="-p", commands=("run", "validate", "reference-stats"),
        help="A paper protocol's settings as the starting point (`vtbench list protocols`); recorded with the numbers.",
    )  # fmt: skip
    preprocessing: Preprocessing = setting(
        default_factory=Preprocessing, commands=("run", "validate", "probe", "reference-stats"),
        help="How images reach the evaluation size: resolution, mode, filter (see the Preprocessing options).",
    )  # fmt: skip
    batch_size: int = setting(
        8, flag="--batch-size", short="-b", minimum=1, maximum=65536, identity=False,
        commands=("run", "validate", "probe", "reference-stats"),
        help="Images per batch (default 8); the numbers do not depend on it.",
    )  # fmt: skip
    num_workers: int | None = setting(
        None, flag="--workers", minimum=0, maximum=256, identity=False, commands=("run", "validate", "reference-stats"),
        help="DataLoader worker processes (default: half the CPUs, 1 to 4; none for in-memory arrays on a CPU).",
    )  # fmt: skip
    device: str = setting(
        "auto", flag="--device", check=_device_problem, identity=False, commands=("run", "validate", "probe", "reference-stats"),
        help="auto (CUDA when present), cpu, cuda, cuda:N, mps or xpu.",
    )  # fmt: skip
    limit: int | None = setting(
        None, flag="--limit", minimum=1, commands=("run", "validate", "probe", "reference-stats"),
        help="Evaluate only the first N images of each dataset.",
    )  # fmt: skip
    strict: bool = setting(
        False, flag="--strict", negative="--no-strict", identity=False,
        help="Fail on the first bad image instead of recording it (a finished run's numbers are the same either way).",
    )  # fmt: skip
    save_reconstructions: bool = setting(
        False, flag="--save-reconstructions", negative="--no-save-reconstructions",
        help="Write each reconstruction as OUT/RUN.recon/ID.png; a generation run's samples as OUT/RUN.samples/N.png and "
        "OUT/RUN.samples.npz (ADM layout).",
    )  # fmt: skip
    skip_unavailable: bool = setting(
        False, flag="--skip-unavailable", negative="--no-skip-unavailable",
        help="Record metrics whose weights are missing as not computed (rerun once they are here: the run is redone).",
    )  # fmt: skip
    ocr_engine: str = setting("tesseract", flag="--ocr-engine", help="OCR engine for text metrics (default tesseract). `vtbench list ocr`.")
    compile: bool = setting(
        False, flag="--compile", negative="--no-compile", help="torch.compile network tokenizers (recorded in the record)."
    )
    use_cache: bool = setting(
        True, flag="--cache", negative="--no-cache", identity=False, commands=("run", "validate", "probe", "reference-stats"),
        help="Read and write the content-keyed cache of reference features (and of a probe's ids).",
    )  # fmt: skip
    checkpoint_every: int = setting(1, flag="--checkpoint-every", minimum=1, identity=False, help="Least batches between checkpoints.")
    checkpoint_seconds: float = setting(
        30.0, flag="--checkpoint-seconds", minimum=0, identity=False, help="Least time between checkpoints, seconds (default 30)."
    )
    shard: tuple[int, int] | None = setting(
        None, flag="--shard", parse=parse_shard, check=_shard_problem, identity=False, recipe=False, metavar="K/N",
        help="K/N: evaluate only the K-th (0-based) of N slices, for job arrays; `vtbench merge` joins them.",
    )  # fmt: skip
    stored_statistics: bool = setting(
        True, flag="--stored-statistics", negative="--computed-statistics", tasks=("generation",), panel=GENERATION_PANEL,
        help="Generation against an ADM batch: FID/sFID from its stored mu/sigma (default, as the ADM evaluator) or from its images.",
    )  # fmt: skip
    expected_samples: int | None = setting(
        None, flag="--expected-samples", minimum=1, tasks=("generation",), panel=GENERATION_PANEL,
        help="Fail unless the generator yields exactly this many samples.",
    )  # fmt: skip

    def __post_init__(self) -> None:
        problems = check_types(self) + range_problems(self)
        if problems:
            raise SettingsError(*problems)

    def settings(self) -> dict[str, Any]:
        """The :class:`Settings` fields of this object."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(Settings)}


@dataclass(kw_only=True)
class _Run(Settings):
    """What every run adds to the settings: a task, default metrics and a file-safe name."""

    task: ClassVar[str] = ""
    default_metrics: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.metrics is None:
            self.metrics = list(self.default_metrics)

    @property
    def subject_name(self) -> str:
        raise NotImplementedError

    @property
    def dataset_name(self) -> str:
        raise NotImplementedError

    @property
    def run_name(self) -> str:
        """File-name-safe ``SUBJECT__DATASET`` (tokenizer or generator, dataset or reference): the records' stem."""
        return safe_name(f"{self.subject_name}__{self.dataset_name}")

    def _fields(self) -> list[dataclasses.Field]:
        """The fields that apply to this run's task."""
        settings = declared(self)
        return [f for f in dataclasses.fields(self) if f.name not in settings or self.task in settings[f.name].tasks]

    def to_dict(self) -> dict[str, Any]:
        """The run's settings and components, as the record stores them (``config``)."""
        return {**{f.name: _plain(getattr(self, f.name)) for f in self._fields()}, "task": self.task}

    def identity(self) -> dict[str, Any]:
        """Every field that decides the numbers (all but those declared ``identity=False``):
        partial state or a finished record is reused only when these match."""
        return {"task": self.task, **declared_identity(self, self._fields())}


def declared_identity(settings: Any, fields: list[dataclasses.Field] | None = None) -> dict[str, Any]:
    """The values of ``fields`` (default: all) of a settings dataclass that are part of its
    identity: every field but those declared ``identity=False``, nested settings (the
    preprocessing) field by field."""
    declarations = declared(settings)
    identity = {}
    for f in fields if fields is not None else dataclasses.fields(settings):
        if f.name in declarations and not declarations[f.name].identity:
            continue
        value = getattr(settings, f.name)
        identity[f.name] = declared_identity(value) if dataclasses.is_dataclass(value) and not isinstance(value, type) else _plain(value)
    return identity


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return list(value) if isinstance(value, tuple) else value


@dataclass
class RunConfig(_Run):
    """One reconstruction run: a tokenizer over a dataset, with the :class:`Settings`."""

    tokenizer: str
    dataset: str
    tokenizer_options: dict[str, Any] = field(default_factory=dict)
    dataset_options: dict[str, Any] = field(default_factory=dict)
    label: str | None = None
    dataset_label: str | None = None

    task: ClassVar[str] = "reconstruction"
    default_metrics: ClassVar[tuple[str, ...]] = RECONSTRUCTION_METRICS

    @property
    def subject_name(self) -> str:
        return self.label or self.tokenizer

    @property
    def dataset_name(self) -> str:
        """The dataset's short name: its label, or a folder's own name rather than its path."""
        if self.dataset_label:
            return self.dataset_label
        if self.dataset in ("folder", "annotated") and self.dataset_options.get("root"):
            return Path(self.dataset_options["root"]).name
        return Path(self.dataset).name if ("/" in self.dataset or os.sep in self.dataset) else self.dataset


@dataclass
class GenerationConfig(_Run):
    """One generation run: a generator's samples against a reference (a dataset, an
    ``.npz`` of images, or a ``mu``/``sigma`` statistics file), with the :class:`Settings`."""

    generator: str
    reference: str
    generator_options: dict[str, Any] = field(default_factory=dict)
    reference_options: dict[str, Any] = field(default_factory=dict)
    label: str | None = None

    task: ClassVar[str] = "generation"
    default_metrics: ClassVar[tuple[str, ...]] = GENERATION_METRICS

    @property
    def subject_name(self) -> str:
        from vtbench.generators import GENERATORS

        return self.label or (Path(self.generator).stem if self.generator not in GENERATORS else self.generator)

    @property
    def dataset_name(self) -> str:
        return Path(self.reference).stem if ("/" in self.reference or self.reference.endswith(".npz")) else self.reference


CONFIGS: dict[str, type[_Run]] = {"reconstruction": RunConfig, "generation": GenerationConfig}


def resolve(task: str, *layers: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of a ``task`` run, as keyword arguments for its config, from ``layers``
    given in order of precedence (a recipe's keys, then the command line's options, then a
    component's own overrides): a later layer wins over an earlier one, and the protocol that
    the last layer naming one names sits under all of them. ``preprocessing`` merges key by
    key, ``metric_options`` metric by metric; ``None`` means "not given"; settings of the
    other task are dropped. A generation run without a resize mode keeps its samples' size
    (``none``) unless a resolution is given (``center-crop`` to it)."""
    from vtbench import protocols

    if task not in TASKS:
        raise SettingsError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    layers = tuple(dict(layer) for layer in layers)
    name = next((layer["protocol"] for layer in reversed(layers) if layer.get("protocol") is not None), None)
    base: dict[str, Any] = {}
    if name is not None:
        protocol = protocols.get(str(name))
        if protocol.task != task:
            raise SettingsError(f"protocol {name!r} is for {protocol.task} runs, not {task} runs")
        base = {**protocol.settings, "protocol": name}
    known = declared(Settings)
    merged: dict[str, Any] = {}
    for layer in (base, *layers):
        for key, value in layer.items():
            if value is None:
                continue
            if key == "preprocessing":
                value = _plain(value)
                if not isinstance(value, dict):
                    raise SettingsError(f"setting 'preprocessing' must be a mapping, got {value!r}")
                merged[key] = {**merged.get(key, {}), **value}
            elif key == "metric_options" and isinstance(value, dict):
                merged[key] = {**merged.get(key, {}), **value}
            else:
                merged[key] = value
    merged = {k: v for k, v in merged.items() if k not in known or task in known[k].tasks}
    # a protocol's options, for the metrics the run computes (a malformed value is left to the type check)
    if base.get("metric_options") and merged.get("metrics") is not None and isinstance(merged.get("metric_options"), dict):
        given = {name for layer in layers if isinstance(layer.get("metric_options"), dict) for name in layer["metric_options"]}
        merged["metric_options"] = {k: v for k, v in merged["metric_options"].items() if k in merged["metrics"] or k in given}
    if task == "generation":
        preprocessing = merged.setdefault("preprocessing", {})
        if "mode" not in preprocessing:
            preprocessing["mode"] = "center-crop" if preprocessing.get("resolution") else "none"
    return merged


def safe_name(text: str) -> str:
    """A file-name-safe version of ``text`` (letters, digits and ``._=+-``; no leading dot)."""
    return re.sub(r"[^A-Za-z0-9._=+-]", "_", text).lstrip(".") or "_"


def check_types(settings: Any) -> list[str]:
    """Check (and losslessly convert) every dataclass field of ``settings`` against its type
    hint; returns one problem per field that does not fit."""
    hints = typing.get_type_hints(type(settings))
    problems = []
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        try:
            ok, converted = conform(value, hints[f.name])
        except ValueError as exc:  # a mapping that does not make the dataclass (preprocessing)
            problems.append(str(exc))
            continue
        if not ok:
            problems.append(f"setting {f.name!r} must be {describe_type(hints[f.name])}, got {value!r}")
        elif converted is not value:
            object.__setattr__(settings, f.name, converted)
    return problems


# -- the AR probe (`vtbench probe`) ----------------------------------------------------------
PROBE_PANEL = "Probe"


@dataclass(frozen=True)
class ProbeRecipe:
    """A fixed training recipe: model size, steps and optimizer."""

    name: str
    width: int
    depth: int
    heads: int
    steps: int
    batch_size: int
    learning_rate: float
    weight_decay: float = 0.05
    warmup_steps: int = 50
    eval_every: int = 100
    seed: int = 0


RECIPES = {
    "tiny": ProbeRecipe("tiny", width=128, depth=2, heads=4, steps=400, batch_size=16, learning_rate=3e-3, warmup_steps=40, eval_every=100),
    "small": ProbeRecipe("small", width=384, depth=6, heads=6, steps=5000, batch_size=32, learning_rate=1e-3, eval_every=500),
    "gpt-b": ProbeRecipe(
        "gpt-b", width=768, depth=12, heads=12, steps=20000, batch_size=64, learning_rate=4e-4, warmup_steps=1000, eval_every=2000
    ),  # fmt: skip
}


@dataclass(kw_only=True)
class ProbeConfig(Settings):
    """One probe: a discrete tokenizer's ids over a dataset, and the training recipe. The
    shared settings it takes (``preprocessing``, ``batch_size``, ``device``, ``limit``,
    ``use_cache``) are the run settings' declarations (``commands`` includes ``probe``)."""

    tokenizer: str
    dataset: str
    tokenizer_options: dict[str, Any] = field(default_factory=dict)
    dataset_options: dict[str, Any] = field(default_factory=dict)
    recipe: str = setting("tiny", flag="--recipe", choices=tuple(RECIPES), commands=("probe",), panel=PROBE_PANEL,
                          help="tiny (CPU, minutes), small, or gpt-b (GPU).")  # fmt: skip
    steps: int | None = setting(None, flag="--steps", minimum=1, commands=("probe",), panel=PROBE_PANEL,
                                help="Training steps (default: the recipe's).")  # fmt: skip
    seed: int | None = setting(None, flag="--seed", minimum=0, commands=("probe",), panel=PROBE_PANEL,
                               help="Seed of the initialisation and the batches (default: the recipe's, 0).")  # fmt: skip

    @property
    def run_name(self) -> str:
        return f"{self.tokenizer}__{Path(self.dataset).name or self.dataset}"

    def training(self) -> ProbeRecipe:
        """The training recipe with this probe's steps and seed."""
        return replace(RECIPES[self.recipe], **{k: v for k, v in {"steps": self.steps, "seed": self.seed}.items() if v is not None})

    def identity(self) -> dict[str, Any]:
        """What a partial probe must match to be resumed (the data's content is added to it)."""
        return declared_identity(self, [f for f in fields(self) if f.name in PROBE_FIELDS])


PROBE_FIELDS = ("tokenizer", "dataset", "tokenizer_options", "dataset_options", "preprocessing", "limit", "recipe", "steps", "seed")
