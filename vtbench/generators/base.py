"""The generator contract: sample ``i`` of a run is a fixed function of ``i``.

A run asks for samples by index (:meth:`Generator.samples`), so the images are the same
whatever the batch size, the process that makes them or the point a run resumes from.
Images leave as float32 (N, 3, H, W) in [0, 1], like tokenizer output. A generator whose
samples already exist as files can instead expose them as a dataset (``as_dataset``),
which the engine then loads in DataLoader workers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from vtbench.datasets.base import Dataset


TO_8BIT = {  # Generator.to_8bit -> how it is described in the record
    "round": "rounded to the nearest 8-bit level",
    "truncate": "truncated to 8 bits, (x * 255).to(uint8), as the release's sampling script",
}


class Generator(ABC):
    """Produces sample images by index."""

    name: str = "generator"
    description: str = ""
    to_8bit: str = "round"  # how the release's own sampling script stores a sample: round, or truncate ((x * 255).to(uint8))

    @abstractmethod
    def samples(self, indices: Sequence[int]) -> torch.Tensor:
        """Samples ``indices`` of the run's sample plan: (B, 3, H, W) float in [0, 1]."""

    def generate(self, batch_size: int = 32) -> Iterator[torch.Tensor]:
        """Every sample in order, ``batch_size`` at a time (needs ``num_samples``)."""
        if self.num_samples is None:
            raise ValueError(f"generator {self.name!r} has no fixed sample count; ask for samples by index")
        for start in range(0, self.num_samples, batch_size):
            yield self.samples(range(start, min(start + batch_size, self.num_samples)))

    @property
    def num_samples(self) -> int | None:
        """How many images the generator will yield when that is fixed (sample readers)."""
        return None

    def options(self) -> dict[str, Any]:
        return {}

    # What a generator can do besides sampling, declared here with defaults; subclasses override.
    def to(self, device: torch.device | str) -> Generator:
        """Move networks to the run's device (called before any sample is asked for)."""
        return self

    def as_dataset(self) -> Dataset | None:
        """Samples that already exist as files, as a dataset the engine loads in DataLoader
        workers (sample readers); None when the generator makes each sample from its index."""
        return None

    def labels(self, indices: Sequence[int]) -> list[int] | None:
        """The class label of each sample (class-conditional generators), else None."""
        return None

    def prompts_for(self, indices: Sequence[int]) -> list[str] | None:
        """The prompt of each sample (text-to-image generators), else None."""
        return None

    def as_uint8(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float samples in [0, 1] -> uint8 levels, converted as the release's own
        sampling script saves them (``to_8bit``): the levels its published numbers were scored on."""
        if self.to_8bit not in TO_8BIT:
            raise ValueError(f"{type(self).__name__}.to_8bit must be one of {', '.join(TO_8BIT)}, got {self.to_8bit!r}")
        scaled = images.clamp(0, 1).mul(255)
        return (scaled.round() if self.to_8bit == "round" else scaled.floor()).to(torch.uint8)


class TokenGenerator(Generator):
    """A class-conditional generator that samples token ids with a network and decodes them
    with a vtbench tokenizer. Subclasses set ``plan`` (a :class:`ClassPlan`), ``network``
    and ``tokenizer``, and define :meth:`sample_ids` and :meth:`tokens`; sample *i* is class
    ``plan.label(i)`` drawn with ``plan.generator(i)``."""

    device: torch.device = torch.device("cpu")

    @abstractmethod
    def sample_ids(self, labels: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        """(B,) class labels -> (B, L) token ids, row *b* drawn with ``generators[b]``."""

    @abstractmethod
    def tokens(self, ids: torch.Tensor) -> Any:
        """(B, L) ids -> the tokenizer's :class:`~vtbench.tokenizers.base.Tokens`."""

    @property
    def num_samples(self) -> int:
        return self.plan.num_samples  # type: ignore[attr-defined]

    def labels(self, indices: Sequence[int]) -> list[int]:
        return [self.plan.label(i) for i in indices]  # type: ignore[attr-defined]

    def to(self, device: torch.device | str) -> TokenGenerator:
        self.device = torch.device(device)
        self.network.to(self.device)  # type: ignore[attr-defined]
        self.tokenizer.to(self.device)  # type: ignore[attr-defined]
        return self

    def samples(self, indices: Sequence[int]) -> torch.Tensor:
        labels = torch.tensor(self.labels(indices), device=self.device)
        ids = self.sample_ids(labels, [self.plan.generator(i) for i in indices])  # type: ignore[attr-defined]
        with torch.no_grad():
            return self.tokenizer.decode(self.tokens(ids)).float().clamp(0, 1)  # type: ignore[attr-defined]
