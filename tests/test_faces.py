"""Face identity preservation: the dlib engine (real weights from PyPI) against dlib's own
API, the insightface engine on an ArcFace-contract ONNX model the test makes, TokBench's face
set with its boxes and keypoints, and the built-in ``faces`` suite."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vtbench import RunConfig, evaluate, load_images
from vtbench.datasets.faces import FaceSuite
from vtbench.faces.base import found_again
from vtbench.weights import locate

QUALITIES = (90, 30, 8)


@functools.cache
def dlib_models():  # noqa: ANN201 - dlib's landmark model and encoder, loaded once
    import dlib

    return dlib.shape_predictor(str(locate("dlib-shape-predictor-5").path)), dlib.face_recognition_model_v1(
        str(locate("dlib-face-resnet").path)
    )


def dlib_similarity(original: np.ndarray, reconstruction: np.ndarray, boxes: list) -> float:
    """Mean cosine similarity over the faces in ``boxes``, straight from dlib's API: one face
    at a time, aligned on the original's 5 landmarks."""
    import dlib

    landmarks, encoder = dlib_models()
    similarities = []
    for box in boxes:
        shape = landmarks(original, dlib.rectangle(*(int(round(v)) for v in box)))
        a = np.array(encoder.compute_face_descriptor(original, shape))
        b = np.array(encoder.compute_face_descriptor(reconstruction, shape))
        similarities.append(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    return float(np.mean(similarities))


def dlib_found(original: np.ndarray, reconstruction: np.ndarray, boxes: list) -> tuple[int, int]:
    """How many faces of ``boxes`` dlib's detector finds on the original, and of those on the reconstruction."""
    import dlib

    detector = dlib.get_frontal_face_detector()
    on_original = [(r.left(), r.top(), r.right(), r.bottom()) for r in detector(original, 1)]
    on_reconstruction = [(r.left(), r.top(), r.right(), r.bottom()) for r in detector(reconstruction, 1)]
    found = [found_again(box, on_original) for box in boxes]
    return sum(found), sum(f and found_again(box, on_reconstruction) for box, f in zip(boxes, found, strict=True))


@pytest.fixture(scope="module")
def jpeg_face_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """face-similarity of the two portraits at three JPEG qualities; face-recall of the whole
    suite (11 faces, 9 of them small in the mosaic) at the lowest."""
    out = tmp_path_factory.mktemp("faces")
    runs = [(f"jpeg-q{q}", q, ["face-similarity"], 2) for q in QUALITIES] + [("jpeg-q8-recall", QUALITIES[-1], ["face-recall"], None)]
    for label, quality, metrics, limit in runs:
        config = RunConfig("jpeg", "faces", tokenizer_options={"quality": quality}, label=label, num_workers=0, metrics=metrics,
                           limit=limit, save_reconstructions=True, use_cache=False)  # fmt: skip
        evaluate(config, out)
    return out


def test_face_similarity_is_dlibs_own_and_falls_as_jpeg_quality_falls(jpeg_face_runs: Path) -> None:
    suite = FaceSuite()
    rows = load_images(jpeg_face_runs)
    records = {json.loads(p.read_text())["run_name"]: json.loads(p.read_text()) for p in jpeg_face_runs.glob("*.json")}
    means = []
    for quality in QUALITIES:
        run = f"jpeg-q{quality}__faces"
        for index, image_id in enumerate(suite.ids[:2]):
            sample = suite.load(index)
            original = np.asarray(sample.image)
            reconstruction = np.asarray(Image.open(jpeg_face_runs / f"{run}.recon" / f"{image_id}.png").convert("RGB"))
            boxes = [f["box"] for f in sample.meta["faces"]]
            row = rows[(rows["run"] == run) & (rows["id"] == image_id)].iloc[0]
            assert row["face-similarity"] == pytest.approx(dlib_similarity(original, reconstruction, boxes), abs=1e-6), (run, image_id)
        similarity = records[run]["metrics"]["face-similarity"]
        assert similarity["details"]["faces"] == 2 and similarity["weights"][1]["sha256"] == locate("dlib-face-resnet").sha256
        means.append(similarity["value"])
    assert means[0] > means[1] > means[2] and 0.99 < means[0] <= 1

    run = "jpeg-q8-recall__faces"  # the lowest quality loses faces: counted, and said
    found_total = again_total = 0
    for index, image_id in enumerate(suite.ids):
        sample = suite.load(index)
        reconstruction = np.asarray(Image.open(jpeg_face_runs / f"{run}.recon" / f"{image_id}.png").convert("RGB"))
        found, again = dlib_found(np.asarray(sample.image), reconstruction, [f["box"] for f in sample.meta["faces"]])
        found_total, again_total = found_total + found, again_total + again
    recall = records[run]["metrics"]["face-recall"]
    assert recall["details"]["found_on_original"] == found_total == 11
    assert recall["details"]["missed_on_reconstruction"] == found_total - again_total > 0
    assert recall["value"] == pytest.approx(again_total / found_total)
    assert any("not found on the reconstruction" in w for w in recall["warnings"])


def make_arcface_contract_model(path: Path) -> Path:
    """An ONNX model with insightface's recogniser contract: input ``input.1`` (N, 3, 112, 112)
    float32, one (N, 512) output; average-pooled 8x8 then a fixed random projection."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((588, 512)).astype(np.float32), "projection")
    nodes = [
        helper.make_node("AveragePool", ["input.1"], ["pooled"], kernel_shape=[8, 8], strides=[8, 8], name="pool"),
        helper.make_node("Flatten", ["pooled"], ["flat"], name="flatten"),
        helper.make_node("MatMul", ["flat", "projection"], ["683"], name="embedding"),
    ]
    graph = helper.make_graph(nodes, "arcface-contract", [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["N", 3, 112, 112])],
                              [helper.make_tensor_value_info("683", TensorProto.FLOAT, ["N", 512])], [weight])  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def arcface_reference(session, image: np.ndarray, keypoints: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """insightface's ArcFaceONNX.get: norm_crop (Umeyama similarity to the ArcFace template,
    cv2.warpAffine) then (x - 127.5) / 127.5 in RGB."""
    import cv2
    from skimage.transform import SimilarityTransform

    template = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]])
    matrix = SimilarityTransform.from_estimate(keypoints, template).params[:2]
    crop = cv2.warpAffine(image, matrix, (112, 112), borderValue=0.0)
    blob = cv2.dnn.blobFromImage(crop[:, :, ::-1], 1 / 127.5, (112, 112), (127.5, 127.5, 127.5), swapRB=True)
    return session.run(None, {"input.1": blob})[0][0].astype(np.float64)


def make_tokbench_faces(root: Path) -> list[dict]:
    """A TokBench face folder of the suite's two portraits: face boxes and the five
    ArcFace keypoints (from dlib's 68 landmarks), ``ratio`` and the layout of face_meta.json."""
    import dlib

    predictor = dlib.shape_predictor(str(locate("dlib-shape-predictor-68").path))
    folder = root / "images" / "face_data" / "wflw"
    folder.mkdir(parents=True)
    (root / "annotations").mkdir()
    entries, suite = [], FaceSuite()
    for index in range(2):
        sample = suite.load(index)
        image = np.asarray(sample.image)
        box = sample.meta["faces"][0]["box"]
        shape = predictor(image, dlib.rectangle(*(int(round(v)) for v in box)))
        points = np.array([(p.x, p.y) for p in shape.parts()], dtype=float)
        kps = [points[36:42].mean(0), points[42:48].mean(0), points[30], points[48], points[54]]
        sample.image.save(folder / f"{sample.id}.jpg", quality=95)
        ratio = (box[2] - box[0]) / image.shape[1]
        faces = [{"box": box, "kps": [[float(x), float(y)] for x, y in kps], "ratio": ratio, "gt": 0}]
        entries.append({"image_name": f"{sample.id}.jpg", "img_height": image.shape[0], "img_width": image.shape[1], "faces": faces})
    (root / "annotations" / "face_meta.json").write_text(json.dumps(entries))
    return entries


def test_insightface_engine_is_arcface_on_tokbench_keypoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli) -> None:
    import onnxruntime

    model = make_arcface_contract_model(tmp_path / "glintr100.onnx")
    monkeypatch.setenv("VTBENCH_WEIGHTS_ARCFACE_ANTELOPEV2", str(model))  # for locate() below
    entries = make_tokbench_faces(tmp_path / "tokbench")
    out = tmp_path / "out"
    values = []
    for quality in (90, 10):
        cli("run", "-t", f"jpeg-q{quality}", "-d", f"tokbench:root={tmp_path / 'tokbench'},subset=faces",
            "-m", "face-similarity:engine=insightface", "--resize-mode", "none", "--save-reconstructions", "--out", out,
            env={**os.environ, "VTBENCH_WEIGHTS_ARCFACE_ANTELOPEV2": str(model)})  # fmt: skip
        record = json.loads((out / f"jpeg-q{quality}__tokbench.json").read_text())
        metric = record["metrics"]["face-similarity"]
        assert metric["parameters"]["engine"] == "insightface" and metric["parameters"]["model"] == "antelopev2"
        assert metric["weights"][0]["sha256"] == locate("arcface-antelopev2").sha256
        assert set(metric["details"]["by_size"]) <= {"small", "medium", "large"}
        session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        rows = load_images(out / f"jpeg-q{quality}__tokbench.json")
        for entry in entries:
            name = entry["image_name"]
            original = np.asarray(Image.open(tmp_path / "tokbench" / "images" / "face_data" / "wflw" / name).convert("RGB"))
            recon = np.asarray(Image.open(out / f"jpeg-q{quality}__tokbench.recon" / f"{Path(name).stem}.png").convert("RGB"))
            kps = np.array(entry["faces"][0]["kps"])
            a, b = arcface_reference(session, original, kps), arcface_reference(session, recon, kps)
            expected = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
            row = rows[rows["id"] == entry["image_name"]].iloc[0]
            assert row["face-similarity"] == pytest.approx(expected, abs=1e-5)
        values.append(metric["value"])
    assert values[0] > values[1]


def test_a_missing_arcface_model_says_where_to_put_it(cli, tmp_path: Path) -> None:
    result = cli("run", "-t", "jpeg-q50", "-d", "faces", "-m", "face-similarity:engine=insightface", "--out", tmp_path, check=2)
    assert "glintr100.onnx" in result.stderr and "VTBENCH_WEIGHTS_ARCFACE_ANTELOPEV2" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_malformed_tokbench_face_list_is_one_line_naming_the_file(cli, tmp_path: Path) -> None:
    (tmp_path / "annotations").mkdir()
    meta = tmp_path / "annotations" / "face_meta.json"
    meta.write_text(json.dumps([{"image_name": "a.jpg", "faces": [{"box": [0, 0, 10, 10], "kps": [[1, 2], [3, 4]]}]}]))
    dataset = f"tokbench:root={tmp_path},subset=faces"
    result = cli("run", "-t", "jpeg-q50", "-d", dataset, "-m", "face-similarity", "--out", tmp_path, check=2)
    assert f"{meta}: not a TokBench face list" in result.stderr and "2 keypoints, not 5" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
