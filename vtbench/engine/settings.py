"""Run settings, declared once: the CLI, recipes and the Python API all build these.

:class:`Settings` holds how runs are made (metrics, preprocessing, batching, device,
checkpointing, ...). A reconstruction run (:class:`RunConfig`) adds a tokenizer and a
dataset; a generation run (:class:`GenerationConfig`) a generator and a reference; a
recipe (:class:`vtbench.recipe.Recipe`) adds lists of those. Every field is checked
against its type when the object is made, so a recipe value of the wrong type fails in
``vtbench validate`` with the setting's name, never later in ``vtbench run``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from vtbench.errors import VtbenchError
from vtbench.images import Preprocessing
from vtbench.typecheck import conform, describe_type

RECONSTRUCTION_METRICS = ("psnr", "ssim", "bpp", "tokens")
GENERATION_METRICS = ("fid", "sfid", "kid", "isc", "precision", "recall")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|(cuda|xpu)(:\d+)?)$")


class SettingsError(VtbenchError):
    """Settings of the wrong type or out of range; ``problems`` names each setting, one per line."""

    def __init__(self, *problems: str) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


@dataclass(kw_only=True)
class Settings:
    """How runs are made; shared by every run of a recipe or command.

    metrics: metric names; ``None`` is the task's default (reconstruction: psnr, ssim, bpp,
        tokens; generation: fid, sfid, kid, isc, precision, recall).
    checkpoint_every / checkpoint_seconds: partial state is saved when both this many
        batches and this many seconds have passed since the last save (and on Ctrl-C).
    shard: ``(K, N)``: evaluate only the K-th of N deterministic slices (0-based), for job
        arrays; ``vtbench merge`` combines the slices into one record.
    metric_options: keyword arguments per metric, e.g. ``{"isc": {"split_size": 5000}}``.
    protocol: the name of the protocol preset (``vtbench list protocols``) the settings came
        from; recorded with the numbers.
    """

    metrics: list[str] | None = None
    metric_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    protocol: str | None = None
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    batch_size: int = 8
    num_workers: int | None = None
    device: str = "auto"
    limit: int | None = None
    strict: bool = False
    save_reconstructions: bool = False
    skip_unavailable: bool = False
    ocr_engine: str = "tesseract"  # reads text regions for text metrics (cer, wer, t-ned, t-acc, ...)
    compile: bool = False  # torch.compile a network tokenizer's encoder and decoder
    use_cache: bool = True  # originals'/reference features from / into the content-keyed cache
    checkpoint_every: int = 1
    checkpoint_seconds: float = 30.0
    shard: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        problems = check_types(self) + check_ranges(self)
        if problems:
            raise SettingsError(*problems)

    def settings(self) -> dict[str, Any]:
        """The :class:`Settings` fields of this object (what a recipe passes on to each run)."""
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

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "preprocessing": asdict(self.preprocessing), "task": self.task}


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

    def identity(self) -> dict[str, Any]:
        """The fields that must match for partial state or a finished record to be reused."""
        return {
            "task": self.task,
            "tokenizer": self.tokenizer,
            "tokenizer_options": self.tokenizer_options,
            "dataset": self.dataset,
            "dataset_options": self.dataset_options,
            "dataset_label": self.dataset_label,
            "metrics": self.metrics,
            "metric_options": self.metric_options,
            "protocol": self.protocol,
            "preprocessing": asdict(self.preprocessing),
            "limit": self.limit,
            "ocr_engine": self.ocr_engine,
            "shard": list(self.shard) if self.shard else None,
        }


@dataclass
class GenerationConfig(_Run):
    """One generation run: a generator's samples against a reference (a dataset, an
    ``.npz`` of images, or a ``mu``/``sigma`` statistics file), with the :class:`Settings`."""

    generator: str
    reference: str
    generator_options: dict[str, Any] = field(default_factory=dict)
    reference_options: dict[str, Any] = field(default_factory=dict)
    label: str | None = None
    expected_samples: int | None = None
    stored_statistics: bool = True  # an ADM reference batch's own mu/sigma (mu_s/sigma_s) for FID (sFID), as the ADM evaluator

    task: ClassVar[str] = "generation"
    default_metrics: ClassVar[tuple[str, ...]] = GENERATION_METRICS

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.expected_samples is not None and self.expected_samples < 1:
            raise SettingsError(f"setting 'expected_samples' must be at least 1, got {self.expected_samples}")

    @property
    def subject_name(self) -> str:
        from vtbench.generators import GENERATORS

        return self.label or (Path(self.generator).stem if self.generator not in GENERATORS else self.generator)

    @property
    def dataset_name(self) -> str:
        return Path(self.reference).stem if ("/" in self.reference or self.reference.endswith(".npz")) else self.reference

    def identity(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "generator": self.generator,
            "generator_options": self.generator_options,
            "reference": self.reference,
            "reference_options": self.reference_options,
            "metrics": self.metrics,
            "metric_options": self.metric_options,
            "protocol": self.protocol,
            "stored_statistics": self.stored_statistics,
            "preprocessing": asdict(self.preprocessing),
            "limit": self.limit,
            "expected_samples": self.expected_samples,
            "shard": list(self.shard) if self.shard else None,
        }


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


def check_ranges(settings: Settings) -> list[str]:
    """One problem per setting out of its range."""
    problems = []
    minimums = {"batch_size": 1, "num_workers": 0, "limit": 1, "checkpoint_every": 1, "checkpoint_seconds": 0}
    for name, minimum in minimums.items():
        value = getattr(settings, name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < minimum:  # wrong types: check_types
            problems.append(f"setting {name!r} must be at least {minimum}, got {value}")
    if isinstance(settings.device, str) and not DEVICE_PATTERN.match(settings.device):
        problems.append(f"setting 'device' must be auto, cpu, cuda, cuda:N, mps or xpu, got {settings.device!r}")
    if isinstance(settings.shard, tuple) and len(settings.shard) == 2 and all(isinstance(v, int) for v in settings.shard):
        index, count = settings.shard
        if count < 1 or not 0 <= index < count:
            problems.append(f"setting 'shard' must be K/N with 0 <= K < N, got {index}/{count}")
    return problems


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> (K, N)."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise SettingsError(f"--shard takes K/N (e.g. 0/4 for the first of four slices), got {text!r}")
    shard = (int(match.group(1)), int(match.group(2)))
    if not 0 <= shard[0] < shard[1]:
        raise SettingsError(f"--shard {text}: K must be in 0..N-1")
    return shard
