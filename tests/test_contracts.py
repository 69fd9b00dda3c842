"""Contracts checked on every registered component.

Metrics (after torchmetrics' MetricTester): on synthetic inputs of its kind, a
split-and-merged pass equals one pass, the state survives the checkpoint encoding, ``reset``
restores the empty state, and direction, unit and kind are declared as data and listed by
``vtbench list metrics``. A metric added in one file with one registry line is picked up here
without editing this file; only a metric whose network needs files gets them below
(``network_files``).

Tokenizer presets: their metadata is consistent data, and a preset either builds here (then
its ``info`` agrees with its tags) or says by name which file it needs and how to get it."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from weights_factory import tiny_clip_model

from conftest import run_cli
from vtbench.engine.partial_state import decode_state, encode_state
from vtbench.errors import ComponentOptionError
from vtbench.metrics import METRICS, Metric, MetricBatch, TextReading
from vtbench.tokenizers import TOKENIZERS
from vtbench.weights import WeightsUnavailableError

KINDS = ("quality", "cost", "distribution", "text")
IMAGES_PER_BATCH, BATCHES = 4, 3
OCR_READINGS = ["the quick brown fox", "the quick brovvn fox", "tne qu1ck brown", "", "quick brown fox jumps"]


@pytest.fixture(scope="module")
def network_files(tmp_path_factory: pytest.TempPathFactory, alexnet_weights: Path, vgg16_weights: Path) -> dict[str, Any]:
    """Files in the published layouts for the metrics whose networks need them."""
    root = tmp_path_factory.mktemp("metric-networks")
    from weights_factory import make_i3d_torchscript

    return {"alexnet": alexnet_weights, "vgg16": vgg16_weights, "clip": tiny_clip_model(root / "clip"),
            "i3d": make_i3d_torchscript(root / "i3d_torchscript.pt")}  # fmt: skip


def _environment(files: dict[str, Any]) -> dict[str, str]:
    return {"VTBENCH_WEIGHTS_ALEXNET": str(files["alexnet"]), "VTBENCH_WEIGHTS_VGG16": str(files["vgg16"]),
            "VTBENCH_WEIGHTS_I3D_TORCHSCRIPT": str(files["i3d"])}  # fmt: skip


def _options(name: str, files: dict[str, Any]) -> dict[str, Any]:
    return {"weights": str(files["clip"])} if name == "clip-score" else {}


def _prepared(name: str, files: dict[str, Any]) -> Metric:
    """The metric with its own networks loaded (its weights found as a run finds them); its
    extractor's features come synthetic in the batch, so the extractor is not built."""
    from vtbench import weights

    metric = METRICS.create(name, **_options(name, files))
    metric.prepare({w: weights.locate(w) for w in metric.required_weights}, torch.device("cpu"))
    return metric


