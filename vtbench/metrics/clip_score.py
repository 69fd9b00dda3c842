"""CLIPScore of generated samples against their prompts (Hessel et al. 2021), as torchmetrics
computes it: each sample scores ``100 * cos(E_image, E_text)`` with a transformers CLIP model
(default ``openai/clip-vit-large-patch14``, from the Hugging Face cache or ``weights=`` a
local copy), images through the model's own ``CLIPProcessor``; the run's value is
``max(mean, 0)``. Prompts come from a text-to-image generator (sample *i*'s own prompt) or
from ``prompts=FILE`` (line *i* for sample *i*, for samples made elsewhere).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from vtbench.metrics.base import MeanMetric, MetricBatch


class CLIPScore(MeanMetric):
    """100 x cosine similarity of CLIP image and prompt embeddings, mean over samples, at least 0."""

    name = "clip-score"
    higher_is_better = True
    on_clips = "no"
    scores_samples = True  # a generation run may use it: it needs each sample and its prompt, not pairs
    description = "CLIPScore of samples vs their prompts (torchmetrics' definition; transformers CLIP from the hub cache)"

    def __init__(self, repo: str = "openai/clip-vit-large-patch14", revision: str | None = None, weights: str | None = None,
                 prompts: str | None = None) -> None:  # fmt: skip
        super().__init__()
        self.repo, self.revision, self.weights = repo, revision, weights
        self.prompt_lines: list[str] | None = None
        if prompts is not None:
            self.prompt_lines = [
                line.strip() for line in Path(prompts).expanduser().read_text(encoding="utf-8").splitlines() if line.strip()
            ]
        self.model: Any = None

    def prepare(self, located: dict[str, Any], device: torch.device) -> None:
        from transformers import CLIPModel, CLIPProcessor

        from vtbench.tokenizers.neural import hub_unavailable, local_path
        from vtbench.weights import offline

        path = local_path(self.weights)
        try:
            source = str(path) if path is not None else self.repo
            options = {} if path is not None else {"revision": self.revision, "local_files_only": offline()}
            self.model = CLIPModel.from_pretrained(source, **options).eval().to(device)
            self.processor = CLIPProcessor.from_pretrained(source, **options)
        except OSError as exc:
            raise hub_unavailable(self.repo, self.repo, None, exc, kind="metric clip-score for") from None
        self.device = device

    def parameters(self) -> dict:
        return {"model": self.weights or f"hf://{self.repo}", "formula": "100 * cos(image, prompt) per sample; max(mean, 0)",
                "images": "8-bit samples through the model's CLIPProcessor"}  # fmt: skip

    def update(self, batch: MetricBatch) -> torch.Tensor | None:
        if batch.reconstructions.numel() == 0:  # the reference side of a generation run: nothing to score
            return None
        return super().update(batch)

    def _prompts(self, batch: MetricBatch) -> list[str]:
        prompts = []
        for image_id, meta in zip(batch.ids, batch.meta or [{}] * len(batch.ids), strict=True):
            prompt = meta.get("prompt")
            if prompt is None and self.prompt_lines is not None and meta.get("index") is not None:
                prompt = self.prompt_lines[meta["index"] % len(self.prompt_lines)]
            if prompt is None:
                raise ValueError(f"{image_id}: no prompt (use a text-to-image generator, or clip-score:prompts=FILE, one line per sample)")
            prompts.append(prompt)
        return prompts

    def score(self, batch: MetricBatch) -> torch.Tensor:
        images = [image for image in batch.reconstructions.mul(255).round().to(torch.uint8).cpu()]
        inputs = self.processor(text=self._prompts(batch), images=images, return_tensors="pt", padding=True)
        with torch.no_grad():
            image = _embedding(self.model.get_image_features(pixel_values=inputs["pixel_values"].to(self.device)))
            text = _embedding(self.model.get_text_features(input_ids=inputs["input_ids"].to(self.device),
                                                           attention_mask=inputs["attention_mask"].to(self.device)))  # fmt: skip
        image = image / image.norm(p=2, dim=-1, keepdim=True)
        text = text / text.norm(p=2, dim=-1, keepdim=True)
        return 100 * (image * text).sum(dim=-1).double()

    def compute(self) -> float:
        return max(super().compute(), 0.0)


def _embedding(output: Any) -> torch.Tensor:
    """The projected embedding: transformers 4 returns the tensor, 5 a model output whose
    ``pooler_output`` holds it."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output
