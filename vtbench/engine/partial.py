"""Partial state of a run on disk, so a killed run resumes exactly where it stopped.

``OUT/.partial/RUN/`` (one such folder per slice of a sharded or multi-process run) holds:

- ``state.safetensors``: progress, counts, timings and the metric states (no pickle);
- ``rows.csv``: the per-image rows up to the last checkpoint (later bytes are cut on resume);
- ``ids.json``: the image ids of the slice, checked on resume (files added or removed are named).

A lock file beside the folder keeps a second concurrent run of the same run out. A
finished run renames its folder away before deleting it, so a kill during the clean-up
never leaves a state that blocks the next run.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import io
import json
import os
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from vtbench.engine.partial_state import load_state, save_state
from vtbench.errors import RunStateError
from vtbench.io import atomic_write_bytes
from vtbench.schema import ImageRow, row_header, rows_from_csv_text

TIMING_KEYS = ("load_wait_s", "encode_s", "decode_s", "generate_s", "features_s", "ocr_s", "metrics_s", "total_s")


@dataclass
class RunState:
    """What is checkpointed besides the metric states."""

    identity_sha: str = ""
    progress: dict[str, int] = field(default_factory=dict)  # phase -> positions of the slice done
    scored_in_next_batch: list[int] = field(default_factory=list)  # dataset indices already scored after a --strict stop
    rows_bytes: int = 0
    n_evaluated: int = 0
    n_failed: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    eval_sizes: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(TIMING_KEYS, 0.0))
    cost: dict[str, Any] = field(default_factory=lambda: {"bits": 0.0, "tokens": 0, "pixels": 0, "tokenizer_calls": 0})
    latent: dict[str, Any] = field(default_factory=dict)
    ocr_counts: dict[str, int] = field(default_factory=dict)
    reference: dict[str, int] = field(default_factory=lambda: {"evaluated": 0, "failed": 0})
    notes: dict[str, list[str]] = field(default_factory=dict)  # what was done to some images -> their ids (first 1000)
    reference_hashes: list[list[str]] = field(default_factory=list)  # [id, content hash] of the reference images seen
    reference_manifest: str = ""  # the reference's manifest, when the feature cache knew it (no image was read)
    complete: bool = False
    context: dict[str, Any] = field(default_factory=dict)  # the record's descriptive parts, set when complete

    def plain(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_plain(cls, plain: dict[str, Any], source: Path) -> RunState:
        """The state saved in ``source``; one written by another vtbench version (fields this
        one does not know, or lacks) is refused by name."""
        from vtbench.errors import VtbenchError
        from vtbench.schema import checked_fields

        unknown = sorted(set(plain) - {f.name for f in fields(cls)})
        try:
            problem = f"fields {', '.join(unknown)}" if unknown else None
            checked = checked_fields(cls, plain, "state")
        except VtbenchError as exc:
            problem = str(exc)
        if problem:
            raise RunStateError(f"{source}: a state this vtbench does not read ({problem}; made by another version, or edited?); "
                                "run again with --restart to discard it")  # fmt: skip
        return cls(**checked)


def identity_sha(identity: dict[str, Any]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


class PartialRun:
    """The partial-state folder of one run slice, held under an exclusive lock; its rows have
    a column per metric in ``metrics`` (and the OCR readings with ``with_ocr``)."""

    def __init__(self, folder: Path, metrics: list[str], with_ocr: bool) -> None:
        self.folder, self.metrics, self.with_ocr = folder, metrics, with_ocr
        self.columns = row_header(metrics, with_ocr)
        self._lock_handle: Any = None

    @property
    def state_path(self) -> Path:
        return self.folder / "state.safetensors"

    @property
    def rows_path(self) -> Path:
        return self.folder / "rows.csv"

    @property
    def ids_path(self) -> Path:
        return self.folder / "ids.json"

    # -- locking ---------------------------------------------------------------------------
    def lock(self) -> None:
        """Refuse, with the other process named, when another run holds this run's state. The
        lock is a POSIX record lock: it belongs to this process alone (DataLoader workers it
        forks do not inherit it), and the kernel drops it when the process dies, however it
        dies, so a killed run never leaves a lock behind."""
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        path = self.folder.with_name(self.folder.name + ".lock")
        handle = open(path, "a+")  # noqa: SIM115 - held until release()
        try:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EAGAIN):
                raise
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise RunStateError(
                f"{self.folder} is in use by another vtbench run ({holder}); wait for it to finish or write to another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._lock_handle = handle

    def release(self) -> None:
        if self._lock_handle is not None:
            self.folder.with_name(self.folder.name + ".lock").unlink(missing_ok=True)
            fcntl.lockf(self._lock_handle, fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None

    # -- state -------------------------------------------------------------------------------
    def load(self, identity: str, ids: list[str]) -> tuple[RunState, dict[str, dict[str, Any]]] | None:
        """The saved state of an earlier attempt at this run, or None to start afresh."""
        if (self.folder / "state.pt").exists():
            raise RunStateError(
                f"{self.folder} holds resume state in the old pickle format (state.pt), which vtbench no longer "
                "unpickles; run again with --restart to discard it"
            )
        if not self.state_path.exists():
            return None
        plain, tensors = load_state(self.state_path)
        state = RunState.from_plain(plain, self.state_path)
        self._check_ids(ids)  # first: a changed dataset also changes the identity, and this names the files
        if state.identity_sha != identity:
            raise RunStateError(f"{self.folder} holds a partial run made with different settings; run again with --restart to discard it")
        with open(self.rows_path, "r+b") as handle:  # rows written after the last checkpoint are dropped
            handle.truncate(state.rows_bytes)
        return state, tensors

    def _check_ids(self, ids: list[str]) -> None:
        try:
            saved = json.loads(self.ids_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            raise RunStateError(f"{self.ids_path}: missing or damaged; run again with --restart") from None
        if saved != ids:
            removed, added = sorted(set(saved) - set(ids)), sorted(set(ids) - set(saved))
            detail = (
                "; ".join(
                    part
                    for part in (f"removed: {', '.join(removed[:5])}" if removed else "", f"added: {', '.join(added[:5])}" if added else "")
                    if part
                )
                or "the order changed"
            )
            raise RunStateError(
                f"the dataset changed since the partial run in {self.folder} was saved ({detail}); run again with --restart to start over"
            )

    def check_contents(self, content_sha256: Any) -> None:
        """Re-hash the images already scored; a file changed since is named (resume refused)."""
        changed = []
        for row in self.read_rows():
            if row.content_sha256 and row.ok:
                try:
                    now = content_sha256(row.index)
                except Exception:
                    now = ""
                if now != row.content_sha256:
                    changed.append(row.id)
        if changed:
            raise RunStateError(
                f"{len(changed)} image(s) changed since the partial run in {self.folder} was saved "
                f"({', '.join(changed[:5])}); run again with --restart to start over"
            )

    def start(self, identity: str, ids: list[str]) -> RunState:
        """A fresh state: the folder emptied, the header row and the slice's ids written."""
        self.discard()
        self.folder.mkdir(parents=True, exist_ok=True)
        header = io.StringIO()
        csv.writer(header).writerow(self.columns)
        atomic_write_bytes(self.ids_path, json.dumps(ids).encode())
        atomic_write_bytes(self.rows_path, header.getvalue().encode())
        return RunState(identity_sha=identity, rows_bytes=len(header.getvalue().encode()))

    def save(self, state: RunState, rows: list[ImageRow], metric_states: dict[str, dict[str, Any]]) -> None:
        """Append ``rows`` (then clear them) and write the state atomically after them."""
        if rows:
            text = io.StringIO()
            csv.writer(text).writerows(row.cells(self.metrics, self.with_ocr) for row in rows)
            with open(self.rows_path, "ab") as handle:
                handle.truncate(state.rows_bytes)
                handle.write(text.getvalue().encode())
                handle.flush()
                os.fsync(handle.fileno())
                state.rows_bytes = handle.tell()
            rows.clear()
        save_state(self.state_path, state.plain(), metric_states)

    def read_rows(self) -> list[ImageRow]:
        return rows_from_csv_text(self.rows_text())[1]

    def rows_text(self) -> str:
        with open(self.rows_path, "rb") as handle:
            return handle.read(os.path.getsize(self.rows_path)).decode("utf-8")

    def discard(self) -> None:
        """Remove the folder: renamed away first, so a kill mid-way leaves nothing behind that
        a rerun would read."""
        sweep_trash(self.folder.parent)
        if self.folder.exists():
            trash = self.folder.with_name(f".trash-{self.folder.name}-{os.getpid()}")
            os.replace(self.folder, trash)
            shutil.rmtree(trash, ignore_errors=True)
        parent = self.folder.parent
        if parent.name != ".partial":
            with contextlib.suppress(OSError):  # another rank may just be writing or removing its slice there
                if not any(parent.iterdir()):
                    parent.rmdir()  # the run's folder of rank slices, once empty


def sweep_trash(folder: Path) -> None:
    """Finish the removal of partial folders a killed clean-up left behind."""
    if folder.is_dir():
        for leftover in folder.glob(".trash-*"):
            shutil.rmtree(leftover, ignore_errors=True)


def remove_empty(folder: Path) -> None:
    """Remove ``folder`` and empty parents up to and including ``.partial``."""
    for path in (folder, *folder.parents):
        try:
            if any(path.iterdir()):
                return
        except OSError:  # removed already, maybe by another rank clearing its slice at the same time
            if path.name == ".partial":
                return
            continue
        try:
            path.rmdir()
        except OSError:  # filled meanwhile (another rank or run): leave it
            return
        if path.name == ".partial":
            return


def remove_stale_temporaries(out_dir: Path, run_name: str) -> None:
    """Temporary files of this run's outputs left by a killed write (``.RUN.*.tmp``)."""
    if out_dir.is_dir():
        for leftover in out_dir.glob(f".{run_name}.*.tmp"):
            leftover.unlink(missing_ok=True)


def tensors_to_cpu(states: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        name: {k: v.cpu() if isinstance(v, torch.Tensor) else [t.cpu() for t in v] for k, v in state.items()}
        for name, state in states.items()
    }
