"""FlexTok: images as 1-D sequences of 1 to 256 tokens (apple/ml-flextok, arXiv 2502.13967), written here.

An image is first encoded by a 16-channel VAE (diffusers' AutoencoderKL, 8x downsampling,
latent times the config's scaling factor). The encoder, a transformer with query-key
LayerNorm, SwiGLU MLPs and no biases, reads the latent's 2x2 patches (with fixed sin-cos
positions) followed by 256 learned registers: patches see only patches, register i sees every
patch and registers 0..i. Each register is mapped to 6 values and quantized by FSQ with levels
(8, 8, 8, 5, 5, 5): 64,000 codes, channel 0 the least significant digit of the id.

The decoder is a rectified-flow transformer over the noised latent's patches and the 256
register slots: the first k hold the projected codes plus their positions, the rest a learned
mask token; adaLN-zero modulation (one set for patches, one for registers) carries the time.
Sampling integrates its velocity with ``steps`` Euler steps on t = 1, (T-1)/T, ..., 1/T from
noise, with classifier-free guidance against a learned null token in every slot, by default
the adaptive projected guidance (APG: momentum -0.5, norm threshold 2.5, no parallel part)
the release recommends; the VAE then decodes the latent.

``tokens`` (k), ``steps``, ``guidance``, ``apg`` and ``seed`` are options, recorded with every
run. Random draws (the VAE posterior sample at encoding, the sampler's starting noise) come
from generators seeded with ``seed`` and a digest of the image (its pixels, or its k ids), so
results never depend on the batch. Images go in as [-1, 1]; reconstructions are clamped to it.

Releases are hub repositories (``EPFL-VILAB/flextok_d18_d28_dfn`` ...) with ``model.safetensors``
whose metadata holds the Hydra config (also in ``config.json``); the scaling factor, time scale,
FSQ levels and head width are read from it, the rest from the tensors' shapes.
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vtbench.tokenizers.base import TokenizerInfo, Tokens
from vtbench.tokenizers.neural import NetworkTokenizer, compute_dtype, hub_unavailable, load_exactly, local_path
from vtbench.tokenizers.sampling import check_sampler_options, seeded_normal
from vtbench.tokenizers.transformer_blocks import layer_norm, patchify, sinusoidal_embedding, unpatchify
from vtbench.weights import offline

PATCH = 2  # latent patches of 2x2
EPS = 1e-5  # of every LayerNorm (none has parameters)
REGISTERS = 256
APG_MOMENTUM, APG_NORM_THRESHOLD = -0.5, 2.5


class Attention(nn.Module):
    def __init__(self, width: int, head_dim: int) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.wq, self.wk, self.wv, self.proj = (nn.Linear(width, width, bias=False) for _ in range(4))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        q, k, v = (w(x).unflatten(-1, (-1, self.head_dim)).transpose(1, 2) for w in (self.wq, self.wk, self.wv))
        out = F.scaled_dot_product_attention(layer_norm(q, EPS), layer_norm(k, EPS), v, attn_mask=mask, scale=8.0 / self.head_dim)
        return self.proj(out.transpose(1, 2).flatten(2))


class GatedMLP(nn.Module):
    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.fc3 = nn.Linear(width, hidden, bias=False), nn.Linear(width, hidden, bias=False)
        self.fc2 = nn.Linear(hidden, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.silu(self.fc1(x)) * self.fc3(x))


class Block(nn.Module):
    """Pre-norm block (LayerNorms without parameters); with ``modulations``, adaLN-zero whose
    rows 0 and 1 modulate the patch tokens and the register tokens."""

    def __init__(self, width: int, hidden: int, head_dim: int, modulations: int = 0) -> None:
        super().__init__()
        self.attn, self.mlp = Attention(width, head_dim), GatedMLP(width, hidden)
        if modulations:
            self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, modulations * 6 * width))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, time: torch.Tensor | None = None, split: int = 0) -> torch.Tensor:
        if time is None:
            x = x + self.attn(layer_norm(x, EPS), mask)
            return x + self.mlp(layer_norm(x, EPS))
        rows = self.adaLN_modulation(time).unflatten(-1, (-1, 6 * x.shape[-1]))  # (B, 2, 6 width)
        per_token = torch.cat([rows[:, :1].expand(-1, split, -1), rows[:, 1:].expand(-1, x.shape[1] - split, -1)], dim=1)
        gate_msa, gate_mlp, shift_msa, scale_msa, shift_mlp, scale_mlp = per_token.chunk(6, dim=-1)
        x = x + gate_msa * self.attn(layer_norm(x, EPS) * (1 + scale_msa) + shift_msa, mask)
        return x + gate_mlp * self.mlp(layer_norm(x, EPS) * (1 + scale_mlp) + shift_mlp)


def _linear_module(width_in: int, width_out: int) -> nn.Module:
    holder = nn.Module()
    holder.proj = nn.Linear(width_in, width_out)
    return holder


def _tensor_module(name: str, *shape: int) -> nn.Module:
    holder = nn.Module()
    holder.register_parameter(name, nn.Parameter(torch.zeros(*shape)))
    return holder


class Trunk(nn.Module):
    def __init__(self, width: int, depth: int, hidden: int, head_dim: int, modulations: int = 0) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(width, hidden, head_dim, modulations) for _ in range(depth))


class FlexTokEncoder(nn.Module):
    def __init__(self, width: int, depth: int, hidden: int, head_dim: int, channels: int = 16, code_dim: int = 6) -> None:
        super().__init__()
        self.module_dict = nn.ModuleDict({
            "enc_patch_emb": nn.Module(), "enc_posemb_module": _tensor_module("posembs", 1, width, 16, 16),
            "enc_register_module": _tensor_module("registers", REGISTERS, width),
            "enc_transformer": Trunk(width, depth, hidden, head_dim), "enc_to_latents": _linear_module(width, code_dim),
        })  # fmt: skip
        self.module_dict["enc_patch_emb"].patch_proj = nn.Linear(PATCH * PATCH * channels, width)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, 16, h, w) scaled VAE latents -> (B, 256, 6) register outputs before quantization."""
        parts = self.module_dict
        side = latents.shape[-1] // PATCH
        patches = parts["enc_patch_emb"].patch_proj(patchify(latents, PATCH))
        patches = patches + parts["enc_posemb_module"].posembs[0, :, :side, :side].flatten(1).T
        registers = parts["enc_register_module"].registers.expand(len(latents), -1, -1)
        x = torch.cat([patches, registers], dim=1)
        n, total = patches.shape[1], x.shape[1]
        query, key = torch.arange(total, device=x.device)[:, None], torch.arange(total, device=x.device)[None]
        mask = (key < n) | (key <= query)  # patches see patches; register i sees every patch and registers 0..i
        for block in parts["enc_transformer"].blocks:
            x = block(x, mask)
        return parts["enc_to_latents"].proj(layer_norm(x[:, n:], EPS))


