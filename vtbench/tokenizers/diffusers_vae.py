"""Image autoencoders from diffusers: KL VAEs (SD, SDXL, SD3.5, FLUX, Qwen-Image ...),
DC-AE, TAESD (``AutoencoderTiny``) and VQ models (aMUSEd VQGAN, MoVQ), by class name.

Loaded with ``from_pretrained`` from the Hugging Face cache (or ``weights=``: a local copy
of the model folder, or a single original-format ``.safetensors``/``.ckpt`` where the class
supports ``from_single_file``). Images go in as [-1, 1]. Continuous latents are the
posterior mean (``posterior="mean"``) or a seeded sample (``"sample"``); both are stored
normalised as the source defines (per channel ``(z - latents_mean) / latents_std`` where the
config has them, as Wan and Qwen-Image do, else ``(z - shift_factor) * scaling_factor``)
and unnormalised before decoding. Representation autoencoders (``AutoencoderRAE``) take
[0, 1] images and normalise their latents themselves. VQ models are decoded from their code ids, so the ids are the whole message.
"""

from __future__ import annotations

from typing import Any

import torch

from vtbench.tokenizers.base import TokenizerInfo, Tokens
from vtbench.tokenizers.neural import NetworkTokenizer, compute_dtype, hub_unavailable, local_path
from vtbench.weights import offline

POSTERIORS = ("mean", "sample")
SELF_NORMALISING = ("AutoencoderRAE",)  # [0, 1] in and out; latent statistics applied inside the model


