"""The evaluation engine: one streaming pass for reconstruction and generation runs.

A run is a pipeline of sources, a transform, scorers and sinks; the loop streams it. Where
things are:

- :mod:`~vtbench.engine.components`: building tokenizers, datasets, generators and metrics;
- :mod:`~vtbench.engine.sources`: where images come from (datasets, generators, fixed statistics);
- :mod:`~vtbench.engine.loading`: image loading in DataLoader workers;
- :mod:`~vtbench.engine.transforms`: the tokenizer round trip, 8-bit rounding, timing;
- :mod:`~vtbench.engine.features` and :mod:`~vtbench.engine.text_reading`: the shared
  feature pass (with its content-keyed cache) and OCR, which the metrics score from;
- :mod:`~vtbench.engine.pipelines`: each task's pipeline (reconstruction, generation);
- :mod:`~vtbench.engine.loop`: streaming, checkpoints and slices;
- :mod:`~vtbench.engine.partial`: checkpoint and resume state;
- :mod:`~vtbench.engine.distributed`: torch.distributed ranks and slices;
- :mod:`~vtbench.engine.finish`: merging slices and shards into the record.

The run settings are declared in :mod:`vtbench.settings`; the record in :mod:`vtbench.schema`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vtbench.engine.components import create_dataset, create_generator, resolve_device
from vtbench.engine.finish import merge_shards
from vtbench.engine.loop import Engine, Progress
from vtbench.errors import VtbenchError
from vtbench.schema import RunRecord, finished_record
from vtbench.settings import GENERATION_METRICS, RECONSTRUCTION_METRICS, GenerationConfig, RunConfig, Settings, SettingsError
from vtbench.weights import WeightsUnavailableError

__all__ = [
    "GENERATION_METRICS", "RECONSTRUCTION_METRICS", "Engine", "GenerationConfig", "Progress", "RunConfig", "Settings",
    "SettingsError", "create_dataset", "create_generator", "evaluate", "evaluate_all", "merge_shards", "resolve_device",
]  # fmt: skip


ProgressArgument = Progress | Callable[[str, int, int], Any] | bool | None


@contextlib.contextmanager
def progress_display(progress: ProgressArgument) -> Iterator[Progress | None]:
    """``True``: a rich progress bar (plain log lines when output is piped); a callable: called as ``fn(run_name, done, total)`` at
    the start of each run and after every batch; a :class:`Progress`: used as it is."""
    if progress is True:
        from vtbench.progress import for_this_output

        with for_this_output() as bar:
            yield bar
    elif progress is None or progress is False:
        yield None
    elif isinstance(progress, Progress):
        yield progress
    elif callable(progress):
        from vtbench.progress import CallbackProgress

        yield CallbackProgress(progress)
    else:
        raise VtbenchError(f"progress must be True, a callable fn(run_name, done, total) or a Progress, got {progress!r}")


def _wants_display(progress: ProgressArgument) -> bool:
    """Whether ``progress`` is a request (True, a callable) rather than a display already made."""
    return progress is True or (progress not in (None, False) and not isinstance(progress, Progress))


def evaluate(
    config: RunConfig | GenerationConfig,
    out_dir: str | Path,
    progress: ProgressArgument = None,
    restart: bool = False,
    recipe: dict[str, Any] | None = None,
) -> RunRecord | None:
    """Score one run and write its record into ``out_dir``; returns the record (None on
    ranks other than 0, and for a ``shard`` run, which writes its slice for ``vtbench merge``).
    ``progress=True`` draws a progress bar; a callable gets ``(run_name, done, total)``.

    >>> record = evaluate(RunConfig("jpeg-q50", "samples", limit=2), "results/demo", progress=True)  # doctest: +SKIP
    >>> record.metrics["psnr"].value  # doctest: +SKIP
    """
    from vtbench.engine.distributed import Ranks

    if _wants_display(progress):
        with progress_display(progress) as display:
            return evaluate(config, out_dir, display, restart, recipe)
    prepare_out_dir(out_dir)
    ranks = Ranks.from_environment(config.device)
    return Engine(config, out_dir, progress=progress, restart=restart, recipe=recipe, ranks=ranks).run()


def prepare_out_dir(out_dir: str | Path) -> Path:
    """The output folder, created; a path that is a file or cannot be written is one clear error."""
    import os

    path = Path(out_dir)
    if path.exists() and not path.is_dir():
        raise VtbenchError(f"--out {path}: exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VtbenchError(f"--out {path}: cannot create the folder ({exc.strerror or exc})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise VtbenchError(f"--out {path}: the folder is not writable")
    return path


@dataclass
class Outcome:
    """What happened to each run of a multi-run command."""

    records: list[RunRecord] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # finished earlier with the same settings
    failed: dict[str, str] = field(default_factory=dict)  # run name -> error


def reusable_record(config: RunConfig | GenerationConfig, out_dir: Path) -> RunRecord | None:
    """The record a finished earlier run left in ``out_dir`` when it can stand for this one: the
    same identity (every identity setting, the metrics asked for, the digests of the weights
    files the metrics need, as they are now) and every metric asked for computed (a metric
    recorded as unavailable is redone)."""
    from vtbench.engine.components import COST_METRICS, create_metrics, weights_digests
    from vtbench.engine.partial import identity_sha
    from vtbench.engine.pipelines import run_identity

    if config.shard is not None or (out_dir / ".partial" / config.run_name).exists():
        return None
    record = finished_record(out_dir, config.run_name)
    if record is None or not record.computed_all(config.metrics):
        return None
    names = list(dict.fromkeys([*config.metrics, *(COST_METRICS if config.task == "reconstruction" else ())]))
    try:
        digests = weights_digests(create_metrics(names, config.metric_options))
    except VtbenchError:
        return None
    return record if record.identity_sha == identity_sha(run_identity(config, digests)) else None


def evaluate_all(
    configs: Sequence[RunConfig | GenerationConfig],
    out_dir: str | Path,
    progress: ProgressArgument = None,
    restart: bool = False,
    recipe: dict[str, Any] | None = None,
    on_skip: Callable[[str], None] | None = None,
) -> Outcome:
    """Run several configs into ``out_dir``. A run whose record is already there with the same
    settings is skipped (``restart`` redoes it); a run that fails (a metric raising, a bad
    tokenizer output) is reported by name while the other runs still write their records."""
    if _wants_display(progress):
        with progress_display(progress) as display:
            return evaluate_all(configs, out_dir, display, restart, recipe, on_skip)
    out_dir = Path(out_dir)
    outcome = Outcome()
    at_run = getattr(progress, "at_run", None)
    for index, config in enumerate(configs, start=1):
        if at_run is not None:
            at_run(index, len(configs))
        if not restart:
            done = reusable_record(config, out_dir)
            if done is not None:
                outcome.skipped.append(config.run_name)
                outcome.records.append(done)
                if on_skip:
                    on_skip(config.run_name)
                continue
        try:
            record = evaluate(config, out_dir, progress=progress, restart=restart, recipe=recipe)
        except (KeyboardInterrupt, WeightsUnavailableError):  # a missing file stops every run alike: said once
            raise
        except VtbenchError as exc:
            if len(configs) == 1:
                raise
            outcome.failed[config.run_name] = str(exc)
            continue
        if record is not None:
            outcome.records.append(record)
    return outcome
