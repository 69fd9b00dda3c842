"""Diffusion pipelines from diffusers as generators: class-conditional ones (``DiTPipeline``)
sample the class plan, text-to-image ones sample the lines of a prompt file.

The pipeline is loaded with ``from_pretrained`` from the Hugging Face cache (``repo``) or a
local folder (``weights=PATH``, a ``save_pretrained`` copy), with its own scheduler and
step count unless ``steps`` is given. Sample *i* starts from noise drawn with its own CPU
generator seeded by *i* (diffusers takes one generator per image), so it is the same image
whatever the batch, process or resume point, to float rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from vtbench.generators.base import Generator
from vtbench.generators.sampling import ClassPlan
from vtbench.tokenizers.neural import compute_dtype, hub_unavailable, local_path
from vtbench.weights import offline


class DiffusersPipeline(Generator):
    """A diffusers pipeline by hub name: class-conditional (no ``prompts``) or text-to-image
    (``prompts``: a UTF-8 file, one prompt per line; sample *i* is prompt ``i // per_prompt``)."""

    description = "A diffusers pipeline (DiTPipeline, or any text-to-image DiffusionPipeline with prompts=FILE)"

    def __init__(self, repo: str = "facebook/DiT-XL-2-256", revision: str | None = None, weights: str | None = None,
                 pipeline_class: str | None = None, prompts: str | None = None, per_prompt: int = 1, steps: int | None = None,
                 guidance_scale: float | None = None, resolution: int | None = None, num_classes: int = 1000, per_class: int = 50,
                 seed: int = 0, dtype: str = "float32") -> None:  # fmt: skip
        import diffusers

        self.plan = ClassPlan(num_classes, per_class, seed)  # its ranges, checked before any file is read
        if steps is not None and steps < 1 or per_prompt < 1:
            raise ValueError(f"steps and per_prompt must be at least 1, got {steps} and {per_prompt}")
        self.repo, self.revision, self.pipeline_class, self.dtype_name = repo, revision, pipeline_class, dtype
        self.steps, self.guidance_scale, self.resolution, self.seed = steps, guidance_scale, resolution, seed
        cls = getattr(diffusers, pipeline_class) if pipeline_class else diffusers.DiffusionPipeline
        if not isinstance(cls, type):
            raise ValueError(f"diffusers has no pipeline class {pipeline_class!r}")
        path = local_path(weights)
        self.source = str(path) if path is not None else f"hf://{repo}"
        try:
            if path is not None:
                self.pipe = cls.from_pretrained(str(path), torch_dtype=compute_dtype(dtype))
            else:
                self.pipe = cls.from_pretrained(repo, revision=revision, local_files_only=offline(), torch_dtype=compute_dtype(dtype))
        except OSError as exc:
            if path is not None:
                raise ValueError(f"{path}: not a diffusers pipeline folder ({str(exc).splitlines()[0][:200]})") from None
            raise hub_unavailable(repo, repo, None, exc, kind="generator") from None
        self.pipe.set_progress_bar_config(disable=True)
        self.prompts: list[str] | None = None
        if prompts is not None:
            lines = Path(prompts).expanduser().read_text(encoding="utf-8").splitlines()
            self.prompts = [line.strip() for line in lines if line.strip()]
            if not self.prompts:
                raise ValueError(f"{prompts}: no prompts (one per line)")
            self.prompts_file, self.per_prompt = prompts, per_prompt
        elif "class_labels" not in _call_parameters(self.pipe):
            raise ValueError(f"{type(self.pipe).__name__} is not class-conditional: give prompts=FILE (one prompt per line)")
        self.device = torch.device("cpu")

    @property
    def num_samples(self) -> int:
        return len(self.prompts) * self.per_prompt if self.prompts is not None else self.plan.num_samples

    def to(self, device: torch.device | str) -> DiffusersPipeline:
        self.device = torch.device(device)
        self.pipe.to(self.device)
        return self

    def labels(self, indices: Sequence[int]) -> list[int] | None:
        return [self.plan.label(i) for i in indices] if self.prompts is None else None

    def prompts_for(self, indices: Sequence[int]) -> list[str] | None:
        """Each sample's prompt (text-to-image pipelines), for prompt-aware metrics (CLIPScore)."""
        return [self.prompts[i // self.per_prompt] for i in indices] if self.prompts is not None else None

    def samples(self, indices: Sequence[int]) -> torch.Tensor:
        generators = [self.plan.generator(i) for i in indices]
        options: dict[str, Any] = {"generator": generators, "output_type": "np"}
        if self.steps is not None:
            options["num_inference_steps"] = self.steps
        if self.guidance_scale is not None:
            options["guidance_scale"] = self.guidance_scale
        with torch.no_grad():
            if self.prompts is None:
                images = self.pipe(class_labels=[self.plan.label(i) for i in indices], **options).images
            else:
                if self.resolution is not None:
                    options.update(height=self.resolution, width=self.resolution)
                images = self.pipe(prompt=[self.prompts[i // self.per_prompt] for i in indices], **options).images
        return torch.from_numpy(images).permute(0, 3, 1, 2).float().clamp(0, 1)

    def options(self) -> dict[str, Any]:
        scheduler = type(self.pipe.scheduler).__name__ if hasattr(self.pipe, "scheduler") else None
        described = {"repo": self.repo, "revision": self.revision, "source": self.source, "pipeline": type(self.pipe).__name__,
                     "scheduler": scheduler, "steps": self.steps, "guidance_scale": self.guidance_scale, "seed": self.seed,
                     "dtype": self.dtype_name}  # fmt: skip
        if self.prompts is None:
            described.update(num_classes=self.plan.num_classes, per_class=self.plan.per_class)
        else:
            described.update(prompts=self.prompts_file, n_prompts=len(self.prompts), per_prompt=self.per_prompt, resolution=self.resolution)
        return described


def _call_parameters(pipe: Any) -> set[str]:
    import inspect

    return set(inspect.signature(type(pipe).__call__).parameters)
