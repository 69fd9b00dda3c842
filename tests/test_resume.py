"""A run killed halfway resumes and ends with the numbers of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import run_cli


def _metrics(path: Path) -> dict:
    return {k: v["value"] for k, v in json.loads(path.read_text())["metrics"].items()}


def test_kill_and_resume_equals_uninterrupted(plugin_env: dict[str, str], photo_folder: Path, tmp_path: Path) -> None:
    args = [
        "-t",
        "test-noisy",
        "-d",
        photo_folder,
        "-b",
        "2",
        "--checkpoint-every",
        "1",
        "--checkpoint-seconds",
        "0",
        "--resolution",
        "48",
        "--workers",
        "0",
    ]
    reference = tmp_path / "reference"
    run_cli("run", *args, "--out", reference, env=plugin_env)

    interrupted = tmp_path / "interrupted"
    env = {**plugin_env, "VTBENCH_TEST_SLEEP": "0.4"}
    process = subprocess.Popen(
        [sys.executable, "-m", "vtbench", "run", *map(str, args), "--out", str(interrupted)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state = interrupted / ".partial" / f"test-noisy__{photo_folder.name}" / "state.pt"
    deadline = time.time() + 120
    while time.time() < deadline and not state.exists():
        time.sleep(0.05)
    time.sleep(0.5)
    assert process.poll() is None, "the run finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (interrupted / f"test-noisy__{photo_folder.name}.json").exists()

    run_cli("run", *args, "--out", interrupted, env=plugin_env)
    name = f"test-noisy__{photo_folder.name}"
    assert _metrics(interrupted / f"{name}.json") == _metrics(reference / f"{name}.json")
    resumed_rows = (interrupted / f"{name}.images.csv").read_text().splitlines()
    reference_rows = (reference / f"{name}.images.csv").read_text().splitlines()
    assert resumed_rows == reference_rows and len(resumed_rows) == 13
    assert not (interrupted / ".partial").exists()


def test_partial_state_from_other_settings_is_refused(plugin_env: dict[str, str], photo_folder: Path, tmp_path: Path) -> None:
    args = [
        "-t",
        "test-slow",
        "-d",
        photo_folder,
        "-b",
        "2",
        "--checkpoint-every",
        "1",
        "--checkpoint-seconds",
        "0",
        "--workers",
        "0",
        "--out",
        tmp_path,
    ]
    env = {**plugin_env, "VTBENCH_TEST_SLEEP": "0.4"}
    process = subprocess.Popen(
        [sys.executable, "-m", "vtbench", "run", *map(str, args), "--resolution", "32"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state = tmp_path / ".partial" / f"test-slow__{photo_folder.name}" / "state.pt"
    deadline = time.time() + 120
    while time.time() < deadline and not state.exists():
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    result = run_cli("run", *args, "--resolution", "40", env=plugin_env, check=2)
    assert "different settings" in result.stderr and "--restart" in result.stderr
    run_cli("run", *args, "--resolution", "40", "--restart", env=plugin_env)
    record = json.loads((tmp_path / f"test-slow__{photo_folder.name}.json").read_text())
    assert record["protocol"]["evaluation_sizes"] == {"40x40": 12}


def test_same_command_twice_gives_the_same_numbers(tmp_path: Path, photo_folder: Path) -> None:
    for out in ("a", "b"):
        run_cli("run", "-t", "webp-q50", "-d", photo_folder, "--resolution", "64", "--out", tmp_path / out)
    name = f"webp-q50__{photo_folder.name}"
    assert _metrics(tmp_path / "a" / f"{name}.json") == _metrics(tmp_path / "b" / f"{name}.json")