def synthetic_batch(metric: Metric, seed: int) -> MetricBatch:
    """Inputs of every kind a metric may read: smooth images and 8-bit reconstructions (at the
    metric's least size), tokens and the tokenizer (8x resample ids), features of the width the
    metric declares for its extractor, OCR readings with transcripts, and prompts. A metric defined
    for clips gets clips of 3 frames at 24 fps, as a video run hands them over."""
    from vtbench.engine.transforms import clip_tokens

    generator = torch.Generator().manual_seed(seed)
    side = max(64, metric.min_size)
    n, frames = IMAGES_PER_BATCH, 3 if metric.needs_clips else 1
    coarse = torch.rand(n * frames, 3, side // 8, side // 8, generator=generator)
    originals = torch.nn.functional.interpolate(coarse, size=(side, side), mode="bilinear", align_corners=False).clamp(0, 1)
    noise = 0.02 + 0.08 * torch.rand(n * frames, 1, 1, 1, generator=generator)
    recon = (originals + noise * torch.randn(originals.shape, generator=generator)).clamp(0, 1).mul(255).round().div(255)
    tokenizer = TOKENIZERS.create("resample-x8")
    tokens = tokenizer.encode(originals) if frames == 1 else clip_tokens([tokenizer.encode(originals)], n)
    features: dict[str, Any] = {}
    if metric.extractor:
        features[metric.extractor] = {
            side_name: {feature: torch.randn(n, dim, generator=generator) + shift for feature, dim in metric.feature_dims.items()}
            for side_name, shift in (("originals", 0.0), ("reconstructions", 0.3))
        }
    choice = torch.randint(0, len(OCR_READINGS), (n,), generator=generator).tolist()
    text = [[TextReading(OCR_READINGS[0], "en", "small", OCR_READINGS[c], OCR_READINGS[(c + 1) % len(OCR_READINGS)])] for c in choice]
    meta = [{"prompt": "a photograph of a fox", "index": seed * n + i} for i in range(n)]
    ids = [f"image-{seed}-{i}" for i in range(n)]
    return MetricBatch(ids, originals, recon, tokens=tokens, meta=meta, features=features, text=text, tokenizer=tokenizer,
                       frames_per_clip=frames, fps=[24.0] * n if frames > 1 else None)  # fmt: skip


def _same(a: float, b: float, rel: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=rel, abs=1e-12)


def _states_equal(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def flat(value: Any) -> list[torch.Tensor]:
        return [value] if isinstance(value, torch.Tensor) else list(value)

    return a.keys() == b.keys() and all(
        len(flat(a[k])) == len(flat(b[k])) and all(torch.equal(x, y) for x, y in zip(flat(a[k]), flat(b[k]), strict=True)) for k in a
    )


@pytest.mark.parametrize("name", METRICS.names())
def test_every_metric_keeps_the_contract(name: str, network_files: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in _environment(network_files).items():
        monkeypatch.setenv(key, value)
    prepared = _prepared(name, network_files)  # its networks loaded once; each pass below starts from a copy

    def fresh() -> Metric:
        return copy.deepcopy(prepared)

    whole = fresh()
    batches = [synthetic_batch(whole, seed) for seed in range(BATCHES)]
    declared = whole.declared()
    assert declared["kind"] in KINDS and isinstance(declared["unit"], str) and declared["aggregation"]  # "mean": per image, averaged
    assert declared["higher_is_better"] in (True, False, None)

    for batch in batches:
        values = whole.update(batch)
        if values is not None:  # per-image values: one float per image
            assert values.shape == (IMAGES_PER_BATCH,) and values.dtype == torch.float64
    value = whole.compute()
    assert whole.count == IMAGES_PER_BATCH * BATCHES or declared["aggregation"] != "mean"

    left, right = fresh(), fresh()
    for batch in batches[:-1]:
        left.update(batch)
    right.update(batches[-1])
    left.merge_state(right)
    merged = left.compute()
    assert _same(merged, value, rel=1e-9), f"{name}: split and merged {merged} != one pass {value}"

    _, tensors = decode_state(encode_state({}, {name: whole.state_dict()}))
    restored = fresh()
    restored.load_state_dict(tensors[name])
    assert _same(restored.compute(), value, rel=0), f"{name}: the state changed through the checkpoint encoding"

    whole.reset()
    assert _states_equal(whole.state_dict(), fresh().state_dict()), f"{name}: reset left state behind"


def test_list_metrics_shows_direction_unit_and_kind() -> None:
    listed = {row["name"]: row for row in json.loads(run_cli("list", "metrics", "--json").stdout)["entries"]}
    assert set(listed) == set(METRICS.names())
    for name in ("psnr", "fid", "bpp", "cer"):
        declared = METRICS.create(name).declared()
        assert {key: listed[name][key] for key in declared} == declared
    table = run_cli("list", "metrics").stdout
    assert "psnr" in table and "↑" in table and "↓" in table and "distribution" in table


FAMILIES = ("discrete", "continuous", "codec", "pixel")
FIXES = ("vtbench weights fetch", "hf download", "VTBENCH_WEIGHTS_", "pip install", "--weights")


@pytest.mark.parametrize("name", TOKENIZERS.names())
def test_every_tokenizer_preset_agrees_with_what_it_builds(name: str) -> None:
    tags = TOKENIZERS.get(name).tags
    assert tags.get("family") in FAMILIES, f"{name}: family {tags.get('family')!r}"
    for key in ("codebook_size", "tokens_per_image", "native_resolution"):
        assert key not in tags or (isinstance(tags[key], int) and tags[key] > 0), f"{name}: {key} {tags.get(key)!r}"
    if tags["family"] == "discrete" and "codebook_size" in tags:
        assert tags["codebook_size"] >= 2
    try:
        tokenizer = TOKENIZERS.create(name)
    except WeightsUnavailableError as exc:  # offline and without its files: it says which, and how to get them
        assert any(fix in str(exc) for fix in FIXES), f"{name}: {exc}"
        return
    except ComponentOptionError as exc:  # a family's bare entry: its presets give the options
        assert str(exc).startswith(f"tokenizer {name!r}: ") and not any(key in tags for key in ("codebook_size", "native_resolution"))
        return
    info = tokenizer.info
    assert info.family == tags["family"]
    for key in ("codebook_size", "tokens_per_image", "native_resolution", "quantizer"):
        if key in tags:
            assert getattr(info, key) == tags[key], f"{name}: info.{key} {getattr(info, key)!r} != preset {tags[key]!r}"
