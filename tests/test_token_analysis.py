"""Token-space analysis: code statistics against hand computations on constructed id grids,
token consistency and re-encode stability against an independent computation, and the AR
probe learning a synthetic source of known entropy rate (deterministic and resumable)."""

from __future__ import annotations

import io
import json
import math
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run_cli
from vtbench.metrics import METRICS
from vtbench.metrics.base import MetricBatch
from vtbench.probe import RECIPES, train_probe
from vtbench.tokenizers.base import Tokens


def _statistic(name: str, ids: torch.Tensor, codebook: int, level_sizes: tuple[int, ...] | None = None) -> tuple[float, dict]:
    metric = METRICS.create(name)
    for chunk in ids.split(5):  # several batches: the pooled counts must not depend on batching
        tokens = Tokens.from_ids(chunk, codebook, (8, 8), level_sizes=level_sizes)
        blank = torch.zeros(len(chunk), 3, 8, 8)
        metric.update(MetricBatch([str(i) for i in range(len(chunk))], blank, blank, tokens=tokens))
    return metric.compute(), metric.details()


def _hand_conditional_entropy(ids: torch.Tensor, order: int) -> float:
    """Plug-in H(code | order-1 raster predecessors) by counting with plain Python."""
    grams: Counter = Counter()
    for image in ids.reshape(len(ids), -1).tolist():
        grams.update(tuple(image[t - order + 1 : t + 1]) for t in range(order - 1, len(image)))
    contexts: Counter = Counter()
    for gram, count in grams.items():
        contexts[gram[:-1]] += count
    total = sum(grams.values())
    joint = -sum(c / total * math.log2(c / total) for c in grams.values())
    context = -sum(c / total * math.log2(c / total) for c in contexts.values())
    return joint - context