class TimeEmbedder(nn.Module):
    def __init__(self, width: int, max_timestep: float) -> None:
        super().__init__()
        self.max_timestep = max_timestep
        self.mlp = nn.Sequential(nn.Linear(256, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        embedding = sinusoidal_embedding(t, scale=1000.0 / self.max_timestep, max_period=256)
        return self.mlp(embedding.to(self.mlp[0].weight.dtype))


class FlexTokDecoder(nn.Module):
    def __init__(self, width: int, depth: int, hidden: int, head_dim: int, max_timestep: float, channels: int = 16,
                 code_dim: int = 6) -> None:  # fmt: skip
        super().__init__()
        head = nn.Module()
        head.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))
        head.proj = nn.Linear(width, PATCH * PATCH * channels)
        self.module_dict = nn.ModuleDict({
            "dec_from_latents": _linear_module(code_dim, width),
            "dec_registers_posemb_module": _tensor_module("posembs", 1, 1, width, REGISTERS),
            "dec_nested_dropout": _tensor_module("dropout_mask_token", width), "dec_latent_dropout": _tensor_module("nullcond", width),
            "dec_noise_patch_emb": nn.Module(), "dec_patches_posemb_module": _tensor_module("posembs", 1, width, 16, 16),
            "dec_time_embedder": TimeEmbedder(width, max_timestep), "dec_transformer": Trunk(width, depth, hidden, head_dim, 2),
            "dec_to_patches": head,
        })  # fmt: skip
        self.module_dict["dec_noise_patch_emb"].patch_proj = nn.Linear(PATCH * PATCH * channels, width)

    def registers(self, codes: torch.Tensor, keep: int) -> torch.Tensor:
        """(B, 256, 6) FSQ values -> (B, 256, width) register slots: the first ``keep`` codes, mask tokens after."""
        parts = self.module_dict
        slots = parts["dec_from_latents"].proj(codes) + parts["dec_registers_posemb_module"].posembs[0, 0].T
        slots[:, keep:] = parts["dec_nested_dropout"].dropout_mask_token
        return slots

    def null_registers(self, batch: int) -> torch.Tensor:
        return self.module_dict["dec_latent_dropout"].nullcond.expand(batch, REGISTERS, -1)

    def forward(self, noised: torch.Tensor, registers: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Velocity (B, 16, h, w) at flow time t (B,) for noised latents and register slots."""
        parts = self.module_dict
        rows, columns = noised.shape[-2] // PATCH, noised.shape[-1] // PATCH
        patches = parts["dec_noise_patch_emb"].patch_proj(patchify(noised, PATCH))
        patches = patches + parts["dec_patches_posemb_module"].posembs[0, :, :rows, :columns].flatten(1).T
        time = parts["dec_time_embedder"](t)
        x = torch.cat([patches, registers], dim=1)
        for block in parts["dec_transformer"].blocks:
            x = block(x, time=time, split=patches.shape[1])
        head = parts["dec_to_patches"]
        shift, scale = head.adaLN_modulation(time)[:, None].chunk(2, dim=-1)
        out = head.proj(layer_norm(x[:, : patches.shape[1]], EPS) * (1 + scale) + shift)
        return unpatchify(out, PATCH, rows, columns)


class FSQ:
    """Finite scalar quantization with the release's bound (eps 1e-3) and mixed-radix ids, channel 0 least significant."""

    def __init__(self, levels: list[int]) -> None:
        self.levels = torch.tensor(levels, dtype=torch.float32)
        self.basis = torch.cumprod(torch.tensor([1, *levels[:-1]]), dim=0)
        self.size = math.prod(levels)

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """(..., d) float32 -> (..., d) values in [-1, 1]."""
        levels = self.levels.to(z.device)
        half = (levels - 1) * (1 + 1e-3) / 2
        offset = torch.where(levels % 2 == 0, 0.5, 0.0)
        bounded = torch.tanh(z + torch.atanh(offset / half)) * half - offset
        return torch.round(bounded) / (levels // 2)

    def ids(self, values: torch.Tensor) -> torch.Tensor:
        half = self.levels.to(values.device) // 2
        return ((values * half + half).round().long() * self.basis.to(values.device)).sum(-1)

    def values(self, ids: torch.Tensor) -> torch.Tensor:
        levels, basis = self.levels.to(ids.device).long(), self.basis.to(ids.device)
        half = levels // 2
        return ((ids[..., None] // basis) % levels - half).float() / half


def read_config(path: Path) -> dict[str, Any]:
    """The Hydra config a ``model.safetensors`` carries in its metadata (one Python literal per
    top-level key), else the ``config.json`` beside it."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as handle:
            metadata = handle.metadata() or {}
    except Exception as exc:
        raise ValueError(f"{path}: not a safetensors file ({exc}); FlexTok's weights are its hub repository's model.safetensors") from None
    config = {}
    for key, text in metadata.items():
        try:
            config[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            config[key] = text
    if "decoder" not in config and (path.parent / "config.json").is_file():
        config = json.loads((path.parent / "config.json").read_text())
    if "decoder" not in config:
        raise ValueError(f"{path}: no FlexTok config in its metadata and no config.json beside it")
    return config


def _module_config(config: dict[str, Any], part: str, name: str) -> dict[str, Any]:
    return ((config.get(part) or {}).get("module_dict") or {}).get(name) or {}


def build_vae(state: dict[str, torch.Tensor], config: dict[str, Any], source: Path) -> nn.Module:
    """The AutoencoderKL, from the ``vae.vae.`` tensors of the FlexTok file (upstream's SDXL-like
    config: 2x2 groups of 32, block widths read from the tensors), else from its hub repository."""
    from diffusers import AutoencoderKL

    tensors = {k.removeprefix("vae.vae."): v for k, v in state.items() if k.startswith("vae.vae.")}
    vae_config = config.get("vae") or {}
    if not tensors:
        repo = vae_config.get("hf_hub_path")
        if not repo:
            raise ValueError(f"{source}: no VAE tensors (vae.vae.*) and no hf_hub_path in its config")
        try:
            return AutoencoderKL.from_pretrained(repo, local_files_only=offline())
        except Exception as exc:
            raise hub_unavailable("flextok", repo, None, exc) from None
    levels = 1 + max(int(k.split(".")[2]) for k in tensors if k.startswith("encoder.down_blocks."))
    widths = [tensors[f"encoder.down_blocks.{i}.resnets.0.conv1.weight"].shape[0] for i in range(levels)]
    layers = 1 + max(int(k.split(".")[4]) for k in tensors if k.startswith("encoder.down_blocks.0.resnets."))
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * levels, up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=tuple(widths), layers_per_block=layers, norm_num_groups=32,
        latent_channels=tensors["decoder.conv_in.weight"].shape[1],
    )  # fmt: skip
    missing, unexpected = vae.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise ValueError(f"{source}: its VAE does not match FlexTok's AutoencoderKL (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return vae


class FlexTokModel(nn.Module):
    def __init__(self, encoder: tuple[int, int, int], decoder: tuple[int, int, int], head_dim: int = 64, max_timestep: float = 1000.0,
                 channels: int = 16, code_dim: int = 6) -> None:  # fmt: skip
        """``encoder``/``decoder``: (width, depth, MLP width)."""
        super().__init__()
        self.encoder = FlexTokEncoder(*encoder, head_dim, channels, code_dim)
        self.decoder = FlexTokDecoder(*decoder, head_dim, max_timestep, channels, code_dim)


def layout(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    def trunk(part: str, prefix: str) -> tuple[int, int, int]:
        blocks = f"{part}.module_dict.{prefix}_transformer.blocks."
        depth = 1 + max(int(k[len(blocks) :].split(".")[0]) for k in state if k.startswith(blocks))
        hidden, width = state[f"{blocks}0.mlp.fc1.weight"].shape
        return width, depth, hidden

    return {"encoder": trunk("encoder", "enc"), "decoder": trunk("decoder", "dec"),
            "channels": state["encoder.module_dict.enc_patch_emb.patch_proj.weight"].shape[1] // (PATCH * PATCH),
            "code_dim": state["encoder.module_dict.enc_to_latents.proj.weight"].shape[0]}  # fmt: skip


def adaptive_projected_guidance(conditioned: torch.Tensor, free: torch.Tensor, scale: float, buffer: torch.Tensor) -> torch.Tensor:
    """APG (Sadat et al. 2024) per image: the guidance difference with momentum (``buffer`` is
    updated in place), its norm capped at 2.5, and only its part orthogonal to the conditioned velocity."""
    buffer.mul_(APG_MOMENTUM).add_(conditioned - free)
    difference = buffer * (APG_NORM_THRESHOLD / buffer.flatten(1).norm(dim=1).clamp_min(1e-12)).clamp(max=1).view(-1, 1, 1, 1)
    unit = F.normalize(conditioned.double().flatten(1), dim=1).view_as(conditioned)
    parallel = (difference.double() * unit).sum(dim=(1, 2, 3), keepdim=True) * unit
    orthogonal = (difference.double() - parallel).to(conditioned.dtype)
    return conditioned + (scale - 1) * orthogonal


class FlexTok(NetworkTokenizer):
    """A FlexTok release (``repo`` on the hub, or ``weights=PATH``: its ``model.safetensors`` or
    a folder holding it), keeping the first ``tokens`` of its 256 registers.

    steps: Euler steps (the release recommends 20); guidance: the guidance scale (7.5; 1 turns
    it off); apg: adaptive projected guidance instead of plain classifier-free guidance;
    seed: the VAE posterior's and the sampler's seed; vae_posterior: ``sample`` (as released) or ``mean``."""

    def __init__(self, repo: str = "EPFL-VILAB/flextok_d18_d28_dfn", revision: str | None = None, weights: str | None = None,
                 tokens: int = 256, steps: int = 20, guidance: float = 7.5, apg: bool = True, seed: int = 0,
                 vae_posterior: str = "sample", dtype: str = "float32") -> None:  # fmt: skip
        if isinstance(tokens, bool) or not isinstance(tokens, int) or not 1 <= tokens <= REGISTERS:
            raise ValueError(f"FlexTok tokens={tokens!r}: expected a whole number from 1 to {REGISTERS}")
        check_sampler_options("FlexTok", steps, guidance, seed)
        if vae_posterior not in ("sample", "mean"):
            raise ValueError(f"FlexTok vae_posterior={vae_posterior!r}: expected 'sample' (as released) or 'mean'")
        self.repo, self.revision, self.dtype_name = repo, revision, dtype
        self.name = repo.rsplit("/", 1)[-1]
        self.tokens, self.steps, self.guidance, self.apg = tokens, steps, float(guidance), bool(apg)
        self.seed, self.vae_posterior = seed, vae_posterior
        self.dtype = compute_dtype(dtype)
        self.weights_path = self._weights_file(weights)
        from safetensors.torch import load_file

        config = read_config(self.weights_path)
        state = load_file(str(self.weights_path))
        tokenizer_state = {k: v for k, v in state.items() if not k.startswith("vae.")}
        found = layout(tokenizer_state)
        trunk_config = _module_config(config, "encoder", "enc_transformer")
        time_config = _module_config(config, "decoder", "dec_time_embedder")
        self.layout = {
            **found,
            "head_dim": int(trunk_config.get("head_dim", 64)),
            "max_timestep": float(time_config.get("max_timestep", 1000.0)),
        }
        levels = (config.get("regularizer") or {}).get("levels", [8, 8, 8, 5, 5, 5])
        self.fsq = FSQ(list(levels))
        self.scaling_factor = (config.get("vae") or {}).get("scaling_factor")
        self.vae = build_vae(state, config, self.weights_path)
        if self.scaling_factor is None:
            self.scaling_factor = self.vae.config.scaling_factor
        model = FlexTokModel(**self.layout)
        load_exactly(model, tokenizer_state, self.weights_path, "FlexTok")
        self.model = nn.ModuleDict({"flextok": model, "vae": self.vae}).eval().requires_grad_(False)
        model.to(self.dtype)  # the VAE runs in float32, as released
        self.info = TokenizerInfo(
            family="discrete", quantizer="fsq", codebook_size=self.fsq.size, token_grid=(tokens,), tokens_per_image=tokens,
            native_resolution=256, accepts_any_size=False, input_range=(-1.0, 1.0),
            license="Apple Machine Learning Research Model License (research use; code: Apple Sample Code License)",
            source=f"hf://{repo}" if weights is None else str(self.weights_path), paper="arXiv:2502.13967",
            extra={**self.layout, "levels": list(levels), "registers": REGISTERS, "scaling_factor": self.scaling_factor,
                   "sampler": "Euler on t = i/steps", "decoder_calls_per_image": steps * (1 + (self.guidance != 1.0)),
                   "parameters": self.parameter_count()},
        )  # fmt: skip

    def _weights_file(self, weights: str | None) -> Path:
        path = local_path(weights)
        if path is not None:
            path = path / "model.safetensors" if path.is_dir() else path
            if not path.is_file():
                raise ValueError(f"--weights {weights}: no model.safetensors in that folder")
            return path
        from huggingface_hub import hf_hub_download

        try:
            return Path(hf_hub_download(self.repo, "model.safetensors", revision=self.revision, local_files_only=offline()))
        except Exception as exc:
            raise hub_unavailable(self.name, self.repo, None, exc) from None

    def options(self) -> dict[str, Any]:
        return {"repo": self.repo, "revision": self.revision, "weights": str(self.weights_path), "tokens": self.tokens,
                "steps": self.steps, "guidance": self.guidance, "apg": self.apg, "seed": self.seed,
                "vae_posterior": self.vae_posterior, "dtype": self.dtype_name}  # fmt: skip

    def encode(self, images: torch.Tensor) -> Tokens:
        height, width = images.shape[-2:]
        if (height, width) != (256, 256):
            raise ValueError(f"FlexTok's position grids are fixed at 256x256; got {width}x{height} (use --resolution 256)")
        pixels = images.to(self.device, torch.float32).mul(2).sub(1)
        posterior = self.vae.encode(pixels).latent_dist
        latents = posterior.mean
        if self.vae_posterior == "sample":
            noise = torch.stack([seeded_normal(self.seed, image.cpu().numpy().tobytes(), latents.shape[1:]) for image in images])
            latents = latents + posterior.std * noise.to(latents.device)
        codes = self.model["flextok"].encoder((latents * self.scaling_factor).to(self.dtype)).float()
        ids = self.fsq.ids(self.fsq.quantize(codes))[:, : self.tokens]
        return Tokens.from_ids(ids, self.fsq.size, (height, width))

    def decode(self, tokens: Tokens) -> torch.Tensor:
        ids = tokens.data.to(self.device)
        batch, keep = ids.shape
        decoder = self.model["flextok"].decoder
        padded = torch.cat([ids, ids.new_zeros(batch, REGISTERS - keep)], dim=1)
        registers = decoder.registers(self.fsq.values(padded).to(self.dtype), keep)
        side = tokens.image_size[0] // 8
        x = torch.stack([seeded_normal(self.seed, row.cpu().numpy().tobytes(), (16, side, side)) for row in ids]).to(self.device)
        guided = self.guidance != 1.0
        if guided:
            registers = torch.cat([registers, decoder.null_registers(batch).to(self.dtype)])
        buffer = torch.zeros_like(x)
        for i in range(self.steps, 0, -1):
            t = torch.full((len(registers),), i / self.steps, device=self.device)
            v = decoder(torch.cat([x, x]).to(self.dtype) if guided else x.to(self.dtype), registers, t).float()
            if guided:
                conditioned, free = v.chunk(2)
                v = (
                    adaptive_projected_guidance(conditioned, free, self.guidance, buffer)
                    if self.apg
                    else free + self.guidance * (conditioned - free)
                )
            x = x - v / self.steps
        images = self.vae.decode(x / self.scaling_factor).sample
        return self._output(images.clamp(-1, 1))
