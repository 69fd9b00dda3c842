"""The loop: a run's pipeline (:mod:`vtbench.engine.pipelines`) streamed batch by batch, one
slice of it per process or ``--shard``, checkpointed so a killed run resumes exactly.

The loop knows nothing of tasks: it walks the pipeline's phases, hands each batch to the
phase's scorer, saves the metric states, counts and per-image rows under ``OUT/.partial/``
(at most every ``checkpoint_seconds``, and on Ctrl-C), and at the end gathers the slices
of all processes to rank 0, which writes the record (or the shard's slice).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from vtbench.engine.components import resolve_device
from vtbench.engine.distributed import Ranks
from vtbench.engine.finish import SliceResult, merge_slices, shard_folder, write_record
from vtbench.engine.partial import PartialRun, RunState, identity_sha, remove_empty, remove_stale_temporaries, tensors_to_cpu
from vtbench.engine.pipelines import PIPELINES, Phase, RunPipeline, StrictStop
from vtbench.engine.transforms import Clock
from vtbench.errors import VtbenchError
from vtbench.schema import ImageRow, RunRecord
from vtbench.settings import GenerationConfig, RunConfig


@runtime_checkable
class Progress(Protocol):
    """What the engine reports to a progress display (the CLI draws a rich bar)."""

    def start(self, run_name: str, total: int, done: int) -> None: ...
    def advance(self, images: int) -> None: ...
    def finish(self) -> None: ...


class Engine:
    """Scores one :class:`RunConfig` or :class:`GenerationConfig` slice into ``out_dir``."""

    def __init__(self, config: RunConfig | GenerationConfig, out_dir: str | Path, progress: Progress | None = None,
                 restart: bool = False, recipe: dict[str, Any] | None = None, ranks: Ranks | None = None) -> None:  # fmt: skip
        self.config, self.out_dir, self.progress, self.restart, self.recipe = config, Path(out_dir), progress, restart, recipe
        self.ranks = ranks or Ranks()
        self.cached = 0  # images a fresh run finds done before it starts (a cached reference), not counted as progress
        self.device = resolve_device(config.device, self.ranks.local_rank if self.ranks.world > 1 else None)
        shard_index, shard_count = config.shard or (0, 1)
        self.slice = (shard_index * self.ranks.world + self.ranks.rank, shard_count * self.ranks.world)
        self.clock = Clock(self.device)
        self.pipeline: RunPipeline = PIPELINES[config.task](config, self.device, self.slice, self.clock)
        folder = self.out_dir / ".partial" / config.run_name
        if self.slice[1] > 1:
            folder = folder / f"slice-{self.slice[0]}-of-{self.slice[1]}"
        self.partial = PartialRun(folder, list(self.pipeline.metrics), self.pipeline.with_ocr)
        self.pipeline.out_dir, self.pipeline.partial_folder = self.out_dir, folder

    @property
    def metrics(self) -> dict[str, Any]:
        return self.pipeline.metrics

    # -- the run -----------------------------------------------------------------------------
    def run(self) -> RunRecord | None:
        """Score this slice; rank 0 writes (and returns) the record, or the shard's slice."""
        error: BaseException | None = None
        result: SliceResult | None = None
        try:
            result = self._run_slice()
        except BaseException as exc:  # every rank must reach the gather, failed or not
            error = exc
            if self.ranks.world == 1:
                raise
        payloads = self.ranks.gather(b"ok:" + result.to_bytes() if result is not None else b"error:" + str(error).encode())
        if error is not None:
            raise error
        if payloads is None:  # another rank writes; this slice's state goes once it has
            self.ranks.barrier()
            self._discard()
            return None
        failed = [rank for rank, payload in enumerate(payloads) if payload.startswith(b"error:")]
        if failed:
            raise VtbenchError(f"rank {failed[0]} failed: {payloads[failed[0]][6:].decode(errors='replace')}")
        slices = [SliceResult.from_bytes(payload[3:]) for payload in payloads] if self.ranks.world > 1 else [result]
        merged = merge_slices(slices)
        merged.state.context["slices"] = self.ranks.world
        record = None
        if self.config.shard is not None:
            merged.save(shard_folder(self.out_dir, self.config.run_name, *self.config.shard))
        else:
            record = write_record(merged, self.out_dir)
        self.ranks.barrier()
        self._discard()  # only once the record is in place: a stop before this resumes and writes it
        if record is not None:
            self.pipeline.finish(self.out_dir)
        return record

    def _discard(self) -> None:
        self.partial.discard()
        remove_empty(self.partial.folder.parent)

    def _run_slice(self) -> SliceResult:
        self.partial.lock()
        try:
            remove_stale_temporaries(self.out_dir, self.config.run_name)
            state = self._load_or_start()
            if not state.complete:
                self._stream(state)
            return SliceResult(state, self._metric_states(), self.partial.rows_text())
        except BaseException:
            if not self.partial.state_path.exists():  # nothing was checkpointed: nothing to resume
                self.partial.discard()
                self.pipeline.features.discard()
            raise
        finally:
            self.partial.release()

    def _load_or_start(self) -> RunState:
        identity = identity_sha({**self.pipeline.identity(), "slice": list(self.slice)})
        ids = [i for phase in self.pipeline.phases for i in phase.source.ids(phase.positions)]
        if self.restart:
            self.partial.discard()
        loaded = self.partial.load(identity, ids)
        if loaded is not None:
            state, metric_states = loaded
            for name, metric in self.metrics.items():
                metric.load_state_dict(metric_states[name])
            if self.config.task == "reconstruction":
                self.partial.check_contents(self.pipeline.dataset.content_sha256)
            self.pipeline.open(state, fresh=False)
            return state
        state = self.partial.start(identity, ids)
        self.pipeline.open(state, fresh=True)
        self.cached = sum(state.progress.values())  # a fresh run's images already done: a cached reference's
        return state

    def _metric_states(self) -> dict[str, dict[str, Any]]:
        return tensors_to_cpu({name: metric.state_dict() for name, metric in self.metrics.items()})

    def _stream(self, state: RunState) -> None:
        rows: list[ImageRow] = []
        phases = self.pipeline.phases
        show = self.progress is not None and self.ranks.is_main
        if show:  # work left to do: a cached reference is not "resumed"
            total, done = sum(len(p.positions) for p in phases), sum(state.progress.values())
            self.progress.start(self.config.run_name, total - self.cached, done - self.cached)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        started = last_save = time.perf_counter()
        batches_since_save = 0
        try:
            with _deferred_interrupt() as interrupted:
                for phase in phases:
                    phase_started = time.perf_counter()
                    for batch in self._batches(phase, state):
                        skip = set(state.scored_in_next_batch)
                        first_row = len(rows)
                        try:
                            phase.score(state, rows, batch.without(skip))
                        except StrictStop:
                            state.scored_in_next_batch = sorted(skip | {row.index for row in rows[first_row:]})
                            self._save(state, rows, started)
                            raise
                        state.progress[phase.name] = state.progress.get(phase.name, 0) + len(batch.items)
                        state.scored_in_next_batch = []
                        batches_since_save += 1
                        due = time.perf_counter() - last_save >= self.config.checkpoint_seconds
                        if (batches_since_save >= self.config.checkpoint_every and due) or interrupted.is_set():
                            started = self._save(state, rows, started)
                            last_save, batches_since_save = time.perf_counter(), 0
                        if interrupted.is_set():
                            raise KeyboardInterrupt
                        if show:
                            self.progress.advance(len(batch.items))
                    key = f"{phase.name}_s"  # wall time of each phase (reference_s, samples_s, images_s)
                    state.timings[key] = state.timings.get(key, 0.0) + time.perf_counter() - phase_started
        except RuntimeError:
            if _INTERRUPTED.is_set():  # a DataLoader worker died of the same Ctrl-C
                raise KeyboardInterrupt from None
            raise
        finally:
            if show:
                self.progress.finish()
        state.complete = True
        state.context = asdict(self.pipeline.context(self.recipe))
        self._save(state, rows, started)
        self.pipeline.features.commit(self.pipeline.committed_ids())

    def _batches(self, phase: Phase, state: RunState) -> Iterator[Any]:
        positions = range(phase.positions.start + state.progress.get(phase.name, 0), phase.positions.stop)
        if not positions:
            return iter(())
        return phase.source.batches(positions, self.config.batch_size, phase.workers, self.device, self.clock)

    def _save(self, state: RunState, rows: list[ImageRow], started: float) -> float:
        now = time.perf_counter()
        state.timings["total_s"] += now - started
        for key, seconds in self.clock.timings.items():
            state.timings[key] = state.timings.get(key, 0.0) + seconds
        self.clock.timings.clear()
        text = self.pipeline.text
        if text is not None:
            for key, value in text.counts.items():
                state.ocr_counts[key] = state.ocr_counts.get(key, 0) + value
            text.counts = dict.fromkeys(text.counts, 0)
        self.partial.save(state, rows, self._metric_states())
        return now


_INTERRUPTED = threading.Event()


@contextmanager
def _deferred_interrupt() -> Iterator[threading.Event]:
    """Ctrl-C sets a flag the pass checks between batches (it checkpoints, then stops), so an
    interrupt never lands in the middle of a metric update. Main thread only."""
    _INTERRUPTED.clear()
    if threading.current_thread() is not threading.main_thread():
        yield _INTERRUPTED
        return

    def handler(signum: int, frame: Any) -> None:
        if _INTERRUPTED.is_set():  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        _INTERRUPTED.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield _INTERRUPTED
    finally:
        signal.signal(signal.SIGINT, previous)
