"""MaskGIT over TiTok's 1D tokens (bytedance/1d-tokenizer ``modeling/maskgit.py``, the
``ImageBert`` generators ``yucornetto/generator_titok_{l32,b64,s128}_imagenet``).

A BERT encoder (``transformers.BertModel``, absolute positions, the class token first) over
the token sequence, with ``lm_head`` predicting the codebook. Vocabulary: the codes, then
the mask token (``codebook_size``), then the 1,000 class tokens, then the null class for
guidance. Sampling follows upstream's ``generate``: all tokens start masked; at step *s* of
*S* every masked position draws a code (the argmax of the logits plus Gumbel noise at a
temperature annealed from ``randomize_temperature`` to 0), and the least confident of them
(confidence = the drawn logit plus annealed Gumbel noise) are masked again, ``floor(L *
arccos((s+1)/S) / (pi/2))`` of them (at least one, and fewer than were masked); guidance is
``cond + scale * (cond - uncond)``, its scale rising linearly from 0 with
``guidance_decay="linear"``. Each sample draws its noise from its own generator.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vtbench.generators.base import TokenGenerator
from vtbench.generators.sampling import ClassPlan
from vtbench.tokenizers.base import Tokens
from vtbench.tokenizers.neural import compute_dtype, hub_unavailable, local_path
from vtbench.weights import offline

IGNORED_BUFFERS = ("model.embeddings.position_ids", "model.embeddings.token_type_ids")


class ImageBert(nn.Module):
    """The generator network: ``model`` (a BertModel) and ``model.lm_head``."""

    def __init__(self, codebook_size: int, sequence: int, classes: int = 1000, hidden: int = 768, layers: int = 24, heads: int = 16,
                 intermediate: int = 3072) -> None:  # fmt: skip
        from transformers import BertConfig, BertModel

        super().__init__()
        self.codebook_size, self.sequence, self.classes = codebook_size, sequence, classes
        config = BertConfig(vocab_size=codebook_size + classes + 2, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                            intermediate_size=intermediate, hidden_act="gelu", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                            max_position_embeddings=sequence + 1, layer_norm_eps=1e-12, pad_token_id=None)  # fmt: skip
        self.model = BertModel(config, add_pooling_layer=False)
        self.model.lm_head = nn.Linear(hidden, codebook_size)

    def logits(self, ids: torch.Tensor, labels: torch.Tensor, conditional: bool = True) -> torch.Tensor:
        """(B, L) ids (masked positions = ``codebook_size``), (B,) labels -> (B, L, codes) logits;
        ``conditional=False`` uses the null class."""
        condition = labels + self.codebook_size + 1 if conditional else torch.full_like(labels, self.codebook_size + 1 + self.classes)
        hidden = self.model(input_ids=torch.cat([condition[:, None], ids], dim=1))[0]
        return self.model.lm_head(hidden[:, 1:]).float()

    @torch.no_grad()
    def generate(self, labels: torch.Tensor, generators: Sequence[torch.Generator], guidance_scale: float = 3.0,
                 guidance_decay: str = "constant", randomize_temperature: float = 4.5, steps: int = 8,
                 trace: list[list[int]] | None = None) -> torch.Tensor:  # fmt: skip
        """(B,) labels -> (B, L) codes; ``trace`` collects each step's masked count per sample."""
        batch, length, mask = len(labels), self.sequence, self.codebook_size
        ids = torch.full((batch, length), mask, dtype=torch.long, device=labels.device)
        scale = 0.0 if guidance_decay == "linear" else guidance_scale
        for step in range(steps):
            ratio = (step + 1) / steps
            temperature = randomize_temperature * (1.0 - ratio)
            masked = ids == mask
            logits = self.logits(ids, labels)
            if scale != 0:
                logits = logits + (logits - self.logits(ids, labels, conditional=False)) * scale
            noise = torch.stack([torch.rand(length, logits.shape[-1] + 1, generator=g, dtype=torch.float64) for g in generators]).to(logits)
            drawn = (logits + temperature * _gumbel(noise[..., :-1])).argmax(dim=-1)
            drawn_logits = logits.gather(-1, drawn[..., None]).squeeze(-1)
            drawn = torch.where(masked, drawn, ids)
            drawn_logits = torch.where(masked, drawn_logits, torch.full_like(drawn_logits, float("inf")))
            if step == steps - 1:
                ids = drawn
                break
            keep_masked = torch.clamp(masked.sum(dim=-1, keepdim=True) - 1, max=math.floor(length * math.acos(ratio) / (math.pi / 2)))
            keep_masked = keep_masked.clamp(min=1)
            confidence = drawn_logits + temperature * _gumbel(noise[..., -1])
            cut_off = confidence.sort(dim=-1).values.gather(-1, keep_masked - 1)
            ids = torch.where(confidence <= cut_off, mask, drawn)
            if trace is not None:
                trace.append((ids == mask).sum(dim=-1).tolist())
            if guidance_decay == "linear":
                scale = ratio * guidance_scale
        return ids


def _gumbel(uniform: torch.Tensor) -> torch.Tensor:
    """Gumbel noise from uniform draws, as upstream: ``-log(-log(u))``, logs clamped at 1e-20."""
    return -torch.log((-torch.log(uniform.clamp(min=1e-20))).clamp(min=1e-20))


