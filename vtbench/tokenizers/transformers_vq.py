"""VQ-VAEs from transformers: Janus / Janus-Pro (``JanusVQVAE``) and Emu3 (``Emu3VQVAE``).

Published models ship the VQ-VAE inside the whole multimodal checkpoint: ``config.json``
holds it as ``vq_config`` and its tensors sit under a ``...vqmodel.`` prefix in the
safetensors shards. Only the config and the shards that hold those tensors are read (from
the Hugging Face cache, or from ``weights=``: a local copy of the repository, or a folder
that ``save_pretrained`` wrote for the VQ-VAE alone). Images go in as [-1, 1].

``ChameleonVQVAE`` and ``GlmImageVQVAE`` have no decoder in transformers, so they cannot
reconstruct; asking for them is an error that says so.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from vtbench.tokenizers.base import TokenizerInfo, Tokens
from vtbench.tokenizers.neural import NetworkTokenizer, compute_dtype, hub_unavailable, local_path
from vtbench.weights import WeightsUnavailableError, offline

DECODING_CLASSES = ("JanusVQVAE", "Emu3VQVAE")
ENCODER_ONLY = ("ChameleonVQVAE", "GlmImageVQVAE")
VQ_PREFIX_MARK = "vqmodel."


def _repository_folder(repo: str, revision: str | None, tokenizer: str) -> Path:
    """The cached snapshot of ``repo`` holding its config and shard index (not the shards)."""
    from huggingface_hub import snapshot_download

    patterns = ["config.json", "*.safetensors.index.json"]
    try:
        return Path(snapshot_download(repo, revision=revision, allow_patterns=patterns, local_files_only=offline()))
    except Exception as exc:
        raise hub_unavailable(tokenizer, repo, None, exc) from None


def _vq_tensors(folder: Path, repo: str | None, revision: str | None) -> dict[str, torch.Tensor]:
    """The VQ-VAE's tensors (prefix stripped) from the shards that hold them; shards missing
    from ``folder`` come from the hub cache of ``repo`` (None: a local copy, nothing to fetch)."""
    from safetensors.torch import load_file

    index_files = sorted(folder.glob("*.safetensors.index.json"))
    if index_files:
        weight_map: dict[str, str] = json.loads(index_files[0].read_text())["weight_map"]
        shards = sorted({shard for key, shard in weight_map.items() if VQ_PREFIX_MARK in key})
    else:
        shards = [p.name for p in sorted(folder.glob("*.safetensors"))]
    state: dict[str, torch.Tensor] = {}
    for shard in shards:
        path = folder / shard
        if not path.is_file() and repo is None:
            raise WeightsUnavailableError(f"{path}: shard listed in the index but missing from the local copy")
        if not path.is_file():
            from huggingface_hub import hf_hub_download

            try:
                path = Path(hf_hub_download(repo, shard, revision=revision, local_files_only=offline()))
            except Exception as exc:
                raise hub_unavailable(repo, repo, None, exc) from None
        for key, tensor in load_file(str(path)).items():
            if VQ_PREFIX_MARK in key:
                state[key[key.index(VQ_PREFIX_MARK) + len(VQ_PREFIX_MARK) :]] = tensor
    if not state:
        raise ValueError(f"{folder}: no tensors under a '{VQ_PREFIX_MARK}' prefix in {', '.join(shards) or 'no shards'}")
    return state


class TransformersVQVAE(NetworkTokenizer):
    """A transformers VQ-VAE class (``model_class``) from a multimodal repository ``repo``."""

    def __init__(
        self,
        repo: str,
        model_class: str = "JanusVQVAE",
        revision: str | None = None,
        weights: str | None = None,
        native_resolution: int | None = None,
        dtype: str = "float32",
    ) -> None:
        import transformers

        if model_class in ENCODER_ONLY:
            raise ValueError(f"transformers' {model_class} has no decoder, so it cannot reconstruct images")
        if model_class not in DECODING_CLASSES:
            raise ValueError(f"model_class {model_class!r} is not one of {', '.join(DECODING_CLASSES)}")
        self.name, self.repo, self.model_class, self.revision, self.dtype_name = repo, repo, model_class, revision, dtype
        self.dtype = compute_dtype(dtype)
        self.weights = local_path(weights)
        model_cls, config_cls = getattr(transformers, model_class), getattr(transformers, f"{model_class}Config")
        folder = self.weights or _repository_folder(repo, revision, repo)
        config = json.loads((folder / "config.json").read_text())
        if "vq_config" in config:
            self.model = model_cls(config_cls(**config["vq_config"]))
            state = _vq_tensors(folder, None if self.weights else repo, revision)
            missing, unexpected = self.model.load_state_dict(state, strict=False)
            if missing or unexpected:
                raise ValueError(f"{folder}: VQ tensors do not match {model_class}: missing {missing[:3]}, unexpected {unexpected[:3]}")
        else:  # the VQ-VAE saved on its own
            self.model = model_cls.from_pretrained(str(folder))
        self.model.eval().requires_grad_(False).to(self.dtype)
        vq = self.model.config
        codebook = int(getattr(vq, "num_embeddings", 0) or getattr(vq, "codebook_size", 0))
        self.factor = 2 ** (len(vq.channel_multiplier) - 1)
        if model_class == "JanusVQVAE":
            side = self.model.quantize.quant_state_dims[0] * self.factor
            native_resolution = native_resolution or side
        self.info = TokenizerInfo(
            family="discrete", quantizer="vq", codebook_size=codebook, native_resolution=native_resolution,
            accepts_any_size=model_class != "JanusVQVAE", input_range=(-1.0, 1.0),
            source=str(self.weights) if self.weights else f"hf://{repo}",
            extra={"library": f"transformers {transformers.__version__}", "model_class": model_class, "downsampling": self.factor,
                   "parameters": self.parameter_count()},
        )  # fmt: skip

    def options(self) -> dict[str, Any]:
        weights = str(self.weights) if self.weights else None
        return {"repo": self.repo, "model_class": self.model_class, "revision": self.revision, "weights": weights, "dtype": self.dtype_name}

    def encode(self, images: torch.Tensor) -> Tokens:
        n, _, height, width = images.shape
        x = self._input(images)
        if self.model_class == "JanusVQVAE":
            expected = self.model.quantize.quant_state_dims[0] * self.factor
            if (height, width) != (expected, expected):
                raise ValueError(f"Janus VQ decodes a fixed {expected}x{expected} grid; got {width}x{height} (use --resolution {expected})")
            ids = self.model.encode(x).image_tokens.reshape(n, height // self.factor, width // self.factor)
        else:
            sizes = torch.tensor([[height, width]] * n, device=self.device)
            ids = torch.stack(list(self.model.encode(x, image_sizes=sizes).image_tokens))
        per_image = ids[0].numel()
        bits = torch.full((n,), per_image * math.log2(self.info.codebook_size), dtype=torch.float64)
        counts = torch.full((n,), per_image, dtype=torch.int64)
        return Tokens(ids, bits, counts, (height, width), indices=ids, codebook_size=self.info.codebook_size)

    def decode(self, tokens: Tokens) -> torch.Tensor:
        ids = tokens.data
        images = self.model.decode(ids.reshape(ids.shape[0], -1) if self.model_class == "JanusVQVAE" else ids)
        return self._output(images)
