"""Metrics: the contract (``base``) and one module per metric, class beside its function."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vtbench.features import EMBEDDINGS
from vtbench.registry import Registry

if TYPE_CHECKING:
    from vtbench.metrics.base import Metric

METRICS: Registry[Metric] = Registry("metrics")
for _name, _target, _description in [
    ("psnr", "vtbench.metrics.psnr:PSNR", "Peak signal-to-noise ratio, dB (higher is better)"),
    ("ssim", "vtbench.metrics.ssim:SSIM", "Structural similarity, Gaussian window, scikit-image compatible (higher is better)"),
    ("ms-ssim", "vtbench.metrics.ms_ssim:MSSSIM", "Multi-scale SSIM, 5 scales (higher is better; images >= 176 px)"),
    ("bpp", "vtbench.metrics.cost:BitsPerPixel", "Bits per pixel of the tokens (cost; lower is cheaper)"),
    ("tokens", "vtbench.metrics.cost:TokensPerImage", "Tokens per image (cost)"),
    ("tokens-per-second", "vtbench.metrics.cost:TokensPerSecond", "Tokens per second of video (clips; cost)"),
    ("video-psnr", "vtbench.metrics.video:ClipPSNR", "PSNR over each whole clip, TokenBench's video PSNR (higher is better)"),
    ("flicker", "vtbench.metrics.video:Flicker", "RMS error of frame-to-frame changes, 8-bit levels (clips; lower is better)"),
    ("fvd", "vtbench.metrics.video:FVD", "Fréchet Video Distance, I3D features of clips vs originals (lower is better)"),
]:
    METRICS.register(_name, _target, description=_description)
METRICS.register("lpips-alex", "vtbench.metrics.lpips:LPIPS", description="LPIPS, AlexNet backbone (lower is better)", net="alex")
METRICS.register("lpips-vgg", "vtbench.metrics.lpips:LPIPS", description="LPIPS, VGG16 backbone (lower is better)", net="vgg")
METRICS.register("fid", "vtbench.metrics.frechet:FID", description="Fréchet Inception Distance vs the originals (rFID; lower is better)")
METRICS.register("sfid", "vtbench.metrics.frechet:SFID", description="Spatial FID, ADM evaluator's mixed_6/conv features (lower is better)")
METRICS.register(
    "fd-efficientnet-lite0",
    "vtbench.metrics.frechet:FrechetDistance",
    description="Fréchet distance in EfficientNet-Lite0 feature space (not FID; offline weights)",
    extractor="efficientnet-lite0",
    feature=EMBEDDINGS["efficientnet-lite0"]["embedding"][0],
    dim=EMBEDDINGS["efficientnet-lite0"]["embedding"][1],
)
for _extractor, _label in (("dinov2-vit-s-14", "DINOv2 ViT-S/14"), ("dinov2-vit-b-14", "DINOv2 ViT-B/14"),
                           ("dinov2-vit-l-14", "DINOv2 ViT-L/14"), ("clip-vit-b-32", "CLIP ViT-B/32"),
                           ("clip-vit-b-16", "CLIP ViT-B/16"), ("clip-vit-l-14", "CLIP ViT-L/14")):  # fmt: skip
    _feature, _dim = EMBEDDINGS[_extractor]["embedding"]
    METRICS.register(
        f"fd-{_extractor}",
        "vtbench.metrics.frechet:FrechetDistance",
        description=f"Fréchet distance in {_label} feature space (not FID; needs its weights file)",
        extractor=_extractor,
        feature=_feature,
        dim=_dim,
    )
METRICS.register(
    "clip-score", "vtbench.metrics.clip_score:CLIPScore", description="CLIPScore of samples vs their prompts (higher is better)"
)
METRICS.register("kid", "vtbench.metrics.feature_sets:KID", description="Kernel Inception Distance vs the originals (lower is better)")
METRICS.register(
    "isc", "vtbench.metrics.feature_sets:InceptionScore", description="Inception Score of reconstructions / samples (higher is better)"
)
for _output in ("precision", "recall"):
    METRICS.register(
        _output,
        "vtbench.metrics.feature_sets:PrecisionRecall",
        description=f"k-NN {_output} (k=3) in Inception space (higher is better)",
        output=_output,
    )
for _k in (1, 5):
    METRICS.register(
        f"class-agreement-top{_k}",
        "vtbench.metrics.class_agreement:ClassAgreement",
        description=f"Original's ImageNet class in the reconstruction's top {_k} (EfficientNet-Lite0)",
        k=_k,
    )
for _statistic, _label in (
    ("usage", "Fraction of the codebook's entries used over the run (sparse count; any codebook size)"),
    ("entropy", "Entropy of the code distribution, bits per token (per-bit statistics for binary codes in details)"),
    ("perplexity", "Codebook perplexity, 2^entropy: the effective number of codes used"),
):
    METRICS.register(f"codebook-{_statistic}", "vtbench.metrics.codebook:CodebookStatistic", description=_label, statistic=_statistic)
for _order in range(1, 4):
    METRICS.register(
        f"code-entropy-n{_order}",
        "vtbench.metrics.token_statistics:CodeEntropy",
        description=f"Conditional entropy of a code given its {_order - 1} raster-order predecessors, bits/token (Miller-Madow)",
        order=_order,
    )
for _transform, _label in (("shift", "a 1-pixel shift"), ("flip", "a horizontal flip (mirrored positions)"),
                           ("jpeg", "JPEG q90 re-compression")):  # fmt: skip
    METRICS.register(
        f"token-consistency-{_transform}",
        "vtbench.metrics.token_statistics:TokenConsistency",
        description=f"Fraction of ids unchanged under {_label} of the input",
        transform=_transform,
    )
METRICS.register(
    "reencode-stability",
    "vtbench.metrics.token_statistics:ReencodeStability",
    description="Fraction of ids surviving encode-decode-encode; PSNR drift over k round trips in details",
)
METRICS.register(
    "hf-fidelity",
    "vtbench.metrics.frequency:FrequencyResponse",
    description="High-frequency fidelity: 1 - error/original power above 0.25 cycles/px; per-band curves in details",
    output="hf-fidelity",
)
METRICS.register(
    "frequency-cutoff",
    "vtbench.metrics.frequency:FrequencyResponse",
    description="Highest frequency (cycles/px) preserved with fidelity >= 0.5 (higher is better)",
    output="frequency-cutoff",
)
_TEXT_MEASURES = {
    "cer": "Character error rate",
    "wer": "Word error rate",
    "t-ned": "1 - normalised edit distance",
    "t-acc": "Exact-match text accuracy",
}
for _measure, _label in _TEXT_MEASURES.items():
    _better = "higher" if _measure.startswith("t-") else "lower"
    METRICS.register(
        _measure,
        "vtbench.metrics.text:TextMetric",
        description=f"{_label} of the reconstruction's OCR vs the ground-truth transcript ({_better} is better)",
        measure=_measure,
        against="ground-truth",
    )
    METRICS.register(
        f"{_measure}-vs-ocr",
        "vtbench.metrics.text:TextMetric",
        description=f"{_label} of the reconstruction's OCR vs the original's OCR, VTBench's convention ({_better} is better)",
        measure=_measure,
        against="ocr",
    )

METRICS.register(
    "face-similarity",
    "vtbench.metrics.faces:FaceMetric",
    description="Cosine similarity of each face's identity embedding, original vs reconstruction (TokBench; dlib engine offline)",
    measure="similarity",
)
METRICS.register(
    "face-recall",
    "vtbench.metrics.faces:FaceMetric",
    description="Share of the original's detected faces the face detector still finds on the reconstruction",
    measure="recall",
)

# How tables and figures name each metric (papers' spelling); a metric not listed is shown by its id.
LABELS = {
    "psnr": "PSNR", "ssim": "SSIM", "ms-ssim": "MS-SSIM", "lpips-alex": "LPIPS (Alex)", "lpips-vgg": "LPIPS (VGG)",
    "fid": "rFID", "sfid": "sFID", "kid": "KID", "isc": "IS", "precision": "Precision", "recall": "Recall",
    "fd-efficientnet-lite0": "FD (EffNet-Lite0)", "fd-dinov2-vit-s-14": "FD (DINOv2-S)", "fd-dinov2-vit-b-14": "FD (DINOv2-B)",
    "fd-dinov2-vit-l-14": "FD (DINOv2-L)", "fd-clip-vit-b-16": "FD (CLIP-B/16)", "fd-clip-vit-b-32": "FD (CLIP-B/32)",
    "fd-clip-vit-l-14": "FD (CLIP-L/14)", "code-entropy-n1": "H1", "code-entropy-n2": "H2", "code-entropy-n3": "H3",
    "token-consistency-shift": "Consist. (shift)", "token-consistency-flip": "Consist. (flip)",
    "token-consistency-jpeg": "Consist. (JPEG)", "reencode-stability": "Re-encode stab.",
    "class-agreement-top1": "Top-1 agr.", "class-agreement-top5": "Top-5 agr.", "clip-score": "CLIPScore",
    "bpp": "Rate (bpp)", "tokens": "Tokens", "codebook-usage": "Code usage", "codebook-entropy": "Code entropy",
    "codebook-perplexity": "Perplexity", "hf-fidelity": "HF fidelity", "frequency-cutoff": "Cut-off freq.",
    "cer": "CER", "wer": "WER", "t-ned": "1-NED", "t-acc": "T-Acc", "cer-vs-ocr": "CER (vs OCR)", "wer-vs-ocr": "WER (vs OCR)",
    "t-ned-vs-ocr": "1-NED (vs OCR)", "t-acc-vs-ocr": "T-Acc (vs OCR)", "bd-rate": "BD-rate",
    "face-similarity": "Face sim.", "face-recall": "Face recall",
}  # fmt: skip
GENERATION_LABELS = {"fid": "FID", "sfid": "sFID"}  # against a reference set, not the originals


def metric_label(key: str, unit: str = "", task: str = "reconstruction", extractor: str | None = None) -> str:
    """A metric's display name with its unit: ``metric_label("psnr", "dB")`` -> ``PSNR (dB)``;
    with a feature ``extractor`` other than the metric's usual one, that too (``KID
    [efficientnet-lite0]``: never read as an Inception number)."""
    label = (GENERATION_LABELS.get(key) if task == "generation" else None) or LABELS.get(key)
    if label is None and key.startswith("bd-"):
        label = "BD-" + LABELS.get(key[3:], key[3:])
    label = label or key
    if other_extractor(key, extractor):
        label = f"{label} [{extractor}]"
    return f"{label} ({unit})" if unit and unit not in _SAID_BY_THE_LABEL else label


KNOWN_BY_INCEPTION = {"fid", "sfid", "kid", "isc", "precision", "recall"}  # their names mean Inception features


def other_extractor(key: str, extractor: str | None) -> bool:
    """Whether metric ``key``, known by Inception features, was computed with another
    ``extractor`` (``kid`` in EfficientNet-Lite0 space: to be headed so)."""
    return key in KNOWN_BY_INCEPTION and bool(extractor) and extractor != "inception-v3-compat"


_SAID_BY_THE_LABEL = {"fraction", "tokens", "bit/px"}  # units the name already gives (or, for a fraction, needs not)


def create_metric(name: str, /, **options: object) -> Metric:
    """Build a registered metric."""
    return METRICS.create(name, **options)


__all__ = ["LABELS", "METRICS", "MeanMetric", "Metric", "MetricBatch", "TextReading", "create_metric", "metric_label"]


def __getattr__(name: str):  # the contract classes import torch: load them on first use
    if name in {"MeanMetric", "Metric", "MetricBatch", "TextReading"}:
        import importlib

        return getattr(importlib.import_module("vtbench.metrics.base"), name)
    raise AttributeError(name)
