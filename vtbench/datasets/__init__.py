"""Datasets: ordered image collections, registered by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vtbench.registry import Registry

if TYPE_CHECKING:
    from vtbench.datasets.base import Dataset

DATASETS: Registry[Dataset] = Registry("datasets")
DATASETS.register(
    "samples", "vtbench.datasets.samples:SkimageSamples", description="14 real photographs shipped with scikit-image (no download)"
)
DATASETS.register("folder", "vtbench.datasets.folder:ImageFolder", description="Every image under a folder, recursively (option: root)")
DATASETS.register(
    "imagenet-val",
    "vtbench.datasets.folder:ImageNetVal",
    description="ImageNet val from a local folder (option: root); pair with --resize-mode adm-center-crop",
)
DATASETS.register(
    "annotated", "vtbench.datasets.annotated:AnnotatedFolder", description="Image folder + annotations.jsonl text regions (option: root)"
)
DATASETS.register(
    "text",
    "vtbench.datasets.annotated:TextSuite",
    description="Built-in text suite: 5 scripts, 6 font sizes, transcripts (generated)",
)
DATASETS.register(
    "faces", "vtbench.datasets.faces:FaceSuite", description="Built-in face suite: real portraits with face boxes (no download)"
)
DATASETS.register(
    "detail", "vtbench.datasets.detail:DetailSuite", description="Built-in detail suite: gratings, zone plates, Siemens stars, textures"
)
DATASETS.register(
    "vtbench", "vtbench.datasets.hub:VTBench", description="VTBench task split (huaweilin/VTBench; options task, split, path)"
)
DATASETS.register(
    "npz",
    "vtbench.datasets.npz:NpzImages",
    description="Images in arr_0 of an .npz (uint8 NHWC), e.g. an ADM reference batch (option: path)",
)
DATASETS.register(
    "clips", "vtbench.datasets.video:CameraClips", description="Built-in video clips: a camera moving over real photographs (no download)"
)
DATASETS.register(
    "videos",
    "vtbench.datasets.video:VideoFolder",
    description="Video files (PyAV) and folders of frames under a folder, as clips (options: root, frames, stride, fps)",
)
DATASETS.register(
    "tokbench", "vtbench.datasets.hub:tokbench", description="TokBench text or face set from a local copy (options root, subset, setting)"
)

__all__ = ["DATASETS", "Dataset", "Sample"]


def __getattr__(name: str):  # the contract classes import torch: load them on first use
    if name in {"Dataset", "Sample"}:
        import importlib

        return getattr(importlib.import_module("vtbench.datasets.base"), name)
    raise AttributeError(name)