class DiffusersAutoencoder(NetworkTokenizer):
    """Any diffusers image autoencoder class (``model_class``) from ``repo``/``subfolder``."""

    def __init__(
        self,
        repo: str | None = None,
        model_class: str = "AutoencoderKL",
        subfolder: str | None = None,
        revision: str | None = None,
        weights: str | None = None,
        native_resolution: int | None = None,
        posterior: str = "mean",
        seed: int = 0,
        dtype: str = "float32",
        temporal: bool = False,
    ) -> None:
        import diffusers

        if posterior not in POSTERIORS:
            raise ValueError(f"posterior {posterior!r} is not one of {', '.join(POSTERIORS)}")
        if not hasattr(diffusers, model_class):
            raise ValueError(f"diffusers {diffusers.__version__} has no model class {model_class!r}")
        if repo is None and weights is None:
            raise ValueError("give the model's hub repository (repo=ORG/NAME) or a local copy (--weights PATH)")
        self.name = repo or str(weights)
        self.repo, self.model_class, self.subfolder, self.revision = repo, model_class, subfolder, revision
        self.posterior, self.seed, self.temporal, self.dtype_name = posterior, int(seed), bool(temporal), dtype
        self.dtype = compute_dtype(dtype)
        self.weights = local_path(weights)
        self.model = self._load(getattr(diffusers, model_class)).eval().requires_grad_(False)
        config = self.model.config
        self.scaling_factor = float(getattr(config, "scaling_factor", None) or 1.0)
        self.shift_factor = float(getattr(config, "shift_factor", None) or 0.0)
        self.self_normalising = model_class in SELF_NORMALISING
        self.channel_stats = None
        mean, std = getattr(config, "latents_mean", None), getattr(config, "latents_std", None)
        channels = int(getattr(config, "latent_channels", 0) or getattr(config, "z_dim", 0) or 0)
        if not self.self_normalising and mean is not None and std is not None and len(mean) == len(std) == channels:
            self.channel_stats = (torch.tensor(mean), torch.tensor(std))
        if self.self_normalising:
            self.scaling_factor, self.shift_factor = 1.0, 0.0
        self.is_vq = hasattr(self.model, "quantize")
        codebook = int(config.num_vq_embeddings) if self.is_vq else None
        self.info = TokenizerInfo(
            family="discrete" if self.is_vq else "continuous",
            quantizer="vq" if self.is_vq else ("kl" if "KL" in model_class else "none"),
            codebook_size=codebook,
            native_resolution=native_resolution,
            accepts_any_size=True,
            input_range=(0.0, 1.0) if self.self_normalising else (-1.0, 1.0),
            source=str(self.weights) if self.weights else f"hf://{repo}" + (f"/{subfolder}" if subfolder else ""),
            video=self.temporal,
            extra={
                "library": f"diffusers {diffusers.__version__}",
                "model_class": model_class,
                "latent_channels": int(getattr(config, "latent_channels", 0) or 0),
                "scaling_factor": self.scaling_factor,
                "shift_factor": self.shift_factor,
                "latent_normalisation": self._normalisation(),
                "posterior": None if self.is_vq else posterior,
                "parameters": self.parameter_count(),
            },
        )

    def _load(self, cls: Any) -> torch.nn.Module:
        options = {"torch_dtype": self.dtype}
        if self.weights is not None and self.weights.is_file():
            if not hasattr(cls, "from_single_file"):
                raise ValueError(f"{self.model_class} cannot load a single file; pass the model folder as --weights")
            return cls.from_single_file(str(self.weights), **options)
        if self.weights is not None:
            return cls.from_pretrained(str(self.weights), **options)
        try:
            return cls.from_pretrained(self.repo, subfolder=self.subfolder, revision=self.revision, local_files_only=offline(), **options)
        except (OSError, ValueError) as exc:
            raise hub_unavailable(self.name, self.repo, self.subfolder, exc) from None

    def options(self) -> dict[str, Any]:
        return {
            "repo": self.repo,
            "model_class": self.model_class,
            "subfolder": self.subfolder,
            "revision": self.revision,
            "weights": str(self.weights) if self.weights else None,
            "posterior": self.posterior,
            "seed": self.seed,
            "dtype": self.dtype_name,
        }

    def _normalisation(self) -> str:
        if self.self_normalising:
            return "inside the model"
        return "per-channel latents_mean/std" if self.channel_stats else "shift_factor/scaling_factor"

    def encode(self, images: torch.Tensor) -> Tokens:
        """Images (N, 3, H, W), or clips (N, T, 3, H, W) for a video VAE (``temporal``)."""
        x = images.to(self.device, self.dtype) if self.self_normalising else self._input(images)
        if self.temporal:  # the video-family VAEs take (N, C, frames, H, W); an image is one frame
            x = x.transpose(1, 2) if images.dim() == 5 else x.unsqueeze(2)
        output = self.model.encode(x)
        n, height, width = images.shape[0], images.shape[-2], images.shape[-1]
        if self.is_vq:
            quantized, _, (_, _, ids) = self.model.quantize(output.latents)
            ids = ids.reshape(n, *quantized.shape[-2:])
            return Tokens.from_ids(ids, self.info.codebook_size, (height, width), data=(ids, tuple(quantized.shape)))
        if hasattr(output, "latent_dist"):
            if self.posterior == "mean":
                latents = output.latent_dist.mode()
            else:
                generator = torch.Generator(device=self.device).manual_seed(self.seed)
                dist = output.latent_dist
                latents = dist.mean + dist.std * torch.randn(
                    dist.mean.shape, generator=generator, device=self.device, dtype=dist.mean.dtype
                )
        else:
            latents = output.latent if hasattr(output, "latent") else output.latents
        latents = self._normalise(latents)
        element_bits = torch.finfo(latents.dtype).bits
        per_image = latents[0].numel()
        positions = latents.shape[-2] * latents.shape[-1] * (latents.shape[2] if images.dim() == 5 else 1)  # clips: t x h x w
        return Tokens(
            data=latents,
            bits=torch.full((n,), float(per_image * element_bits), dtype=torch.float64),
            counts=torch.full((n,), positions, dtype=torch.int64),
            image_size=(height, width),
            latent_shape=tuple(latents.shape[1:]),
            latent_dtype=str(latents.dtype).removeprefix("torch."),
            frames=images.shape[1] if images.dim() == 5 else None,
        )

    def _normalise(self, latents: torch.Tensor, inverse: bool = False) -> torch.Tensor:
        if self.channel_stats is None:
            return latents / self.scaling_factor + self.shift_factor if inverse else (latents - self.shift_factor) * self.scaling_factor
        shape = (1, -1) + (1,) * (latents.ndim - 2)
        mean, std = (t.to(latents.device, latents.dtype).view(shape) for t in self.channel_stats)
        return latents * std + mean if inverse else (latents - mean) / std

    def decode(self, tokens: Tokens) -> torch.Tensor:
        if self.is_vq:
            ids, shape = tokens.data
            quantized = self.model.quantize.get_codebook_entry(ids.reshape(-1), (shape[0], shape[2], shape[3], shape[1]))
            images = self.model.decode(quantized.to(self.dtype), force_not_quantize=True).sample
        else:
            images = self.model.decode(self._normalise(tokens.data, inverse=True)).sample
        if self.temporal:
            images = images.transpose(1, 2) if tokens.frames is not None else images[:, :, 0]
        return images.float() if self.self_normalising else self._output(images)
