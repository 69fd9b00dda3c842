"""The run record, typed: one writer, one reader, and an upgrade from every older version.

A run (a tokenizer over a dataset, or a generator against a reference) leaves two files in
its output folder: ``RUN.json``, the :class:`RunRecord`, and ``RUN.images.csv``, one
:class:`ImageRow` per image. Every part of vtbench that reads records (leaderboard, compare,
analysis, plots, report, gallery, the CLI) goes through these types; the JSON layout is
documented in ``results/README.md``. :func:`load_record` applies :func:`upgrade` to records
of older schema versions, so a record written by any earlier vtbench reads as the current one.

What decides whether two records' numbers are comparable is derived here, per task
(:meth:`RunRecord.comparability`): for reconstruction the dataset side (its manifest), for
generation the reference side (the reference's manifest or statistics file), never the
samples, plus the preprocessing, rounding and the settings each metric depends on.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from vtbench.errors import VtbenchError

SCHEMA_NAME = "vtbench.run-record"
SCHEMA_VERSION = 4
# 2: "task" in every record, "identity_sha", extractor versions; 3: portable paths, run columns
# in the per-image CSV; 4: each metric names the weights files behind its value, a generation
# record names its reference by content (manifest or file digest), identity_sha covers every
# identity setting, the metrics asked for and the weights' digests
SUPPORTED_SCHEMA_VERSIONS = (1, 2, 3, 4)
MAX_FAILURES_IN_RECORD = 1000
PROBE_SCHEMA_NAME = "vtbench.probe-record"


def _drop_empty(data: dict[str, Any], optional: tuple[str, ...]) -> dict[str, Any]:
    """``data`` without the ``optional`` keys whose value is None or empty (as records omit them)."""
    return {k: v for k, v in data.items() if k not in optional or v not in (None, [], {}, "")}


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    import typing

    return typing.get_type_hints(cls)


def checked_fields(cls: type, data: Any, where: str) -> dict[str, Any]:
    """The fields of ``cls`` in ``data``, each checked against its type where that is plain data
    (numbers, text, lists, mappings; the nested parts are read by their own classes): a record
    from elsewhere with a wrong value is one error naming the field."""
    from vtbench.typecheck import conform, describe_type

    if not isinstance(data, dict):
        raise VtbenchError(f"{where} must be a mapping, got {json.dumps(data, default=str)[:60]}")
    hints = _hints(cls)
    known = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        value, hint = data[f.name], hints[f.name]
        if _plain_hint(hint):
            ok, value = conform(value, hint)
            if not ok:
                raise VtbenchError(f"{where}.{f.name} must be {describe_type(hint)}, got {json.dumps(data[f.name], default=str)[:60]}")
        known[f.name] = value
    return known


def _list(items: Any, cls: Any, where: str) -> list[Any]:
    """A list of ``cls`` parts from record data (absent: empty)."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise VtbenchError(f"{where} must be a list, got {json.dumps(items, default=str)[:60]}")
    return [cls.from_dict(item, f"{where}[{i}]") for i, item in enumerate(items)]


def _plain_hint(hint: Any) -> bool:
    """Whether a type hint is made of plain data only (no dataclass of this module)."""
    import typing

    if isinstance(hint, type) and hasattr(hint, "__dataclass_fields__"):
        return False
    return all(_plain_hint(arg) for arg in typing.get_args(hint))


# -- the parts of a record ------------------------------------------------------------------
@dataclass
class WeightsFile:
    """A weights file a number depends on: its store name, file name and SHA-256."""

    name: str = ""
    file: str = ""
    sha256: str = ""
    override: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "record") -> WeightsFile:
        return cls(**checked_fields(cls, data, where))


@dataclass
class Extractor:
    """A feature extractor as the record describes it: name, version and weights."""

    name: str
    version: str = "1"
    weights: list[WeightsFile] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "record") -> Extractor:
        known = checked_fields(cls, {k: v for k, v in data.items() if k != "weights"} if isinstance(data, dict) else data, where)
        return cls(**{**known, "weights": _list(data.get("weights"), WeightsFile, f"{where}.weights")})


