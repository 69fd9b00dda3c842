"""Paper protocols as data: the settings behind a published table, by name.

A protocol fixes what decides the numbers: the crop and resize filter, the sample count,
the metrics and their options, and which reference statistics are used. ``vtbench run
--protocol NAME`` (or ``protocol: NAME`` in a recipe, or :func:`apply` in the API) starts
from these settings; anything given explicitly overrides them, and the record names the
protocol. ``vtbench list protocols`` shows them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vtbench.errors import UnknownNameError

_ADM_METRIC_OPTIONS = {"isc": {"split_size": 5000}, "precision": {"estimator": "adm"}, "recall": {"estimator": "adm"}}


@dataclass(frozen=True)
class Protocol:
    """A named set of settings; ``task`` is ``reconstruction`` or ``generation``."""

    name: str
    task: str
    description: str
    settings: dict[str, Any]
    data: str  # what to evaluate on, in words (the dataset or reference the table used)
    source: str  # where the protocol is defined
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "task": self.task, "description": self.description, "settings": self.settings,
                "data": self.data, "source": self.source, "notes": self.notes}  # fmt: skip


def _adm(resolution: int) -> Protocol:
    return Protocol(
        f"adm-gfid-{resolution}",
        "generation",
        f"Class-conditional ImageNet {resolution}x{resolution} gFID as the ADM evaluator computes it (the LlamaGen, VAR, DiT "
        "and TiTok tables): 50,000 samples; FID and sFID against the reference batch's stored statistics; IS in parts of "
        "5,000; precision/recall with the evaluator's manifold estimator (k=3, float16 squared distances)",
        {
            "metrics": ["fid", "sfid", "isc", "precision", "recall"],
            "metric_options": _ADM_METRIC_OPTIONS,
            "preprocessing": {"resolution": resolution, "mode": "adm-center-crop", "filter": "bicubic"},
            "expected_samples": 50_000,
            "stored_statistics": True,
        },
        f"--reference VIRTUAL_imagenet{resolution}{'_labeled' if resolution == 256 else ''}.npz (the ADM reference batch)",
        "openai/guided-diffusion evaluations/evaluator.py",
        ["the samples' features come from the PyTorch port of the TF Inception graph (torch-fidelity's weights); the "
         "reference batch's stored statistics come from the TF graph itself: see the README for the size of the difference"],
    )  # fmt: skip


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in [
        _adm(256),
        _adm(512),
        Protocol(
            "rfid-imagenet-256",
            "reconstruction",
            "Tokenizer reconstruction on ImageNet-1k validation at 256x256 as LlamaGen reports it: ADM centre crop "
            "(box-halving, then bicubic), rFID of the 50,000 reconstructions against the 50,000 originals, with PSNR, SSIM "
            "and LPIPS beside it",
            {
                "metrics": ["fid", "psnr", "ssim", "lpips-vgg", "bpp", "tokens"],
                "preprocessing": {"resolution": 256, "mode": "adm-center-crop", "filter": "bicubic"},
            },
            "-d imagenet-val:root=PATH (the 50,000 validation images)",
            "LlamaGen (arXiv:2406.06525) evaluation scripts",
            [
                "each release evaluates with its own transform, read in its code and listed in presets.yaml's evaluations "
                "(LlamaGen, GigaTok, DetailFlow: this ADM crop; TiTok, Infinity: torchvision bicubic resize and centre crop; "
                "Open-MAGVIT2, MaskBiT, FlowMo: bilinear; BSQ-ViT: Lanczos; IBQ: cv2-center-crop; VAR: var-center-crop): "
                "`vtbench reproduce NAME` runs this protocol with the preset's own"
            ],
        ),  # fmt: skip
        Protocol(
            "tokbench",
            "reconstruction",
            "TokBench text preservation: word-level T-ACC and T-NED of OCR on the reconstructions against the ground "
            "truth, by text size, images at their own size",
            {"metrics": ["t-acc", "t-ned", "cer", "psnr", "ssim", "bpp", "tokens"], "preprocessing": {"mode": "none"}},
            "-d tokbench:root=PATH (a local copy of the TokBench text set)",
            "TokBench: its text set and word-level T-ACC/T-NED, by text size",
            [
                "TokBench reads text with PaddleOCR; vtbench's default engine is Tesseract (--ocr-engine easyocr also works), "
                "so absolute values differ from the paper's"
            ],
        ),  # fmt: skip
        Protocol(
            "vtbench-reconstruction",
            "reconstruction",
            "VTBench reconstruction tasks: PSNR, SSIM, LPIPS (AlexNet) and FID of reconstructions against originals, centre "
            "crop with a Lanczos filter",
            {
                "metrics": ["psnr", "ssim", "lpips-alex", "fid", "bpp", "tokens"],
                "preprocessing": {"mode": "center-crop", "filter": "lanczos"},
            },
            "-d vtbench:task=task1-imagenet (or another VTBench task; see recipes/vtbench-reconstruction.yaml)",
            "VTBench: its reconstruction tasks and metrics",
        ),
    ]
}


def get(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        import difflib

        raise UnknownNameError("protocols", name, difflib.get_close_matches(name, list(PROTOCOLS), n=3), sorted(PROTOCOLS)) from None


def apply(name: str, task: str, given: dict[str, Any]) -> dict[str, Any]:
    """Settings for a ``task`` run: the protocol's, then ``given`` (what the user set
    explicitly) on top, with ``protocol`` set to ``name`` (:func:`vtbench.settings.resolve`,
    which every entry point uses). Preprocessing merges key by key."""
    from vtbench.settings import resolve

    return resolve(task, {**given, "protocol": name})
