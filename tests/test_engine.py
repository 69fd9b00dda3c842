"""The evaluation engine: processes, shards and resumes all end in the record one plain run writes."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import vtbench
from conftest import REPO, interrupted_at, run_cli, start_held_run, wait_for_file
from vtbench.errors import VtbenchError
from vtbench.images import Preprocessing

METRICS = ["-m", "psnr", "-m", "ssim", "-m", "fd-efficientnet-lite0", "-m", "codebook-usage"]


def _record(out: Path, run: str) -> dict:
    return json.loads((out / f"{run}.json").read_text())


def _assert_same_record(single: dict, other: dict, out_a: Path, out_b: Path) -> None:
    """Pixel metrics and rows exactly equal; Fréchet distances within 1e-6 relative."""
    for name, entry in single["metrics"].items():
        value = other["metrics"][name]["value"]
        if entry.get("extractor"):
            assert value == pytest.approx(entry["value"], rel=1e-6), name
        else:
            assert value == entry["value"] or (value != value and entry["value"] != entry["value"]), name
            assert other["metrics"][name].get("ci95") == entry.get("ci95"), name
    assert other["samples"] == single["samples"]
    assert other["dataset"]["manifest_sha256"] == single["dataset"]["manifest_sha256"]
    run = single["run_name"]
    assert (out_b / f"{run}.images.csv").read_text() == (out_a / f"{run}.images.csv").read_text()


def test_two_processes_write_the_record_of_one(photo_folder: Path, tmp_path: Path) -> None:
    args = ["-t", "jpeg-q50", "-d", photo_folder, "--resolution", "64", *METRICS, "--workers", "0", "-b", "3"]
    run_cli("run", *args, "--out", tmp_path / "one")
    torchrun = Path(sys.executable).with_name("torchrun")
    result = subprocess.run(
        [str(torchrun), "--nproc-per-node", "2", "-m", "vtbench", "run", *map(str, args), "--out", str(tmp_path / "two")],
        capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    run = f"jpeg-q50__{photo_folder.name}"
    single, double = _record(tmp_path / "one", run), _record(tmp_path / "two", run)
    _assert_same_record(single, double, tmp_path / "one", tmp_path / "two")
    assert double["memory"]["processes"] == 2 and single["memory"]["processes"] == 1
    assert not (tmp_path / "two" / ".partial").exists()


def test_shards_merge_into_the_record_of_one_run(photo_folder: Path, tmp_path: Path) -> None:
    args = ["-t", "webp-q50", "-d", photo_folder, "--resolution", "64", *METRICS, "--workers", "0"]
    run_cli("run", *args, "--out", tmp_path / "one")
    for k in (2, 0, 1):  # any order, as a job array runs them
        result = run_cli("run", *args, "--shard", f"{k}/3", "--out", tmp_path / "shards")
        assert "vtbench merge" in result.stdout
    run = f"webp-q50__{photo_folder.name}"
    assert not (tmp_path / "shards" / f"{run}.json").exists()
    run_cli("merge", tmp_path / "shards", "--out", tmp_path / "merged")
    _assert_same_record(_record(tmp_path / "one", run), _record(tmp_path / "merged", run), tmp_path / "one", tmp_path / "merged")

    other = tmp_path / "other-settings"  # refusals: PSNR alone is enough
    quick = ["-t", "webp-q50", "-d", photo_folder, "--resolution", "64", "-m", "psnr", "--workers", "0"]
    for k in (0, 1, 2):
        run_cli("run", *quick, "--shard", f"{k}/3", "--out", other, *(["--filter", "lanczos"] if k == 1 else []))
    assert "shard-1-of-3 were made with other settings" in run_cli("merge", other, "--out", tmp_path / "x", check=2).stderr
    (other / f"{run}.shards" / "shard-1-of-3" / "state.safetensors").unlink()
    (other / f"{run}.shards" / "shard-1-of-3" / "rows.csv").unlink()
    (other / f"{run}.shards" / "shard-1-of-3").rmdir()
    assert "missing shard(s) 1 of 3" in run_cli("merge", other, "--out", tmp_path / "x", check=2).stderr


GENERATION = ["-g", "test-noise", "--expected-samples", "20", "-m", "fd-efficientnet-lite0", "-m", "kid", "-b", "4"]


def test_a_generation_run_resumes_after_an_interrupt(plugin_env: dict[str, str], photo_folder: Path, tmp_path: Path) -> None:
    args = [*GENERATION, "--reference", photo_folder, "--resolution", "48", "--skip-unavailable"]
    run_cli("run", *args, "--out", tmp_path / "whole", env=plugin_env)
    run = f"test-noise__{photo_folder.name}"
    stopped = run_cli("run", *args, "--out", tmp_path / "stopped", env=interrupted_at(plugin_env, 3), check=130)
    assert "progress up to the last complete batch is kept" in stopped.stdout
    assert not (tmp_path / "stopped" / f"{run}.json").exists()
    resumed = run_cli("run", *args, "--out", tmp_path / "stopped", env=plugin_env)
    assert f"{run}: resuming at " in resumed.stderr
    whole, resumed = _record(tmp_path / "whole", run), _record(tmp_path / "stopped", run)
    assert whole["task"] == "generation" and whole["samples"]["evaluated"] == 20 and whole["samples"]["reference"]["evaluated"] == 12
    assert resumed["metrics"]["fd-efficientnet-lite0"]["value"] == pytest.approx(
        whole["metrics"]["fd-efficientnet-lite0"]["value"], rel=1e-9
    )
    assert resumed["samples"] == whole["samples"]


def test_ctrl_c_keeps_every_complete_batch_and_resumes_exactly(plugin_env: dict[str, str], photo_folder: Path, tmp_path: Path) -> None:
    """A real Ctrl-C (SIGINT to a process of its own) three batches in, before any periodic checkpoint."""
    args = ["-t", "test-noisy", "-d", photo_folder, "--resolution", "40", "-b", "1", "--workers", "0", "-m", "psnr", "-m", "ssim"]
    run_cli("run", *args, "--out", tmp_path / "whole", env=plugin_env)
    run = f"test-noisy__{photo_folder.name}"
    stopped = [*args, "--checkpoint-seconds", "3600"]
    release = tmp_path / "release"
    process = start_held_run(stopped, tmp_path / "stopped", plugin_env, release, at=3)
    wait_for_file(Path(f"{release}.held"), process)
    assert not (tmp_path / "stopped" / ".partial" / run / "state.safetensors").exists()
    process.send_signal(signal.SIGINT)
    release.touch()  # the batch in progress completes, then the run saves and stops
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "progress up to the last complete batch is kept" in out
    assert (tmp_path / "stopped" / ".partial" / run / "state.safetensors").exists()
    result = run_cli("run", *stopped, "--out", tmp_path / "stopped", env=plugin_env)
    assert "already done" not in result.stdout and f"{run}: resuming at 3/12" in result.stderr
    assert _record(tmp_path / "stopped", run)["metrics"]["psnr"]["value"] == _record(tmp_path / "whole", run)["metrics"]["psnr"]["value"]
    assert (tmp_path / "stopped" / f"{run}.images.csv").read_text() == (tmp_path / "whole" / f"{run}.images.csv").read_text()


def test_strict_stop_then_resume_counts_each_image_once(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    (folder / "3b.png").write_bytes(b"broken")  # sorts between 3.png and 4.png, inside the first batch of 4
    args = ["-t", "jpeg-q50", "-d", folder, "-b", "4", "--workers", "0", "-m", "psnr", "--checkpoint-seconds", "0"]
    stopped = run_cli("run", *args, "--strict", "--out", tmp_path / "out", check=2)
    assert "3b.png" in stopped.stderr and "--strict" in stopped.stderr
    run_cli("run", *args, "--no-strict", "--out", tmp_path / "out")
    record = _record(tmp_path / "out", "jpeg-q50__images")
    assert record["samples"]["requested"] == 7 and record["samples"]["evaluated"] == 6 and record["samples"]["failed"] == 1
    run_cli("run", *args, "--out", tmp_path / "plain")
    assert record["metrics"]["psnr"]["value"] == _record(tmp_path / "plain", "jpeg-q50__images")["metrics"]["psnr"]["value"]
    ids = [row["id"] for row in csv.DictReader((tmp_path / "out" / "jpeg-q50__images.images.csv").open())]
    assert ids == ["0.png", "1.png", "2.png", "3.png", "3b.png", "4.png", "5.png"]


def test_a_second_concurrent_run_is_refused(plugin_env: dict[str, str], photo_folder: Path, tmp_path: Path) -> None:
    args = ["-t", "test-slow", "-d", photo_folder, "--resolution", "32", "-b", "1", "--workers", "0"]
    release = tmp_path / "release"
    first = start_held_run(args, tmp_path / "out", plugin_env, release)  # holds in its first batch
    wait_for_file(Path(f"{release}.held"), first)
    second = run_cli("run", *args, "--out", tmp_path / "out", env=plugin_env, check=2)
    assert "in use by another vtbench run" in second.stderr and f"pid {first.pid}" in second.stderr
    release.touch()
    assert first.wait(timeout=120) == 0  # the first run finishes undisturbed


def test_resume_names_files_that_changed(plugin_env: dict[str, str], photo_folder: Path, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "photos"
    shutil.copytree(photo_folder, folder)
    args = ["-t", "test-slow", "-d", folder, "--resolution", "32", "-b", "2", "--workers", "0", "--checkpoint-seconds", "0"]
    run_cli("run", *args, "--out", tmp_path / "out", env=interrupted_at(plugin_env, 2), check=130)
    (folder / "coins_small.jpg").unlink()
    result = run_cli("run", *args, "--out", tmp_path / "out", env=plugin_env, check=2)
    assert "dataset changed" in result.stderr and "removed: coins_small.jpg" in result.stderr


def test_a_failing_metric_fails_its_run_by_name_and_other_runs_finish(plugin_env: dict[str, str], tmp_path: Path) -> None:
    args = ["-t", "jpeg-q50", "-t", "webp-q50", "-d", "samples", "--resolution", "32", "-b", "4", "--workers", "0"]
    run_cli("run", *args, "--limit", "4", "--out", tmp_path, env=plugin_env)  # one batch: the metric never fails
    again = run_cli("run", *args, "--limit", "4", "--out", tmp_path, env=plugin_env)
    assert again.stdout.count("already done") == 2
    result = run_cli("run", *args, "-m", "psnr", "-m", "test-fails", "--limit", "8", "--out", tmp_path / "b", env=plugin_env, check=1)
    assert "run jpeg-q50__samples failed" in result.stderr and "metric 'test-fails'" in result.stderr
    assert "ZeroDivisionError" in result.stderr
    assert "Traceback" not in result.stderr


def test_settings_are_checked_by_type_in_recipes_and_on_the_command_line(tmp_path: Path) -> None:
    cases = {
        "checkpoint_seconds: soon": "setting 'checkpoint_seconds' must be a number, got 'soon'",
        'strict: "no"': "setting 'strict' must be true or false, got 'no'",
        'preprocessing: {resolution: "256"}': "resolution must be a whole number of pixels, got '256'",
        "batch_size: 0": "setting 'batch_size' must be at least 1",
        "device: tpu": "setting 'device' must be auto, cpu, cuda",
    }
    recipes = []
    for i, line in enumerate(cases):
        recipes.append(tmp_path / f"r{i}.yaml")
        recipes[-1].write_text(f"tokenizers: [jpeg-q50]\ndatasets: [samples]\n{line}\n")
    errors = run_cli("validate", "--no-weights", *recipes, check=2).stderr.strip().splitlines()  # one process for all
    assert len(errors) == len(cases)  # one line per recipe, each naming its file and setting
    for recipe, error, message in zip(recipes, errors, cases.values(), strict=True):
        assert message in error and str(recipe) in error, error
    for args, message in (
        (["--limit", "-1"], "setting 'limit' must be at least 1"),
        (["--device", "tpu"], "setting 'device' must be auto, cpu, cuda"),
        (["-t", "jpeg:quality=high"], "option 'quality' must be an integer, got 'high'"),
        (["-t", "jpeg:qualty=5"], "unknown option 'qualty'. Did you mean: quality?"),
        (["--shard", "3/2"], "K must be in 0..N-1"),
    ):
        tokenizer = [] if "-t" in args else ["-t", "jpeg-q50"]
        result = run_cli("run", *tokenizer, "-d", "samples", *args, "--out", tmp_path / "x", check=2)
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_two_option_variants_of_one_tokenizer_in_one_command(tmp_path: Path) -> None:
    run_cli("run", "-t", "jpeg:quality=30,label=jpeg-low", "-t", "jpeg:quality=90,label=jpeg-high", "-d", "samples", "--limit", "2",
            "--resolution", "32", "-m", "psnr", "--out", tmp_path)  # fmt: skip
    low, high = _record(tmp_path, "jpeg-low__samples"), _record(tmp_path, "jpeg-high__samples")
    assert low["tokenizer"]["options"]["quality"] == 30 and high["tokenizer"]["options"]["quality"] == 90
    assert high["metrics"]["psnr"]["value"] > low["metrics"]["psnr"]["value"]


def test_python_api_settings_are_checked_too() -> None:
    import vtbench
    from vtbench.engine import SettingsError

    with pytest.raises(SettingsError, match="'batch_size' must be an integer, got '8'"):
        vtbench.RunConfig("jpeg-q50", "samples", batch_size="8")
    config = vtbench.RunConfig("jpeg-q50", "samples", preprocessing={"resolution": 64}, checkpoint_seconds=1)
    assert config.preprocessing.resolution == 64 and config.checkpoint_seconds == 1.0
    assert config.metrics == ["psnr", "ssim", "bpp", "tokens"]
    assert "evaluate" in dir(vtbench) and "GenerationConfig" in dir(vtbench)


def test_saved_reconstructions_stay_inside_the_output_folder(tmp_path: Path) -> None:
    from vtbench.engine.outputs import reconstruction_path

    out = tmp_path / "out"
    for image_id in ("../../evil.png", "/etc/passwd", "a/../../b.jpg", "..", "=1+2;cmd.png", "sub/dir/ok.png"):
        path = reconstruction_path(out, "run", image_id).resolve()
        assert path.is_relative_to((out / "run.recon").resolve()) and path.suffix == ".png", image_id
    assert reconstruction_path(out, "run", "sub/dir/ok.png") == out / "run.recon" / "sub" / "dir" / "ok.png"


def test_an_output_path_that_cannot_be_a_folder_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    for out in (tmp_path / "file", tmp_path / "file" / "below"):
        result = run_cli("run", "-t", "jpeg-q50", "-d", "samples", "--limit", "1", "--out", out, check=2)
        assert str(out) in result.stderr and "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_killed_shard_resumes_and_merges_into_the_record_of_one_run(
    plugin_env: dict[str, str], photo_folder: Path, tmp_path: Path
) -> None:
    """Each slice (a --shard, or a torchrun rank) keeps its own partial state and resumes alone."""
    args = [
        "-t",
        "test-noisy",
        "-d",
        photo_folder,
        "--resolution",
        "40",
        "-b",
        "2",
        "--workers",
        "0",
        "-m",
        "psnr",
        "--checkpoint-seconds",
        "0",
    ]
    run_cli("run", *args, "--out", tmp_path / "one", env=plugin_env)
    run_cli("run", *args, "--shard", "0/2", "--out", tmp_path / "shards", env=plugin_env)
    run = f"test-noisy__{photo_folder.name}"
    run_cli("run", *args, "--shard", "1/2", "--out", tmp_path / "shards", env=interrupted_at(plugin_env, 2), check=130)
    assert (tmp_path / "shards" / ".partial" / run / "slice-1-of-2" / "state.safetensors").exists()
    assert (tmp_path / "shards" / f"{run}.shards" / "shard-0-of-2").is_dir()
    assert not (tmp_path / "shards" / f"{run}.shards" / "shard-1-of-2").exists()
    run_cli("run", *args, "--shard", "1/2", "--out", tmp_path / "shards", env=plugin_env)
    run_cli("merge", tmp_path / "shards", "--out", tmp_path / "merged")
    _assert_same_record(_record(tmp_path / "one", run), _record(tmp_path / "merged", run), tmp_path / "one", tmp_path / "merged")


def test_run_prints_a_json_summary_for_scripts_and_nothing_when_quiet(tmp_path: Path) -> None:
    args = ["-t", "jpeg-q50", "-d", "samples", "--limit", "2", "--resolution", "32", "-m", "psnr", "-m", "codebook-usage"]
    summary = json.loads(run_cli("run", *args, "--out", tmp_path, "--json").stdout)
    (run,) = summary["runs"]
    assert run["run_name"] == "jpeg-q50__samples" and run["evaluated"] == 2 and Path(run["record"]).is_file()
    assert run["metrics"]["psnr"] > 20 and run["metrics"]["codebook-usage"] is None  # undefined for a codec: null
    assert run_cli("run", *args, "--out", tmp_path / "q", "--quiet").stdout == ""


def test_evaluate_reports_progress_to_a_callback(tmp_path: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    config = vtbench.RunConfig("identity", "samples", metrics=["psnr"], limit=5, batch_size=2, preprocessing=Preprocessing(64))
    vtbench.evaluate(config, tmp_path, progress=lambda run, done, total: calls.append((run, done, total)))
    assert calls == [("identity__samples", done, 5) for done in (0, 2, 4, 5)]
    with pytest.raises(VtbenchError, match="progress must be"):
        vtbench.evaluate(config, tmp_path / "other", progress="yes")  # type: ignore[arg-type]
