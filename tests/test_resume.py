"""A run killed halfway resumes and ends with the numbers of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from conftest import interrupted_at, run_cli, start_held_run, wait_for_file


def _metrics(path: Path) -> dict:
    return {k: v["value"] for k, v in json.loads(path.read_text())["metrics"].items()}


def _kill_in_batch_two(args: list, out: Path, env: dict[str, str]) -> None:
    """Start ``vtbench run ARGS --out OUT`` as a process of its own, SIGKILL it while it holds
    in its second batch (the first batch's checkpoint is written by then)."""
    release = out.parent / f"{out.name}-release"
    process = start_held_run(args, out, env, release, at=2)
    wait_for_file(Path(f"{release}.held"), process)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


CHECKPOINT_EVERY_BATCH = ["-b", "2", "--checkpoint-every", "1", "--checkpoint-seconds", "0", "--workers", "0"]


def test_kill_and_resume_equals_uninterrupted(plugin_env: dict[str, str], photo_folder: Path, tmp_path: Path) -> None:
    """SIGKILL of the main process only (what the OOM killer does): its loader worker outlives
    it for a while, and the rerun right after still takes the run over and resumes."""
    args = ["-t", "test-noisy", "-d", photo_folder, *CHECKPOINT_EVERY_BATCH[:-2], "--workers", "1", "--resolution", "48"]
    name = f"test-noisy__{photo_folder.name}"
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    run_cli("run", *args, "--out", reference, env=plugin_env)
    _kill_in_batch_two(args, interrupted, plugin_env)
    assert (interrupted / ".partial" / name / "state.safetensors").exists() and not (interrupted / f"{name}.json").exists()

    run_cli("run", *args, "--out", interrupted, env=plugin_env)
    assert _metrics(interrupted / f"{name}.json") == _metrics(reference / f"{name}.json")
    resumed_rows = (interrupted / f"{name}.images.csv").read_text().splitlines()
    reference_rows = (reference / f"{name}.images.csv").read_text().splitlines()
    assert resumed_rows == reference_rows and len(resumed_rows) == 13
    assert not (interrupted / ".partial").exists()


def test_partial_state_from_other_settings_is_refused(plugin_env: dict[str, str], photo_folder: Path, tmp_path: Path) -> None:
    args = ["-t", "test-slow", "-d", photo_folder, *CHECKPOINT_EVERY_BATCH]
    name = f"test-slow__{photo_folder.name}"
    run_cli("run", *args, "--resolution", "32", "--out", tmp_path, env=interrupted_at(plugin_env, 2), check=130)
    result = run_cli("run", *args, "--resolution", "40", "--out", tmp_path, env=plugin_env, check=2)
    assert "different settings" in result.stderr and "--restart" in result.stderr
    run_cli("run", *args, "--resolution", "40", "--restart", "--out", tmp_path, env=plugin_env)
    record = json.loads((tmp_path / f"{name}.json").read_text())
    assert record["protocol"]["evaluation_sizes"] == {"40x40": 12}


def test_same_command_twice_gives_the_same_numbers(tmp_path: Path, photo_folder: Path) -> None:
    for out in ("a", "b"):
        run_cli("run", "-t", "webp-q50", "-d", photo_folder, "--resolution", "64", "--out", tmp_path / out)
    name = f"webp-q50__{photo_folder.name}"
    assert _metrics(tmp_path / "a" / f"{name}.json") == _metrics(tmp_path / "b" / f"{name}.json")
