"""Published benchmark sets: VTBench (Hugging Face parquet) and TokBench (JSON + images).

VTBench (``huaweilin/VTBench``) is read with the ``datasets`` library, from the hub cache
or from a local copy of its parquet files (``path=DIR``: the dataset repository's folder
layout, e.g. ``DIR/movie_posters/test-00000-of-00001.parquet``). Its rows hold only an
``image``; text tasks have no transcript, so they are scored with the ``-vs-ocr`` metrics.

TokBench (``Junfeng5/TokBench``) text sets are ``annotations/text_<set>.json`` files (a list
of ``{file_name, height, width, annotations: [{rec, bbox, ratio}]}``) beside the images;
every word box becomes a text region (layout ``word``) with its transcript. Words are
bucketed the TokBench way: by the annotation's ``ratio`` (a character's width relative to
the image) with thresholds per evaluation setting (``TOKBENCH_BUCKETS``); words below the
lowest threshold are left out, as TokBench does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vtbench.datasets.base import Dataset, Sample, sha256_hex
from vtbench.errors import BadImageError, DatasetError
from vtbench.images import decode_image
from vtbench.weights import offline

VTBENCH_REPO = "huaweilin/VTBench"
# task -> (splits, folder in the hub repository, language); "reconstruction" tasks have no text
VTBENCH_TASKS: dict[str, tuple[tuple[str, ...], str, str | None]] = {
    "task1-imagenet": (("val",), "imagenet", None),
    "task1-high-resolution": (("test",), "high_quality_1024", None),
    "task1-varying-resolution": (("test",), "DIV2K", None),
    "task2-detail-preservation": (("test",), "patterns", None),
    "task3-movie-posters": (("test",), "movie_posters", "en"),
    "task3-arxiv-abstracts": (("test",), "arxiv_04_2025", "en"),
    "task3-multilingual": (("Chinese", "Hindi", "Japanese", "Korean"), "multilingual", None),
}
MULTILINGUAL = {"Chinese": "zh", "Hindi": "hi", "Japanese": "ja", "Korean": "ko"}


def _local_parquet(root: Path, folder: str, split: str) -> list[str]:
    """Parquet shards of one split in a local copy of the hub repository."""
    candidates = sorted(root.rglob("*.parquet"))
    in_folder = [p for p in candidates if folder.lower() in p.relative_to(root).as_posix().lower()] or candidates
    matching = [p for p in in_folder if p.name.lower().startswith(split.lower()) or f"/{split.lower()}" in p.as_posix().lower()]
    return [str(p) for p in matching]


class VTBench(Dataset):
    """One VTBench task split, by name (``task=task3-multilingual split=Korean``)."""

    description = "VTBench (huaweilin/VTBench) task split via the datasets library (option path=local parquet copy)"

    def __init__(self, task: str = "task1-imagenet", split: str | None = None, path: str | None = None) -> None:
        if task not in VTBENCH_TASKS:
            raise DatasetError(f"unknown VTBench task {task!r}; known: {', '.join(VTBENCH_TASKS)}")
        splits, folder, language = VTBENCH_TASKS[task]
        split = split or splits[0]
        if split not in splits:
            raise DatasetError(f"VTBench {task} has splits {', '.join(splits)}, not {split!r}")
        self.task, self.split, self.path = task, split, path
        self.name = f"vtbench-{task}" + (f"-{split.lower()}" if task == "task3-multilingual" else "")
        self.language = MULTILINGUAL.get(split, language)
        self.languages = [self.language] if self.language else ["en"]
        self._folder = folder
        self._table: Any = None
        self._ids: list[str] | None = None

    def _open(self) -> Any:
        """Load the split on first use (so validating a recipe does not touch the hub)."""
        if self._table is not None:
            return self._table
        import datasets

        task, split, path, folder = self.task, self.split, self.path, self._folder
        if path:
            files = _local_parquet(Path(path).expanduser(), folder, split)
            if not files:
                expected = f"{folder}/{split}-*.parquet"
                raise DatasetError(f"VTBench {task}/{split}: no parquet files for split {split!r} under {path} (expected {expected})")
            table = datasets.load_dataset("parquet", data_files=files, split="train")
        else:
            try:
                table = datasets.load_dataset(VTBENCH_REPO, name=task, split=split)
            except Exception as exc:
                hint = "vtbench is offline; " if offline() else ""
                raise DatasetError(
                    f"VTBench {task}/{split} could not be loaded from the hub ({type(exc).__name__}: {exc}); {hint}download it with "
                    f"`hf download {VTBENCH_REPO} --repo-type dataset --local-dir DIR` and pass path=DIR"
                ) from None
        if "image" not in table.column_names:
            raise DatasetError(f"VTBench {task}/{split}: no 'image' column (columns: {', '.join(table.column_names)})")
        self._table = table.cast_column("image", datasets.Image(decode=False))
        self._ids = [f"{task}/{split}/{i:06d}" for i in range(len(self._table))]
        return self._table

    @property
    def ids(self) -> list[str]:
        self._open()
        assert self._ids is not None
        return self._ids

    def _bytes(self, index: int) -> bytes:
        cell = self._open()[index]["image"]
        if cell.get("bytes"):
            return cell["bytes"]
        if cell.get("path") and Path(cell["path"]).is_file():
            return Path(cell["path"]).read_bytes()
        raise BadImageError(self.ids[index], "row has neither image bytes nor a readable path")

    def load(self, index: int) -> Sample:
        data = self._bytes(index)
        image = decode_image(data, self.ids[index])
        meta: dict[str, Any] = {"language": self.language or "en"} if self.language else {}
        return Sample(self.ids[index], image, sha256_hex(data), meta)

    def content_sha256(self, index: int) -> str:
        return sha256_hex(self._bytes(index))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "source": VTBENCH_REPO, "task": self.task, "split": self.split, "path": self.path}


# evaluation setting (side in px) -> lower edges of the small, medium and large buckets
TOKBENCH_BUCKETS: dict[int, tuple[float, float, float]] = {
    256: (0.02, 0.03, 0.04),
    512: (0.01, 0.02, 0.03),
    1024: (0.005, 0.01, 0.02),
}


def tokbench_bucket(ratio: float, setting: int) -> str | None:
    """TokBench's size bucket of a word at ``setting``; ``None`` below the smallest."""
    small, medium, large = TOKBENCH_BUCKETS[setting]
    return None if ratio < small else "small" if ratio < medium else "medium" if ratio < large else "large"