@dataclass
class MetricEntry:
    """One metric's result. ``status``: ``ok``; ``undefined`` (the value is not a finite
    number for these inputs: ``value`` is None and ``reason`` says why); ``unavailable`` (not
    computed, e.g. its weights are missing under ``skip_unavailable``)."""

    value: float | None
    n: int = 0
    status: str = "ok"
    higher_is_better: bool | None = True
    unit: str = ""
    aggregation: str = "mean"
    kind: str = "quality"
    extractor: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    weights: list[WeightsFile] = field(default_factory=list)  # every file the value depends on (its own and its extractor's)
    details: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    ci95: list[float | None] | None = None
    reason: str | None = None

    @property
    def computed(self) -> bool:
        return self.status in ("ok", "undefined")

    def to_dict(self) -> dict[str, Any]:
        return _drop_empty(asdict(self), ("extractor", "parameters", "details", "warnings", "ci95", "reason"))

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "record") -> MetricEntry:
        known = checked_fields(cls, {k: v for k, v in data.items() if k != "weights"} if isinstance(data, dict) else data, where)
        return cls(**known, weights=_list(data.get("weights"), WeightsFile, f"{where}.weights"))


@dataclass
class Subject:
    """What was evaluated: a tokenizer (reconstruction) or a generator (generation)."""

    name: str
    preset: str
    options: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] | None = None  # a tokenizer's TokenizerInfo
    preset_metadata: dict[str, Any] | None = None  # source, license, paper, as the preset states them

    def to_dict(self) -> dict[str, Any]:
        return _drop_empty(asdict(self), ("info", "preset_metadata"))

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "record") -> Subject:
        return cls(**checked_fields(cls, data, where))


@dataclass
class DataSide:
    """The images the numbers are about. Reconstruction: the dataset (``describe()`` of it in
    ``description``). Generation: ``reference`` describes the reference set (with its
    ``manifest_sha256``, or a statistics file's ``sha256``); ``manifest_sha256`` is the samples'."""

    name: str
    manifest_sha256: str | None = None
    reference: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    description: dict[str, Any] = field(default_factory=dict)  # the rest of the dataset's describe()

    def to_dict(self) -> dict[str, Any]:
        data = {**self.description, "name": self.name, "manifest_sha256": self.manifest_sha256, "reference": self.reference,
                "warnings": self.warnings}  # fmt: skip
        return _drop_empty(data, ("manifest_sha256", "reference", "warnings"))

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "record") -> DataSide:
        named = ("name", "manifest_sha256", "reference", "warnings")
        known = checked_fields(cls, {k: v for k, v in data.items() if k in named} if isinstance(data, dict) else data, where)
        return cls(**known, description={k: v for k, v in data.items() if k not in named})


@dataclass
class Protocol:
    """How the numbers were made: preprocessing, conversion, rounding, the feature extractors
    and every weights file used, the OCR engine, and the sizes the images were scored at."""

    preprocessing: dict[str, Any] = field(default_factory=dict)
    conversion: dict[str, Any] = field(default_factory=dict)
    value_range: str = ""
    feature_extractors: list[Extractor] = field(default_factory=list)
    reference_cache: dict[str, str] = field(default_factory=dict)
    weights: list[WeightsFile] = field(default_factory=list)
    tokenizer_input: str | None = None
    rounding: str = ""
    ocr: dict[str, Any] | None = None
    evaluation_sizes: dict[str, int] = field(default_factory=dict)
    clips: dict[str, Any] | None = None  # video runs: frames per clip, stride, how frames and clips were scored

    def to_dict(self) -> dict[str, Any]:
        return _drop_empty(asdict(self), ("tokenizer_input", "ocr", "clips"))

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "record") -> Protocol:
        nested = ("feature_extractors", "weights")
        known = checked_fields(cls, {k: v for k, v in data.items() if k not in nested} if isinstance(data, dict) else data, where)
        known["preprocessing"] = known.get("preprocessing") or data.get("reference_preprocessing") or {}
        known["feature_extractors"] = _list(data.get("feature_extractors"), Extractor, f"{where}.feature_extractors")
        return cls(**known, weights=_list(data.get("weights"), WeightsFile, f"{where}.weights"))

    def canonical_preprocessing(self) -> dict[str, Any]:
        """The preprocessing without settings that have no effect (a filter when nothing is resized)."""
        from vtbench.images import Preprocessing

        known = {k: v for k, v in self.preprocessing.items() if k in Preprocessing.__dataclass_fields__}
        try:
            return Preprocessing(**known).canonical()
        except (TypeError, ValueError):
            return known


@dataclass
class Failure:
    """An image that could not be scored: its id, the stage (load, tokenizer, ...) and why."""

    id: str
    stage: str
    error: str

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "record") -> Failure:
        return cls(**{k: str(v) for k, v in checked_fields(cls, data, where).items()})