def load_generator_folder(folder: Path) -> tuple[ImageBert, dict[str, Any]]:
    """An ImageBert from a hub folder (``config.json``, the OmegaConf dump, + ``model.safetensors``
    or ``pytorch_model.bin``), loaded strictly; returns it and the config's sampling settings."""
    from vtbench.safe_load import load_checkpoint

    config = json.loads((folder / "config.json").read_text())
    generator = config.get("model", {}).get("generator", {})
    codebook_size = int(config.get("model", {}).get("vq_model", {}).get("codebook_size", 4096))
    files = [folder / "model.safetensors", folder / "pytorch_model.bin"]
    path = next((f for f in files if f.is_file()), None)
    if path is None:
        raise ValueError(f"{folder}: no model.safetensors or pytorch_model.bin")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = load_checkpoint(path)
    if "model.lm_head.weight" not in state:
        raise ValueError(f"{path}: not a TiTok MaskGIT generator (no model.lm_head.weight)")
    state = {k: v for k, v in state.items() if k not in IGNORED_BUFFERS}
    hidden = state["model.embeddings.word_embeddings.weight"].shape[1]
    layers = 1 + max(int(k.split(".")[3]) for k in state if k.startswith("model.encoder.layer."))
    model = ImageBert(codebook_size, int(generator.get("image_seq_len", state["model.embeddings.position_embeddings.weight"].shape[0] - 1)),
                      int(generator.get("condition_num_classes", 1000)), hidden, layers, int(generator.get("num_attention_heads", 16)),
                      state["model.encoder.layer.0.intermediate.dense.weight"].shape[0])  # fmt: skip
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{path}: does not match the TiTok MaskGIT layout: {exc}") from None
    sampling = {key: generator[key] for key in ("guidance_scale", "guidance_decay", "randomize_temperature") if key in generator}
    if "num_steps" in generator:
        sampling["steps"] = int(generator["num_steps"])
    return model, sampling


class TiTokMaskGIT(TokenGenerator):
    """A TiTok MaskGIT generator (hub ``repo`` or ``weights=`` a local copy of its folder),
    decoded by the matching TiTok tokenizer; sampling settings default to the repository's
    config (L-32: guidance 4.5 rising linearly, temperature 9.5, 8 steps)."""

    description = "MaskGIT over TiTok 1D tokens (the bytedance/1d-tokenizer ImageBert generators)"
    to_8bit = "truncate"  # the release's sample script: (torch.clamp(x, 0, 1) * 255).to(torch.uint8)

    def __init__(self, repo: str = "yucornetto/generator_titok_l32_imagenet", tokenizer: str = "titok-l32", revision: str | None = None,
                 weights: str | None = None, tokenizer_options: dict | None = None, guidance_scale: float | None = None,
                 guidance_decay: str | None = None, randomize_temperature: float | None = None, steps: int | None = None,
                 num_classes: int = 1000, per_class: int = 50, seed: int = 0, dtype: str = "float32") -> None:  # fmt: skip
        from vtbench.tokenizers import create_tokenizer

        ClassPlan(num_classes, per_class, seed)  # its ranges, checked before any file is read
        if guidance_decay not in (None, "constant", "linear"):
            raise ValueError(f"guidance_decay must be constant or linear, got {guidance_decay!r}")
        self.repo, self.revision, self.dtype_name, self.tokenizer_name = repo, revision, dtype, tokenizer
        path = local_path(weights)
        folder = path or self._snapshot()
        self.source = str(path) if path else f"hf://{repo}"
        self.model, defaults = load_generator_folder(folder)
        self.model.eval().requires_grad_(False).to(compute_dtype(dtype))
        given = {"guidance_scale": guidance_scale, "guidance_decay": guidance_decay, "randomize_temperature": randomize_temperature,
                 "steps": steps}  # fmt: skip
        self.sampling = {"guidance_scale": 3.0, "guidance_decay": "constant", "randomize_temperature": 4.5, "steps": 8, **defaults,
                         **{k: v for k, v in given.items() if v is not None}}  # fmt: skip
        self.tokenizer_options = dict(tokenizer_options or {})
        self.tokenizer = create_tokenizer(tokenizer, **self.tokenizer_options)
        if self.tokenizer.info.codebook_size != self.model.codebook_size or self.tokenizer.info.tokens_per_image != self.model.sequence:
            info = self.tokenizer.info
            raise ValueError(f"tokenizer {tokenizer!r} ({info.tokens_per_image} tokens of {info.codebook_size} codes) does not match "
                             f"the generator ({self.model.sequence} of {self.model.codebook_size})")  # fmt: skip
        self.plan = ClassPlan(min(num_classes, self.model.classes), per_class, seed)

    def _snapshot(self) -> Path:
        from huggingface_hub import snapshot_download

        try:
            return Path(snapshot_download(self.repo, revision=self.revision, local_files_only=offline(),
                                          allow_patterns=["config.json", "model.safetensors", "pytorch_model.bin"]))  # fmt: skip
        except Exception as exc:
            raise hub_unavailable(self.repo, self.repo, None, exc, kind="generator") from None

    @property
    def network(self) -> nn.Module:
        return self.model

    def sample_ids(self, labels: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        return self.model.generate(labels, generators, **self.sampling)

    def tokens(self, ids: torch.Tensor) -> Tokens:
        return Tokens.from_ids(ids, self.model.codebook_size, (256, 256))

    def options(self) -> dict[str, Any]:
        return {"repo": self.repo, "revision": self.revision, "source": self.source, "tokenizer": self.tokenizer_name,
                "tokenizer_options": self.tokenizer_options, **self.sampling, "num_classes": self.plan.num_classes,
                "per_class": self.plan.per_class, "seed": self.plan.seed, "dtype": self.dtype_name}  # fmt: skip
