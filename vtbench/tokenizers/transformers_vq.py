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
from typing import Any

import torch

from vtbench.tokenizers.base import TokenizerInfo, Tokens
from vtbench.tokenizers.neural import NetworkTokenizer, compute_dtype, local_path, repository_folder, submodel_tensors

DECODING_CLASSES = ("JanusVQVAE", "Emu3VQVAE")
ENCODER_ONLY = ("ChameleonVQVAE", "GlmImageVQVAE")
VQ_PREFIX_MARK = "vqmodel."


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
        folder = self.weights or repository_folder(repo, revision)
        config = json.loads((folder / "config.json").read_text())
        if "vq_config" in config:
            self.model = model_cls(config_cls(**config["vq_config"]))
            state = submodel_tensors(folder, VQ_PREFIX_MARK, None if self.weights else repo, revision)
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
        return Tokens.from_ids(ids, self.info.codebook_size, (height, width))

    def decode(self, tokens: Tokens) -> torch.Tensor:
        ids = tokens.data
        images = self.model.decode(ids.reshape(ids.shape[0], -1) if self.model_class == "JanusVQVAE" else ids)
        return self._output(images)
