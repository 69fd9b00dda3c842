"""The metric contract, after torchmetrics: ``update`` accumulates, ``compute`` reduces,
``reset`` clears. States are declared with a reduction so partial states can be saved,
resumed and merged across processes.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch

from vtbench.tokenizers.base import Tokens

Reduction = Literal["sum", "cat", "max", "min", "exact-sum", "same"]  # same: every part holds the same value (or none)


def add_exactly(partials: list[float], values: list[float]) -> list[float]:
    """Shewchuk's non-overlapping partials (the algorithm behind ``math.fsum``): after adding
    ``values``, ``math.fsum(partials)`` is their exact sum, whatever the order or grouping.
    Finite values only; the list stays short (a few dozen floats at most)."""
    for x in values:
        i = 0
        for y in partials:
            if abs(x) < abs(y):
                x, y = y, x
            high = x + y
            low = y - (high - x)
            if low:
                partials[i] = low
                i += 1
            x = high
        partials[i:] = [x]
    return partials


@dataclass
class TextReading:
    """One text region of one image, as the run's OCR engine read it.

    reference: the ground-truth transcript (None when the dataset has none);
    original_ocr: the OCR of the original (None unless a ``-vs-ocr`` metric asked for it);
    bucket: the region's size bucket (``vtbench.metrics.text.size_bucket``).
    """

    reference: str | None
    language: str
    bucket: str
    reconstruction_ocr: str
    original_ocr: str | None = None


@dataclass
class MetricBatch:
    """What every metric sees for one batch of N same-sized images.

    originals, reconstructions: float32 (N, 3, H, W) in [0, 1], on the run's device.
    tokens: the tokenizer's output for these images (None for generation runs).
    features: ``features[extractor]["originals" | "reconstructions"][name]`` -> (N, D),
        computed once per batch by the shared extractors the metrics asked for.
    text: per image, its text regions as OCR read them (when a text metric asked for OCR).
    faces: per image, the dataset's faces mapped to evaluation pixels (``box``, five ``keypoints``
        or None, size ``bucket`` or None); None for an image without annotations.
    tokenizer: the run's tokenizer (reconstruction runs), on the run's device.
    frames_per_clip: 1 for images. For a batch of N clips of T frames: T, with ``originals`` and
        ``reconstructions`` the clips' frames in order (N*T, 3, H, W), ``tokens`` and ``ids`` per clip.
    fps: each clip's frame rate (frames per second; None for images, or where a clip's rate is unknown).
    """

    ids: list[str]
    originals: torch.Tensor
    reconstructions: torch.Tensor
    tokens: Tokens | None = None
    meta: list[dict[str, Any]] = field(default_factory=list)
    features: dict[str, dict[str, dict[str, torch.Tensor]]] = field(default_factory=dict)
    text: list[list[TextReading]] | None = None
    faces: list[list[dict[str, Any]] | None] | None = None  # per image, its annotated faces at evaluation size (or None: detect)
    tokenizer: Any = None  # the run's tokenizer, for metrics that re-encode (token consistency, re-encode stability)
    frames_per_clip: int = 1
    fps: list[float] | None = None

    @property
    def clips(self) -> int:
        """How many images (or clips) the batch holds: the length of per-item values."""
        return len(self.originals) // self.frames_per_clip


class Metric(ABC):
    """Base class. Subclasses declare states in ``__init__`` with :meth:`add_state`.

    ``update`` returns per-image values (float64, shape (N,)) when the metric has them,
    so the runner can write the per-image table; ``compute`` returns the aggregate.
    """

    name: str = "metric"
    higher_is_better: bool = True
    unit: str = ""
    aggregation: str = "mean"
    kind: Literal["quality", "cost", "distribution", "text"] = "quality"
    description: str = ""
    tags: ClassVar[dict[str, Any]] = {}  # extra metadata for `vtbench show`
    min_size: int = 1  # smallest image side (pixels) the metric is defined for
    required_weights: tuple[str, ...] = ()  # weights-store names the metric itself loads
    extractor: str | None = None  # a shared feature extractor the metric reads from the batch
    feature_dims: dict[str, int] = {}  # the extractor's features it reads -> their width (data, for checks and tests)
    needs_ocr: bool = False  # the runner reads each text region with the run's OCR engine
    needs_original_ocr: bool = False  # ... and of the original too (metrics against the original's reading)
    scores_samples: bool = False  # a generation run may use it though it is not distributional (one value per sample)
    reference_keys: tuple[str, str] | None = None  # the mean/covariance arrays it takes as a fixed reference (see set_reference)
    on_clips: Literal["frames", "clips", "no"] = "frames"
    """On a batch of clips: ``frames`` scores each frame as an image (per-frame values, averaged
    per clip by the runner); ``clips`` reads the clip structure itself (values per clip); ``no``:
    the metric does not apply to clips (a run refuses it). Metrics with a shared extractor or OCR
    count as ``no``."""
    needs_clips: bool = False  # defined for clips only (temporal metrics, FVD): an image run refuses it

    def __init__(self) -> None:
        self._defaults: dict[str, tuple[torch.Tensor | list, Reduction]] = {}

    def prepare(self, located: dict[str, Any], device: torch.device) -> None:  # noqa: B027 - optional hook
        """Load networks once the run knows its device and the weights are found."""

    def set_reference(self, source: str, mu: Any = None, sigma: Any = None) -> None:
        """The one hook for a fixed reference side: statistics (``mu``, ``sigma``: the arrays
        named by ``reference_keys`` in a statistics file or an ADM batch) stand for the
        reference images; ``source`` says where they come from. Called with arrays in one
        slice of a split run and with ``source`` alone in the others, which then stop
        accumulating the reference side. Whatever it sets lives in :meth:`add_state` states."""
        from vtbench.errors import VtbenchError

        raise VtbenchError(f"metric {self.name!r} cannot take fixed reference statistics ({source}): it needs the reference images")

    def add_state(self, name: str, default: torch.Tensor | list, reduction: Reduction) -> None:
        self._defaults[name] = (default, reduction)
        setattr(self, name, default.clone() if isinstance(default, torch.Tensor) else list(default))

    def reset(self) -> None:
        for name, (default, _) in self._defaults.items():
            setattr(self, name, default.clone() if isinstance(default, torch.Tensor) else list(default))

    @abstractmethod
    def update(self, batch: MetricBatch) -> torch.Tensor | None:
        """Accumulate one batch; return per-image values (N,) or None."""

    @abstractmethod
    def compute(self) -> float:
        """The aggregate over everything seen since the last reset."""

    @property
    def count(self) -> int:
        """How many images contributed."""
        return int(getattr(self, "n", torch.tensor(0)).item())

    def state_dict(self) -> dict[str, Any]:
        return {
            name: (value.detach().cpu().clone() if isinstance(value, torch.Tensor) else [v.detach().cpu() for v in value])
            for name in self._defaults
            for value in [getattr(self, name)]
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value.clone() if isinstance(value, torch.Tensor) else list(value))

    def merge_state(self, other: Metric) -> None:
        """Fold another instance's state into this one (e.g. from another process)."""
        for name, (_, reduction) in self._defaults.items():
            mine, theirs = getattr(self, name), getattr(other, name)
            if reduction == "sum":
                setattr(self, name, mine + theirs.to(mine.device))
            elif reduction == "cat":
                setattr(self, name, list(mine) + list(theirs))
            elif reduction == "exact-sum":
                setattr(self, name, torch.tensor(add_exactly(mine.tolist(), theirs.tolist()), dtype=torch.float64))
            elif reduction == "same":
                if not mine.numel():
                    setattr(self, name, theirs.clone())
                elif theirs.numel() and not torch.equal(mine, theirs.to(mine.device)):
                    raise ValueError(f"{self.name}: state {name!r} differs between the parts being merged")
            elif reduction == "max":
                setattr(self, name, torch.maximum(mine, theirs.to(mine.device)))
            else:
                setattr(self, name, torch.minimum(mine, theirs.to(mine.device)))

    def declared(self) -> dict[str, Any]:
        """Direction, unit, aggregation and kind as data (``vtbench list metrics`` shows them)."""
        return {"higher_is_better": self.higher_is_better, "unit": self.unit, "aggregation": self.aggregation, "kind": self.kind}

    def describe(self) -> dict[str, Any]:
        described = self.declared()
        if self.extractor:
            described["extractor"] = self.extractor
        if self.parameters():
            described["parameters"] = self.parameters()
        return described

    def parameters(self) -> dict[str, Any]:
        """The settings that define the number (window, constants, k, splits ...), for the record."""
        return {}

    def details(self) -> dict[str, Any]:
        """Secondary numbers beside the value (e.g. a standard deviation over subsets)."""
        return {}

    def warnings(self) -> list[str]:
        """Caveats about the computed value (e.g. too few samples), written into the record."""
        return []


class MeanMetric(Metric):
    """A per-image score averaged over images. The sum is exact (kept as non-overlapping
    float64 partials), so the mean does not depend on batch size, image order or how the
    images were split across processes; non-finite values are summed apart."""

    def __init__(self) -> None:
        super().__init__()
        self.add_state("partials", torch.zeros(0, dtype=torch.float64), "exact-sum")
        self.add_state("non_finite", torch.zeros((), dtype=torch.float64), "sum")
        self.add_state("n", torch.zeros((), dtype=torch.int64), "sum")

    @abstractmethod
    def score(self, batch: MetricBatch) -> torch.Tensor:
        """Per-image values (N,)."""

    def update(self, batch: MetricBatch) -> torch.Tensor:
        values = self.score(batch).detach().to(torch.float64).cpu()
        finite = torch.isfinite(values)
        self.partials = torch.tensor(add_exactly(self.partials.tolist(), values[finite].tolist()), dtype=torch.float64)
        if not finite.all():
            self.non_finite = self.non_finite + values[~finite].sum()
        self.n = self.n + values.numel()
        return values

    def compute(self) -> float:
        if not int(self.n):
            return float("nan")
        return (math.fsum(self.partials.tolist()) + float(self.non_finite)) / int(self.n)