def test_code_entropy_of_constructed_grids() -> None:
    constant = torch.full((12, 8, 8), 5)
    assert [_statistic(f"code-entropy-n{n}", constant, 16)[0] for n in (1, 2, 3)] == [0.0, 0.0, 0.0]
    board = ((torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2).expand(12, 8, 8)
    for order in (1, 2, 3):
        value, details = _statistic(f"code-entropy-n{order}", board, 2)
        assert details["plug_in_bits"] == pytest.approx(_hand_conditional_entropy(board, order), abs=1e-12)
        correction = (details["distinct_ngrams"] - details["distinct_contexts"]) / (2 * details["ngrams"] * math.log(2))
        assert value == pytest.approx(details["plug_in_bits"] + correction, abs=1e-12)  # Miller-Madow
    assert _statistic("code-entropy-n1", board, 2)[1]["plug_in_bits"] == pytest.approx(1.0)  # half zeros, half ones
    uniform = torch.randint(0, 4, (400, 8, 8), generator=torch.Generator().manual_seed(0))
    for order in (1, 2, 3):  # i.i.d. ids: every context leaves 2 bits
        assert _statistic(f"code-entropy-n{order}", uniform, 4)[0] == pytest.approx(2.0, abs=0.01)


def test_per_position_and_per_scale_entropies() -> None:
    generator = torch.Generator().manual_seed(1)
    one_d = torch.stack([torch.zeros(600, dtype=torch.int64), torch.randint(0, 4, (600,), generator=generator)], dim=1)
    details = _statistic("code-entropy-n1", one_d, 4)[1]  # a 1-D tokenizer: position 0 constant, position 1 uniform
    assert details["per_position_entropy_bits"][0] == 0.0 and details["per_position_entropy_bits"][1] == pytest.approx(2.0, abs=0.01)
    scales = torch.cat([torch.zeros(50, 1, dtype=torch.int64), torch.randint(0, 4, (50, 4), generator=generator)], dim=1)
    per_scale = _statistic("code-entropy-n1", scales, 4, level_sizes=(1, 4))[1]["per_scale"]
    assert [s["scale"] for s in per_scale] == [0, 1] and per_scale[0]["plug_in_bits"] == 0.0 and per_scale[1]["plug_in_bits"] > 1.9


def test_consistency_and_reencode_stability_through_a_run(tmp_path: Path) -> None:
    metrics = "psnr,code-entropy-n2,token-consistency-shift,token-consistency-flip,token-consistency-jpeg,reencode-stability"
    run_cli("run", "-t", "resample-x4", "-d", "samples", "--limit", "3", "--resolution", "32", "-m", metrics, "--out", tmp_path)
    record = json.loads((tmp_path / "resample-x4__samples.json").read_text())
    with open(tmp_path / "resample-x4__samples.images.csv", newline="") as handle:
        import csv

        rows = list(csv.DictReader(handle))

    def down(array: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(array).resize((8, 8), Image.Resampling.BICUBIC))

    def up(array: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(array).resize((32, 32), Image.Resampling.BICUBIC))

    from vtbench.engine.components import create_dataset
    from vtbench.engine.loading import ImageLoading
    from vtbench.images import Preprocessing

    loading = ImageLoading(create_dataset("samples", {}), Preprocessing(32), range(3))
    for i, row in enumerate(rows):
        original = loading[i].pixels.permute(1, 2, 0).numpy()
        ids = down(original)  # the resample tokenizer's ids are its small image's 8-bit values
        again = down(up(ids))
        assert float(row["reencode-stability"]) == pytest.approx(np.mean(again == ids), abs=1e-12)
        shifted = np.concatenate([original[:, :1], original[:, :-1]], axis=1)
        assert float(row["token-consistency-shift"]) == pytest.approx(np.mean(down(shifted) == ids), abs=1e-12)
        assert float(row["token-consistency-flip"]) == pytest.approx(np.mean(down(original[:, ::-1].copy())[:, ::-1] == ids), abs=1e-12)
        buffer = io.BytesIO()
        Image.fromarray(original).save(buffer, format="JPEG", quality=90, subsampling=0)
        recompressed = np.asarray(Image.open(buffer).convert("RGB"))
        assert float(row["token-consistency-jpeg"]) == pytest.approx(np.mean(down(recompressed) == ids), abs=1e-12)
    stability = record["metrics"]["reencode-stability"]
    assert len(stability["details"]["psnr_by_round_trip"]) == 3 and stability["details"]["id_agreement_by_round_trip"][0] == pytest.approx(
        stability["value"]
    )
    assert record["metrics"]["code-entropy-n2"]["unit"] == "bit/token" and "warnings" in record["metrics"]["code-entropy-n2"]
    # a codec has no ids: the statistics are undefined (null, with the reason), never 0
    run_cli("run", "-t", "jpeg-q50", "-d", "samples", "--limit", "2", "--resolution", "32", "-m", metrics, "--out", tmp_path / "codec")
    codec = json.loads((tmp_path / "codec" / "jpeg-q50__samples.json").read_text())["metrics"]
    assert codec["code-entropy-n2"]["value"] is None and codec["token-consistency-flip"]["status"] == "undefined"


def _markov_source(count: int, length: int, seed: int, transitions: np.ndarray, stationary: np.ndarray) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    ids = np.zeros((count, length), dtype=np.int64)
    ids[:, 0] = rng.choice(len(stationary), count, p=stationary)
    for t in range(1, length):
        cumulative = transitions[ids[:, t - 1]].cumsum(axis=1)
        ids[:, t] = np.minimum((rng.random(count)[:, None] > cumulative).sum(axis=1), len(stationary) - 1)
    return torch.from_numpy(ids)


def test_the_probe_learns_a_source_of_known_entropy_rate_and_resumes_exactly(tmp_path: Path) -> None:
    torch.set_num_threads(2)
    vocab, length = 6, 16
    transitions = np.random.default_rng(0).dirichlet(np.full(vocab, 0.3), size=vocab)
    values, vectors = np.linalg.eig(transitions.T)
    stationary = np.real(vectors[:, np.argmin(np.abs(values - 1))])
    stationary /= stationary.sum()

    def entropy(p: np.ndarray) -> float:
        return float(-(p[p > 0] * np.log2(p[p > 0])).sum())

    rate = sum(stationary[i] * entropy(transitions[i]) for i in range(vocab))
    expected = (entropy(stationary) + (length - 1) * rate) / length  # the first token has no predecessor
    train, validation = _markov_source(1500, length, 1, transitions, stationary), _markov_source(300, length, 2, transitions, stationary)
    recipe = replace(RECIPES["tiny"], width=64, steps=150, eval_every=50, warmup_steps=15)
    result = train_probe(train, validation, vocab, recipe)
    assert result["validation_bits_per_token"] == pytest.approx(expected, abs=0.06), (expected, result["curve"])
    assert result["validation_bits_per_token"] < math.log2(vocab) - 0.5  # far below the uniform code
    # stopped after 60 steps and resumed from its checkpoint: the curve of an uninterrupted run, exactly
    state = tmp_path / "state"
    assert train_probe(train, validation, vocab, recipe, state_dir=state, stop_after=60)["complete"] is False
    resumed = train_probe(train, validation, vocab, recipe, state_dir=state)
    assert resumed["curve"] == result["curve"]


def test_probe_command_writes_a_record_and_refuses_a_codec(tmp_path: Path) -> None:
    out = run_cli("probe", "-t", "resample-x8", "-d", "samples", "--resolution", "32", "--steps", "20", "--out", tmp_path).stdout
    assert "bits/token" in out
    record = json.loads((tmp_path / "resample-x8__samples.probe.json").read_text())
    assert record["schema"] == "vtbench.probe-record" and record["tokens"]["tokens_per_image"] == 4 * 4 * 3
    assert record["tokens"]["validation_images"] >= 1 and record["validation_bits_per_image"] == pytest.approx(
        record["validation_bits_per_token"] * 48
    )
    assert record["recipe"]["steps"] == 20 and len(record["curve"]) == 1 and not (tmp_path / ".partial").exists()
    again = run_cli("probe", "-t", "resample-x8", "-d", "samples", "--resolution", "32", "--steps", "20", "--out", tmp_path / "b").stdout
    assert (
        json.loads((tmp_path / "b" / "resample-x8__samples.probe.json").read_text())["validation_bits_per_token"]
        == record["validation_bits_per_token"]
    )  # deterministic for its seed, the second time from the id cache
    assert "jpeg-q50' has no discrete ids" in run_cli("probe", "-t", "jpeg-q50", "-d", "samples", "--out", tmp_path, check=2).stderr
    assert (
        "setting 'steps' must be at least 1, got -5"
        in run_cli("probe", "-t", "resample-x8", "-d", "samples", "--steps", "-5", "--out", tmp_path, check=2).stderr
    )
    assert "setting 'resolution' must be at least 1, got 0" in run_cli("probe", "-t", "resample-x8", "-d", "samples", "--resolution", "0",
                                                                     "--out", tmp_path, check=2).stderr  # fmt: skip
    assert "bits/token" in again


@pytest.mark.slow  # a second torchrun launch (test_engine has the run's): `make test-all`
def test_the_probe_under_torchrun_gives_the_one_process_numbers(tmp_path: Path) -> None:
    import subprocess
    import sys

    args = ["probe", "-t", "resample-x8", "-d", "samples", "--resolution", "32", "--steps", "12", "--device", "cpu"]
    run_cli(*args, "--out", tmp_path / "one")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "vtbench"]
    result = subprocess.run([*torchrun, *args, "--out", str(tmp_path / "two")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("bits/token") == 1  # rank 0 reports
    one, two = (json.loads((tmp_path / d / "resample-x8__samples.probe.json").read_text()) for d in ("one", "two"))
    assert two["processes"] == 2 and one["tokens"]["cache_key"] == two["tokens"]["cache_key"]
    for a, b in zip(one["curve"], two["curve"], strict=True):  # each process took half of every batch; gradients averaged
        assert b["validation_bits_per_token"] == pytest.approx(a["validation_bits_per_token"], abs=1e-5)
        assert b["train_bits_per_token"] == pytest.approx(a["train_bits_per_token"], abs=1e-5)


def test_a_partial_probe_of_other_data_is_refused_not_continued(tmp_path: Path) -> None:
    from vtbench.engine.partial import identity_sha
    from vtbench.errors import VtbenchError
    from vtbench.images import Preprocessing
    from vtbench.probe import ProbeConfig, encode_dataset, run_probe, split_validation, train_probe

    config = ProbeConfig(tokenizer="resample-x8", dataset="samples", preprocessing=Preprocessing(32), steps=20)
    names, ids, description = encode_dataset(config)
    held = torch.tensor(split_validation(names))
    state = tmp_path / ".partial" / f"probe-{config.run_name}"  # a probe of all 14 images, stopped at step 6
    identity = identity_sha({**config.identity(), "manifest": description["manifest_sha256"]})
    train_probe(ids[~held], ids[held], 256, config.training(), state_dir=state, stop_after=6, identity=identity)
    with pytest.raises(VtbenchError, match="a probe of other settings or data was started here; pass --restart"):
        run_probe(ProbeConfig(tokenizer="resample-x8", dataset="samples", preprocessing=Preprocessing(32), steps=20, limit=4), tmp_path)
    resumed = run_probe(config, tmp_path)  # the same settings and data: it continues
    assert resumed.steps == 20 and not state.exists()