def _box(bbox: Any) -> list[float]:
    """``[x0, y0, x1, y1]`` or a 4x2 polygon -> its bounding rectangle."""
    if len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox):
        return [float(v) for v in bbox]
    xs, ys = [float(p[0]) for p in bbox], [float(p[1]) for p in bbox]
    return [min(xs), min(ys), max(xs), max(ys)]


def _read_bytes(path: Path) -> bytes:
    """A TokBench image file's bytes; one that cannot be read is a bad image, named."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BadImageError(str(path), f"cannot read file: {exc}") from exc


class TokBenchText(Dataset):
    """TokBench text set ``subset`` (ic13, ic15, tt, textocr, cord, sroie, infograph, docvqa)
    from a local copy (``root``): word boxes with transcripts, read as ``word`` regions."""

    description = "TokBench (Junfeng5/TokBench) text set from a local copy: word boxes + transcripts"

    def __init__(self, root: str, subset: str = "ic13", setting: int = 256) -> None:
        if int(setting) not in TOKBENCH_BUCKETS:
            raise DatasetError(f"TokBench setting {setting} is not one of {', '.join(map(str, TOKBENCH_BUCKETS))} (the evaluation side)")
        self.root, self.subset, self.setting = Path(root).expanduser(), subset, int(setting)
        self.name = f"tokbench-{subset}"
        annotations = self.root / "annotations" / f"text_{subset}.json"
        if not annotations.is_file():
            raise DatasetError(f"TokBench {subset}: {annotations} not found (root should be the TokBench dataset folder)")
        try:
            self.entries = sorted(json.loads(annotations.read_text(encoding="utf-8")), key=lambda e: e["file_name"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DatasetError(f"{annotations}: not a TokBench annotation list ({exc})") from None
        folders = [self.root / "images" / "text_data" / subset, self.root / "images" / subset, self.root / subset, self.root / "images"]
        self.images = next((f for f in folders if f.is_dir()), folders[0])
        self.languages = ["en"]
        self._ids = [entry["file_name"] for entry in self.entries]

    @property
    def ids(self) -> list[str]:
        return self._ids

    def load(self, index: int) -> Sample:
        entry = self.entries[index]
        path = self.images / entry["file_name"]
        data = _read_bytes(path)
        regions = []
        for annotation in entry.get("annotations", []):
            region = {"text": annotation["rec"], "language": "en", "box": _box(annotation["bbox"]), "layout": "word"}
            if annotation.get("ratio") is not None:
                region["bucket"] = tokbench_bucket(float(annotation["ratio"]), self.setting)
                if region["bucket"] is None:
                    continue
            regions.append(region)
        return Sample(entry["file_name"], decode_image(data, str(path)), sha256_hex(data), {"language": "en", "regions": regions})

    def content_sha256(self, index: int) -> str:
        return sha256_hex((self.images / self.entries[index]["file_name"]).read_bytes())

    def describe(self) -> dict[str, Any]:
        small, medium, large = TOKBENCH_BUCKETS[self.setting]
        buckets = f"ratio in [{small}, {medium}) small, [{medium}, {large}) medium, >= {large} large; below {small} left out"
        return {
            **super().describe(),
            "source": "Junfeng5/TokBench",
            "subset": self.subset,
            "root": str(self.root),
            "setting": self.setting,
            "buckets": buckets,
        }


TOKBENCH_FACE_FOLDERS = ("images/face_data/wflw", "images/face_data", "face_data/wflw", "images/wflw", "images")


class TokBenchFaces(Dataset):
    """TokBench's face set (WFLW photographs) from a local copy (``root``):
    ``annotations/face_meta.json`` (a list of ``{image_name, faces: [{box, kps, ratio}]}``)
    beside ``images/face_data/wflw``. Each face keeps its box, its five keypoints (TokBench
    aligns on them) and its size bucket by ``ratio`` at the evaluation ``setting``."""

    description = "TokBench (Junfeng5/TokBench) face set from a local copy: WFLW photographs, face boxes + 5 keypoints"

    def __init__(self, root: str, setting: int = 256) -> None:
        from vtbench.faces.base import FACE_BUCKETS

        if int(setting) not in FACE_BUCKETS:
            raise DatasetError(f"TokBench setting {setting} is not one of {', '.join(map(str, FACE_BUCKETS))} (the evaluation side)")
        self.root, self.setting = Path(root).expanduser(), int(setting)
        self.name = "tokbench-faces"
        annotations = self.root / "annotations" / "face_meta.json"
        if not annotations.is_file():
            raise DatasetError(f"TokBench faces: {annotations} not found (root should be the TokBench dataset folder)")
        try:
            self.entries = sorted(json.loads(annotations.read_text(encoding="utf-8")), key=lambda e: e["image_name"])
            for entry in self.entries:
                for face in entry["faces"]:
                    _box(face["box"])
                    if len(face["kps"]) != 5:
                        raise ValueError(f"{entry['image_name']}: a face has {len(face['kps'])} keypoints, not 5")
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"{annotations}: not a TokBench face list ({type(exc).__name__}: {exc})") from None
        folders = [self.root / folder for folder in TOKBENCH_FACE_FOLDERS]
        self.images = next((f for f in folders if f.is_dir()), folders[0])
        self._ids = [entry["image_name"] for entry in self.entries]

    @property
    def ids(self) -> list[str]:
        return self._ids

    def load(self, index: int) -> Sample:
        from vtbench.faces.base import FACE_BUCKETS

        entry = self.entries[index]
        path = self.images / entry["image_name"]
        data = _read_bytes(path)
        medium, large = FACE_BUCKETS[self.setting]
        faces = []
        for face in entry["faces"]:
            annotated = {"box": _box(face["box"]), "keypoints": [[float(x), float(y)] for x, y in face["kps"]]}
            if face.get("ratio") is not None:
                ratio = float(face["ratio"])
                annotated["bucket"] = "small" if ratio < medium else "medium" if ratio < large else "large"
            faces.append(annotated)
        return Sample(entry["image_name"], decode_image(data, str(path)), sha256_hex(data), {"faces": faces})

    def content_sha256(self, index: int) -> str:
        return sha256_hex((self.images / self.entries[index]["image_name"]).read_bytes())

    def describe(self) -> dict[str, Any]:
        from vtbench.faces.base import FACE_BUCKETS

        medium, large = FACE_BUCKETS[self.setting]
        return {
            **super().describe(),
            "source": "Junfeng5/TokBench",
            "subset": "faces",
            "root": str(self.root),
            "setting": self.setting,
            "buckets": f"ratio < {medium} small, [{medium}, {large}) medium, >= {large} large",
        }


def tokbench(root: str, subset: str = "ic13", setting: int = 256) -> Dataset:
    """A TokBench set from a local copy: a text ``subset`` (ic13, ic15, tt, textocr, cord,
    sroie, infograph, docvqa) or ``faces`` (WFLW, with boxes and keypoints)."""
    if subset in ("faces", "face", "wflw"):
        return TokBenchFaces(root, setting)
    return TokBenchText(root, subset, setting)