@dataclass
class Samples:
    """How many images were asked for, scored and failed (the first 1000 failures by name);
    ``notes``: what was done to some images -> their ids; ``reference``: a generation run's
    reference side counts."""

    requested: int = 0
    evaluated: int = 0
    failed: int = 0
    failures: list[Failure] = field(default_factory=list)
    failures_truncated: bool = False
    notes: dict[str, list[str]] = field(default_factory=dict)
    reference: dict[str, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return _drop_empty(asdict(self), ("notes", "reference"))

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "record") -> Samples:
        known = checked_fields(cls, {k: v for k, v in data.items() if k != "failures"} if isinstance(data, dict) else data, where)
        return cls(**known, failures=_list(data.get("failures"), Failure, f"{where}.failures"))


@dataclass
class Cost:
    """What the tokens cost, pooled over the run, and the tokenizer's time per call."""

    tokens_per_image: float | None = None
    bits_per_token: float | None = None
    bits_per_pixel: float | None = None
    compression_vs_rgb24: float | None = None
    codebook_size: int | None = None
    latent: dict[str, Any] | None = None
    parameters: int | None = None
    encode_ms_per_call: float | None = None
    decode_ms_per_call: float | None = None
    calls: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "record") -> Cost:
        return cls(**checked_fields(cls, data, where))


@dataclass
class Memory:
    peak_rss_mb: float | None = None
    cuda_peak_mb: float | None = None
    processes: int = 1

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "record") -> Memory:
        return cls(**checked_fields(cls, data, where))


