"""Nothing runs code from a file the user did not write: resume state and checkpoints."""

from __future__ import annotations

import argparse
import json
import pathlib
import pickle
from pathlib import Path

import pytest
import torch

from conftest import run_cli
from vtbench.engine.partial_state import load_state, save_state
from vtbench.errors import CheckpointFormatError, RunStateError
from vtbench.safe_load import Opaque, load_checkpoint


class _TouchOnLoad:
    """Unpickling this calls ``Path(target).touch()``: the payload a crafted file would carry."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.target),))


class _CallsConstructor:
    """Unpickling this constructs ``pathlib.Path(target)`` via REDUCE (a class call, no payload)."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (pathlib.PurePosixPath, (str(self.target),))


def test_training_objects_in_a_checkpoint_become_inert_placeholders(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    torch.save({"model": {"w": torch.arange(3.0)}, "args": argparse.Namespace(lr=0.1), "other": _CallsConstructor(tmp_path / "x")}, path)
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["model"]["w"], torch.arange(3.0))
    assert isinstance(loaded["args"], Opaque) and loaded["args"].qualified_name == "argparse.Namespace"
    assert loaded["args"].state == {"lr": 0.1}
    assert isinstance(loaded["other"], Opaque) and loaded["other"].args == (str(tmp_path / "x"),)


@pytest.mark.parametrize("legacy", [False, True])
def test_a_checkpoint_with_a_payload_is_refused_and_runs_nothing(tmp_path: Path, legacy: bool) -> None:
    target, path = tmp_path / "pwned", tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.ones(1)}, "x": _TouchOnLoad(target)}, path, _use_new_zipfile_serialization=not legacy)
    with pytest.raises(CheckpointFormatError, match=str(path)):
        load_checkpoint(path)
    assert not target.exists()


def test_a_raw_pickle_is_refused(tmp_path: Path) -> None:
    target, path = tmp_path / "pwned", tmp_path / "raw.pt"
    path.write_bytes(pickle.dumps({"x": _TouchOnLoad(target)}))
    with pytest.raises(CheckpointFormatError, match="legacy or raw pickle"):
        load_checkpoint(path)
    assert not target.exists()


def test_crafted_checkpoints_through_the_cli_are_one_line_and_run_nothing(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    for preset, filename in (("llamagen-vq-ds16-c2i", "vq.pt"), ("bsq-vit-b18", "bsq.pt")):
        path = tmp_path / filename
        torch.save({"model": {}, "state_dict": {}, "payload": _TouchOnLoad(target)}, path)
        result = run_cli("run", "-t", preset, "--weights", path, "-d", "samples", "--limit", "1", "--out", tmp_path / "out", check=2)
        assert str(path) in result.stderr and "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert not target.exists()


def test_resume_state_round_trips_without_pickle(tmp_path: Path) -> None:
    path = tmp_path / "state.safetensors"
    tensors = {"psnr": {"total": torch.tensor(3.5, dtype=torch.float64), "n": torch.tensor(2)},
               "fid": {"originals": [torch.ones(2, 4), torch.zeros(1, 4)], "reconstructions": []}}  # fmt: skip
    save_state(path, {"done": 4, "failures": [{"id": "a.png"}], "timings": {"total_s": 1.5}}, tensors)
    plain, loaded = load_state(path)
    assert plain == {"done": 4, "failures": [{"id": "a.png"}], "timings": {"total_s": 1.5}}
    assert torch.equal(loaded["psnr"]["total"], tensors["psnr"]["total"]) and loaded["psnr"]["total"].dtype == torch.float64
    assert [t.shape for t in loaded["fid"]["originals"]] == [(2, 4), (1, 4)] and loaded["fid"]["reconstructions"] == []
    (tmp_path / "bad.safetensors").write_bytes(b"not a state file")
    with pytest.raises(RunStateError, match="bad.safetensors.*--restart"):
        load_state(tmp_path / "bad.safetensors")


def test_an_old_pickled_resume_state_is_never_unpickled(tmp_path: Path) -> None:
    target, out = tmp_path / "pwned", tmp_path / "out"
    partial = out / ".partial" / "jpeg-q50__samples"
    partial.mkdir(parents=True)
    torch.save({"done": 1, "payload": _TouchOnLoad(target)}, partial / "state.pt")
    result = run_cli("run", "-t", "jpeg-q50", "-d", "samples", "--limit", "2", "--out", out, check=2)
    assert "state.pt" in result.stderr and "--restart" in result.stderr and "Traceback" not in result.stderr
    assert not target.exists()
    run_cli("run", "-t", "jpeg-q50", "-d", "samples", "--limit", "2", "--out", out, "--restart")
    assert json.loads((out / "jpeg-q50__samples.json").read_text())["samples"]["evaluated"] == 2
    assert not target.exists()


def test_weights_verify_says_when_no_digest_is_published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vtbench import weights

    assert weights.get("efficientnet-lite0").sha256, "the offline EfficientNet-Lite0 file has a published digest"
    no_digest = [entry.name for entry in weights.WEIGHTS.values() if not entry.sha256]
    assert no_digest, "some store entries publish no digest (e.g. DINOv2)"
    store = Path(weights.home()) / "weights"
    store.mkdir(parents=True, exist_ok=True)
    entry = weights.get(no_digest[0])
    (store / entry.filename).write_bytes(b"anything")
    try:
        output = run_cli("weights", "verify").stdout
    finally:
        (store / entry.filename).unlink()
    assert f"unknown  {entry.name}" in output and "no published digest, recorded hash only" in output
    assert "ok       efficientnet-lite0" in output and "matches the published digest" in output