# -- the record -----------------------------------------------------------------------------
@dataclass
class RunRecord:
    """One run's record. ``task`` is ``reconstruction`` (``subject`` is written as the
    ``tokenizer`` block) or ``generation`` (written as the ``generator`` block). ``config``
    holds the run's settings as given (:meth:`vtbench.settings.RunConfig.to_dict`); ``path``
    is where the record was read from (not written)."""

    task: str
    run_name: str
    identity_sha: str
    config: dict[str, Any]
    subject: Subject
    dataset: DataSide
    protocol: Protocol
    metrics: dict[str, MetricEntry]
    samples: Samples
    cost: Cost | None = None
    timings: dict[str, float | None] = field(default_factory=dict)
    memory: Memory = field(default_factory=Memory)
    environment: dict[str, Any] = field(default_factory=dict)
    recipe: dict[str, Any] | None = None
    per_image_file: str | None = None
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    reproduction: dict[str, Any] | None = None  # measured vs reported, when `vtbench reproduce` made the run
    path: Path | None = None

    # -- reading -------------------------------------------------------------------------------
    @property
    def subject_name(self) -> str:
        return self.subject.name

    @property
    def dataset_name(self) -> str:
        return self.dataset.name

    @property
    def protocol_name(self) -> str | None:
        """The paper protocol (``vtbench list protocols``) the settings started from, if any."""
        return self.config.get("protocol")

    @property
    def subject_kind(self) -> str:
        return "tokenizer" if self.task == "reconstruction" else "generator"

    def value(self, metric: str) -> float | None:
        entry = self.metrics.get(metric)
        return None if entry is None else entry.value

    def details(self, metric: str) -> dict[str, Any]:
        """A metric's secondary numbers (per-band curves, per-size rates, ...), empty when none."""
        entry = self.metrics.get(metric)
        return entry.details if entry is not None else {}

    def component(self, role: str) -> tuple[str, dict[str, Any]]:
        """The name and options the run was given for ``role``: ``tokenizer``, ``dataset``,
        ``generator`` or ``reference``."""
        return self.config.get(role, ""), dict(self.config.get(f"{role}_options") or {})

    @property
    def folder(self) -> Path:
        """The folder the record was read from (the current folder for a record made in memory)."""
        return self.path.parent if self.path is not None else Path(".")

    @property
    def images_path(self) -> Path:
        """The per-image CSV beside the record."""
        return per_image_path(self.folder, self.run_name)

    def image_rows(self) -> list[ImageRow] | None:
        """The per-image rows, or None when the CSV is not beside the record."""
        return read_image_rows(self.images_path) if self.images_path.is_file() else None

    def comparability(self, metric: str | None = None) -> dict[str, Any]:
        """What must agree for this record's numbers to be compared with another's.

        Always: the data side (reconstruction: the dataset's manifest; generation: the
        reference's manifest or statistics-file digest and whether an ADM batch's stored
        statistics were used, never the samples), the preprocessing and the rounding. With a
        ``metric``: also its options, its extractor and version, the digests of every weights
        file behind it, and for text metrics the OCR engine."""
        key: dict[str, Any] = {"preprocessing": self.protocol.canonical_preprocessing(), "rounding": self.protocol.rounding}
        if self.task == "generation":
            reference = self.dataset.reference or {}
            key["reference"] = (
                reference.get("manifest_sha256")
                or reference.get("sha256")
                or {k: v for k, v in reference.items() if k not in ("root", "path", "statistics_file")}
            )
            key["stored_statistics"] = self.config.get("stored_statistics", True)
        else:
            key["dataset_manifest"] = self.dataset.manifest_sha256
        if metric is None:
            return key
        entry = self.metrics.get(metric)
        if entry is None:
            return key
        key["metric_options"] = (self.config.get("metric_options") or {}).get(metric, {})
        if entry.extractor:
            described = [e for e in self.protocol.feature_extractors if e.name == entry.extractor]
            key["extractor"] = entry.extractor
            key["extractor_version"] = described[0].version if described else None
        key["weights"] = sorted(w.sha256 for w in entry.weights)
        if entry.kind == "text":
            ocr = self.protocol.ocr or {}
            key["ocr_engine"] = (ocr.get("name"), ocr.get("version"))
        return key

    def computed_all(self, metrics: list[str]) -> bool:
        """Whether every metric in ``metrics`` has a result here (a value, or undefined)."""
        return all(name in self.metrics and self.metrics[name].computed for name in metrics)

    # -- writing -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_NAME,
            "schema_version": SCHEMA_VERSION,
            "task": self.task,
            "run_name": self.run_name,
            "identity_sha": self.identity_sha,
            "created": self.created,
            "config": self.config,
            "recipe": self.recipe,
            self.subject_kind: self.subject.to_dict(),
            "dataset": self.dataset.to_dict(),
            "protocol": self.protocol.to_dict(),
            "metrics": {name: entry.to_dict() for name, entry in self.metrics.items()},
            "samples": self.samples.to_dict(),
            "cost": asdict(self.cost) if self.cost is not None else None,
            "timings": self.timings,
            "memory": asdict(self.memory),
            "environment": self.environment,
            "per_image_file": self.per_image_file,
            **({"reproduction": self.reproduction} if self.reproduction is not None else {}),
        }

    def write(self, out_dir: str | Path) -> Path:
        """Write ``OUT/RUN.json`` atomically; returns its path (and remembers it)."""
        from vtbench.io import atomic_write_json

        path = record_path(out_dir, self.run_name)
        atomic_write_json(path, self.to_dict())
        self.path = path
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path | None = None) -> RunRecord:
        """A record from its JSON data, upgraded to the current schema first."""
        data = upgrade(data)
        if data.get("task") not in ("reconstruction", "generation"):
            raise VtbenchError(f"task must be reconstruction or generation, got {json.dumps(data.get('task'))[:40]}")
        if not isinstance(data.get("run_name"), str):
            raise VtbenchError("no run_name")
        subject = data.get("tokenizer") if data["task"] == "reconstruction" else data.get("generator")
        metrics = data.get("metrics") or {}
        if not isinstance(metrics, dict):
            raise VtbenchError("metrics must be a mapping of metric names to results")
        plain = {"config": dict, "timings": dict, "environment": dict, "recipe": (dict, type(None)), "per_image_file": (str, type(None)),
                 "reproduction": (dict, type(None))}  # fmt: skip
        for key, kind in plain.items():
            if key in data and data[key] is not None and not isinstance(data[key], kind):
                raise VtbenchError(f"{key} is {type(data[key]).__name__}, not what a record holds there")
        return cls(
            task=data["task"],
            run_name=data["run_name"],
            identity_sha=str(data.get("identity_sha", "")),
            config=dict(data.get("config") or {}),
            subject=Subject.from_dict(
                subject or {"name": data["run_name"], "preset": ""}, data["task"] == "reconstruction" and "tokenizer" or "generator"
            ),  # fmt: skip
            dataset=DataSide.from_dict(data.get("dataset") or {}, "dataset"),
            protocol=Protocol.from_dict(data.get("protocol") or {}, "protocol"),
            metrics={name: MetricEntry.from_dict(entry, f"metrics.{name}") for name, entry in metrics.items()},
            samples=Samples.from_dict(data.get("samples") or {}, "samples"),
            cost=Cost.from_dict(data["cost"], "cost") if data.get("cost") else None,
            timings=dict(data.get("timings") or {}),
            memory=Memory.from_dict(data.get("memory") or {}, "memory"),
            environment=dict(data.get("environment") or {}),
            recipe=data.get("recipe"),
            per_image_file=data.get("per_image_file"),
            created=str(data.get("created", "")),
            reproduction=data.get("reproduction"),
            path=path,
        )


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """Record data of any supported schema version, brought to :data:`SCHEMA_VERSION`."""
    version = data.get("schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise VtbenchError(f"schema_version {version} is not supported by this vtbench (supports {SUPPORTED_SCHEMA_VERSIONS})")
    data = json.loads(json.dumps(data))  # a copy
    if version == 1:  # reconstruction only, no identity hash, extractors without versions, "inf"/"nan" as text
        data.setdefault("task", "reconstruction")
        data.setdefault("identity_sha", "")
        for entry in (data.get("metrics") or {}).values():
            if isinstance(entry, dict) and entry.get("value") in ("inf", "-inf", "nan"):
                entry["value"] = float(entry["value"])
        for extractor in (data.get("protocol") or {}).get("feature_extractors", []):
            extractor.setdefault("version", "1")
        version = 2
    if version == 2:  # 3 made stored paths portable and named the run in the per-image CSV: nothing to convert
        version = 3
    if version == 3:
        _upgrade_metric_weights(data)
        version = 4
    data["schema_version"] = version
    return data


def _upgrade_metric_weights(data: dict[str, Any]) -> None:
    """Version 3 listed a run's weights files once (``protocol.weights``); version 4 names, per
    metric, the files behind it: its extractor's, and those the metric loads itself."""
    protocol = data.get("protocol") or {}
    by_name = {w.get("name"): w for w in protocol.get("weights", [])}
    extractor_weights = {e.get("name"): e.get("weights", []) for e in protocol.get("feature_extractors", [])}
    for name, entry in (data.get("metrics") or {}).items():
        if not isinstance(entry, dict) or "weights" in entry:
            continue
        files = list(extractor_weights.get(entry.get("extractor"), []))
        for weights_name in _own_weights(name):
            if weights_name in by_name:
                files.append(by_name[weights_name])
        entry["weights"] = files


def _own_weights(metric: str) -> tuple[str, ...]:
    """The weights-store names a registered metric loads itself (empty when it is unknown here)."""
    from vtbench.metrics import METRICS

    try:
        return tuple(METRICS.create(metric).required_weights)
    except Exception:  # a plugin metric not installed here, or one whose options are gone
        return ()


def record_path(out_dir: str | Path, run_name: str) -> Path:
    return Path(out_dir) / f"{run_name}.json"


def per_image_path(out_dir: str | Path, run_name: str) -> Path:
    return Path(out_dir) / f"{run_name}.images.csv"


def load_record(path: str | Path) -> RunRecord:
    """Read, check and upgrade one run record."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VtbenchError(f"{path}: no such run record") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise VtbenchError(f"{path}: not a JSON run record ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA_NAME:
        raise VtbenchError(f'{path}: not a vtbench run record (no "schema": "{SCHEMA_NAME}")')
    try:
        return RunRecord.from_dict(data, path)
    except VtbenchError as exc:
        raise VtbenchError(f"{path}: {exc}") from None
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise VtbenchError(f"{path}: a damaged run record ({type(exc).__name__}: {exc})") from None


def find_records(root: str | Path) -> list[RunRecord]:
    """Every run record under ``root`` (a record file or a folder searched recursively)."""
    root = Path(root)
    if root.is_file():
        return [load_record(root)]
    if not root.is_dir():
        raise VtbenchError(f"{root}: no such file or folder")
    records = []
    for path in sorted(root.rglob("*.json")):
        if ".partial" in path.parts:
            continue
        try:
            with open(path, encoding="utf-8") as handle:
                head = handle.read(200)  # records start with their schema name
        except (OSError, UnicodeDecodeError):
            continue
        if SCHEMA_NAME in head:
            records.append(load_record(path))
    return records


def finished_record(out_dir: str | Path, run_name: str) -> RunRecord | None:
    """The record ``out_dir`` holds for ``run_name`` when it can be read as one, else None."""
    path = record_path(out_dir, run_name)
    if not path.is_file():
        return None
    try:
        return load_record(path)
    except VtbenchError:
        return None


# -- per-image rows -------------------------------------------------------------------------
ROW_COLUMNS = ("index", "id", "status", "error", "source_size", "eval_size", "content_sha256")


@dataclass
class ImageRow:
    """One image of a run: where it is in its dataset, whether it was scored, its sizes and
    content hash, its value of every per-image metric (None where it has none) and, for text
    metrics, what OCR read in each text region (JSON)."""

    index: int
    id: str
    status: str = "ok"  # ok | failed
    error: str = ""
    source_size: str = ""
    eval_size: str = ""
    content_sha256: str = ""
    values: dict[str, float | None] = field(default_factory=dict)
    ocr: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def cells(self, metrics: list[str], with_ocr: bool) -> list[Any]:
        """The CSV cells under :func:`row_header` ``(metrics, with_ocr)``."""
        values = ["" if self.values.get(m) is None else self.values[m] for m in metrics]
        return [self.index, self.id, self.status, self.error, self.source_size, self.eval_size, self.content_sha256, *values,
                *([self.ocr or ""] if with_ocr else [])]  # fmt: skip

    @classmethod
    def from_cells(cls, header: list[str], cells: list[str], escaped: bool = False) -> ImageRow:
        """A row from CSV cells; ``escaped``: the cells were written through
        :func:`vtbench.io.csv_safe` (a per-image CSV, not a partial state's rows)."""
        from vtbench.io import csv_unsafe

        by_name = {name: csv_unsafe(cell) if escaped else cell for name, cell in zip(header, cells, strict=False)}
        metrics = [name for name in header if name not in ROW_COLUMNS and name not in RUN_COLUMNS and name != "ocr"]
        return cls(
            int(by_name["index"]), by_name["id"], by_name.get("status", "ok"), by_name.get("error", ""), by_name.get("source_size", ""),
            by_name.get("eval_size", ""), by_name.get("content_sha256", ""),
            {m: _number(by_name.get(m, "")) for m in metrics}, by_name.get("ocr") or None,
        )  # fmt: skip


RUN_COLUMNS = ("run", "tokenizer", "dataset", "generator", "reference")


def row_header(metrics: list[str], with_ocr: bool) -> list[str]:
    return [*ROW_COLUMNS, *metrics, *(["ocr"] if with_ocr else [])]


def _number(text: str) -> float | None:
    if text in ("", None):
        return None
    try:
        return float(text)
    except ValueError:
        return None


def rows_from_csv_text(text: str, escaped: bool = False) -> tuple[list[str], list[ImageRow]]:
    """(header, rows) of per-image CSV text (with or without the run columns); ``escaped``:
    written through :func:`vtbench.io.csv_safe`, as a run's per-image CSV is."""
    table = list(csv.reader(io.StringIO(text)))
    if not table:
        return [], []
    header = table[0]
    return header, [ImageRow.from_cells(header, cells, escaped) for cells in table[1:]]


def read_image_rows(path: str | Path) -> list[ImageRow]:
    """The rows of a run's per-image CSV, in file order."""
    return rows_from_csv_text(Path(path).read_text(encoding="utf-8"), escaped=True)[1]


def images_csv_text(record: RunRecord, metrics: list[str], with_ocr: bool, rows: list[ImageRow]) -> str:
    """The per-image CSV of ``record``: the run's name, subject and data first (so the files of
    several runs can be concatenated), then :func:`row_header`'s columns."""
    from vtbench.io import csv_safe

    names = ["run", "tokenizer", "dataset"] if record.task == "reconstruction" else ["run", "generator", "reference"]
    run = [record.run_name, record.subject_name, record.dataset_name]
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow([*names, *row_header(metrics, with_ocr)])
    writer.writerows([csv_safe(cell) for cell in [*run, *row.cells(metrics, with_ocr)]] for row in rows)
    return text.getvalue()


# -- probe records ----------------------------------------------------------------------------
@dataclass
class ProbeRecord:
    """An AR probe's result (``vtbench probe``): how well a small causal transformer predicts
    a tokenizer's codes. ``tokens`` describes the encoded ids; ``recipe`` the training recipe."""

    run_name: str
    tokens: dict[str, Any]
    recipe: dict[str, Any]
    validation_bits_per_token: float
    validation_bits_per_image: float
    uniform_bits_per_token: float
    curve: list[dict[str, Any]]
    train_seconds: float
    steps_per_s: float | None
    parameters: int
    processes: int
    environment: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    @property
    def steps(self) -> int:
        return int(self.recipe["steps"])

    def to_dict(self) -> dict[str, Any]:
        return {"schema": PROBE_SCHEMA_NAME, "schema_version": 2, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "record") -> ProbeRecord:
        return cls(**checked_fields(cls, data, where))
