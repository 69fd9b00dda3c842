"""FlowMo, a transformer tokenizer with a rectified-flow decoder (kylesargent/FlowMo, arXiv 2503.11056), written here.

Encoder and decoder are MMDiT transformers of Flux's double-stream blocks (separate weights
for the image stream and the code stream, joint attention over both, RMS-normalised queries
and keys, 3-axis rotary positions: code token k at (k, k, k), patch (r, c) at (0, r, c);
attention scaled by 8/head_dim, as muP sets it). The encoder reads the 4x4 patches of a
256 px image beside 256 code tokens that start as a learned bias, and its code-stream output
is the code: 256 tokens of C bits (18 for FlowMo-Lo, 56 for FlowMo-Hi), each bit the sign of
one channel (a value <= 0 is -1). The decoder is a velocity field v(z_t, code, t) with
z_t = (1 - t) x + t noise; reconstruction integrates it with Euler steps from pure noise at
t = 1 to t = 0 on the release's schedule t_i = (i / steps)^4, with classifier-free guidance
(against an all-zero code) on the steps where 0.17/1.17 <= t <= 1.02/2.02.

``steps``, ``guidance`` and ``seed`` are options, recorded with every run. The starting noise
of each image is drawn from a generator seeded with ``seed`` and a digest of that image's
code, so a reconstruction depends on its tokens and the seed only, never on the batch it was
decoded in. A token's id is its C bits, channel c worth 2^c. Images go in as [-1, 1];
reconstructions are clipped to it.

The released files (``flowmo_lo.pth``, ``flowmo_hi.pth``) are ``torch.save`` dicts; the
weights the paper evaluates are under ``model_ema_state_dict``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vtbench.tokenizers.base import TokenizerInfo, Tokens, bits_to_ids, ids_to_signs
from vtbench.tokenizers.neural import NetworkTokenizer, compute_dtype, find_checkpoint, load_exactly, unwrap_state_dict
from vtbench.tokenizers.sampling import check_sampler_options, seeded_normal
from vtbench.tokenizers.transformer_blocks import layer_norm, patchify, sinusoidal_embedding, unpatchify

HEADS = 12
EPS = 1e-6  # of every LayerNorm (none has parameters)
THETA = 10_000
GUIDANCE_INTERVAL = (0.17 / 1.17, 1.02 / 2.02)  # the release's cfg_interval (.17, 1.02) in EDM sigmas, as flow times
SCHEDULE_POWER = 4  # the release's "pow_0.25" time grid


def rotary_angles(positions: torch.Tensor, axes: tuple[int, ...]) -> torch.Tensor:
    """(L, 3) positions -> (L, head_dim/2) float64 angles: axis a rotates ``axes[a]/2`` channel pairs."""
    parts = []
    for axis, dim in enumerate(axes):
        omega = 1.0 / THETA ** (torch.arange(0, dim, 2, dtype=torch.float64, device=positions.device) / dim)
        parts.append(positions[:, axis, None].double() * omega)
    return torch.cat(parts, dim=-1)


def rotate(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent channel pairs (2i, 2i+1) of (B, H, L, D) by (L, D/2) angles, in float32."""
    cos, sin = angles.cos().float(), angles.sin().float()
    pairs = x.float().unflatten(-1, (-1, 2))
    first, second = pairs[..., 0], pairs[..., 1]
    return torch.stack([cos * first - sin * second, sin * first + cos * second], dim=-1).flatten(-2).type_as(x)


class RMSNorm(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.float()
        return (y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + 1e-6)).to(x.dtype) * self.scale


class QKNorm(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.query_norm, self.key_norm = RMSNorm(dim), RMSNorm(dim)


class StreamAttention(nn.Module):
    """One stream's projections; the attention itself is joint, in :class:`DoubleStreamBlock`."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.qkv = nn.Linear(width, 3 * width)
        self.norm = QKNorm(width // HEADS)
        self.proj = nn.Linear(width, width)

    def qkv_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, L, width) -> q, k, v as (B, heads, L, head_dim), q and k RMS-normalised."""
        q, k, v = self.qkv(x).unflatten(-1, (3, HEADS, -1)).permute(2, 0, 3, 1, 4)
        return self.norm.query_norm(q).to(v.dtype), self.norm.key_norm(k).to(v.dtype), v


class Modulation(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.lin = nn.Linear(width, 6 * width)

    def forward(self, vec: torch.Tensor | None) -> tuple[torch.Tensor | float, ...]:
        """shift, scale, gate for attention, then for the MLP; with no conditioning 0, 0, 1."""
        if vec is None:
            return 0.0, 0.0, 1.0, 0.0, 0.0, 1.0
        return self.lin(F.silu(vec))[:, None].chunk(6, dim=-1)


def feed_forward(width: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(approximate="tanh"), nn.Linear(4 * width, width))


class DoubleStreamBlock(nn.Module):
    """Flux's block: image and code streams with their own weights, attending jointly (code first)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.img_mod, self.img_attn, self.img_mlp = Modulation(width), StreamAttention(width), feed_forward(width)
        self.txt_mod, self.txt_attn, self.txt_mlp = Modulation(width), StreamAttention(width), feed_forward(width)

    def forward(
        self, img: torch.Tensor, txt: torch.Tensor, vec: torch.Tensor | None, angles: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        streams = [(txt, self.txt_mod(vec), self.txt_attn, self.txt_mlp), (img, self.img_mod(vec), self.img_attn, self.img_mlp)]
        heads = [attn.qkv_heads((1 + mod[1]) * layer_norm(x, EPS) + mod[0]) for x, mod, attn, _ in streams]
        q, k, v = (torch.cat(parts, dim=2) for parts in zip(*heads, strict=True))
        scale = 8.0 / q.shape[-1]  # muP's attention scale
        joint = F.scaled_dot_product_attention(rotate(q, angles), rotate(k, angles), v, scale=scale).transpose(1, 2).flatten(2)
        outputs = []
        for (x, mod, attn, mlp), out in zip(streams, joint.split([txt.shape[1], img.shape[1]], dim=1), strict=True):
            x = x + mod[2] * attn.proj(out)
            outputs.append(x + mod[5] * mlp((1 + mod[4]) * layer_norm(x, EPS) + mod[3]))
        return outputs[1], outputs[0]


class LastLayer(nn.Module):
    def __init__(self, width: int, channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(width, channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))

    def forward(self, x: torch.Tensor, vec: torch.Tensor | None) -> torch.Tensor:
        if vec is None:
            return self.linear(layer_norm(x, EPS))
        shift, scale = self.adaLN_modulation(vec)[:, None].chunk(2, dim=-1)
        return self.linear(layer_norm((1 + scale) * layer_norm(x, EPS) + shift, EPS))  # normalised again after the modulation, as released


class TimeEmbedder(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.in_layer, self.out_layer = nn.Linear(256, width), nn.Linear(width, width)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        embedding = sinusoidal_embedding(t, scale=1000.0, max_period=10_000).to(self.in_layer.weight.dtype)
        return self.out_layer(F.silu(self.in_layer(embedding)))


class FlowTransformer(nn.Module):
    """One MMDiT: patches of a (B, 3, H, W) image and (B, T, code_dim) code tokens in, each stream out."""

    def __init__(self, width: int, depth: int, patch: int, code_dim: int) -> None:
        super().__init__()
        self.patch = patch
        self.time_in = TimeEmbedder(width)
        self.img_in = nn.Linear(3 * patch * patch, width)
        self.txt_in = nn.Linear(code_dim, width)
        self.double_blocks = nn.ModuleList(DoubleStreamBlock(width) for _ in range(depth))
        self.final_layer_img = LastLayer(width, 3 * patch * patch)
        self.final_layer_txt = LastLayer(width, code_dim)
        head = width // HEADS
        self.axes = (head // 8, head * 7 // 16, head * 7 // 16)  # Flux's (8, 28, 28) of 64, scaled with the head

    def angles(self, tokens: int, rows: int, columns: int, device: torch.device) -> torch.Tensor:
        code = torch.arange(tokens, device=device, dtype=torch.float64)[:, None].expand(-1, 3)
        r, c = torch.meshgrid(torch.arange(rows, device=device), torch.arange(columns, device=device), indexing="ij")
        grid = torch.stack([torch.zeros_like(r), r, c], dim=-1).reshape(-1, 3).double()
        return rotary_angles(torch.cat([code, grid]), self.axes)

    def forward(self, images: torch.Tensor, code: torch.Tensor, t: torch.Tensor | None, final: str) -> torch.Tensor:
        rows, columns = images.shape[-2] // self.patch, images.shape[-1] // self.patch
        img, txt = self.img_in(patchify(images, self.patch)), self.txt_in(code)
        vec = None if t is None else self.time_in(t)
        angles = self.angles(code.shape[1], rows, columns, images.device)
        for block in self.double_blocks:
            img, txt = block(img, txt, vec, angles)
        if final == "txt":
            return self.final_layer_txt(txt, vec)
        return unpatchify(self.final_layer_img(img, vec), self.patch, rows, columns)


class FlowMoModel(nn.Module):
    def __init__(
        self, code_dim: int = 18, patch: int = 4, encoder: tuple[int, int] = (768, 8), decoder: tuple[int, int] = (1152, 16)
    ) -> None:
        """``encoder``/``decoder``: (width, double blocks); ``code_dim``: bits per token."""
        super().__init__()
        self.encoder = FlowTransformer(*encoder, patch, code_dim)
        self.decoder = FlowTransformer(*decoder, patch, code_dim + 1)  # the code and a constant 1 channel

    def encode(self, images: torch.Tensor, tokens: int) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, tokens, code_dim) code before quantization."""
        zeros = images.new_zeros(len(images), tokens, self.encoder.txt_in.in_features)
        return self.encoder(images, zeros, None, final="txt")

    def velocity(self, z: torch.Tensor, condition: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.decoder(z, condition, t, final="img")


def time_grid(steps: int) -> torch.Tensor:
    """(steps + 1,) float32 flow times from 1 to 0: ((steps - i) / steps)^4, as the release computes them."""
    return torch.arange(steps, -1, -1) ** float(SCHEDULE_POWER) / steps ** float(SCHEDULE_POWER)


def sample(model: FlowMoModel, signs: torch.Tensor, noise: torch.Tensor, steps: int, guidance: float) -> torch.Tensor:
    """Euler integration of the decoder's velocity from ``noise`` (t = 1) to an image (t = 0).

    signs: (B, T, C) ±1 codes; noise: (B, 3, H, W). Guidance mixes in the velocity for an
    all-zero code (the mask channel too) on the steps inside :data:`GUIDANCE_INTERVAL`."""
    condition = torch.cat([signs, torch.ones_like(signs[..., :1])], dim=-1)
    unconditional = torch.zeros_like(condition)
    z, times = noise.float(), time_grid(steps)
    for t, dt in zip(times[:-1].tolist(), (times[:-1] - times[1:]).tolist(), strict=True):
        dtype = condition.dtype
        t_batch = torch.full((len(z),), t, device=z.device)
        guided = guidance != 1.0 and GUIDANCE_INTERVAL[0] <= t <= GUIDANCE_INTERVAL[1]
        if guided:
            both = model.velocity(torch.cat([z, z]).to(dtype), torch.cat([condition, unconditional]), t_batch.repeat(2))
            conditioned, free = both.chunk(2)
            v = free + guidance * (conditioned - free)
        else:
            v = model.velocity(z.to(dtype), condition, t_batch)
        z = z - dt * v.float()
    return z.clamp(-1, 1)


def image_noise(signs: torch.Tensor, seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    """(B, *shape) standard normal noise, image i's seeded with ``seed`` and its code."""
    return torch.stack([seeded_normal(seed, bytes((code > 0).flatten().numpy().astype("uint8")), shape) for code in signs.cpu()])


def layout(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    def transformer(prefix: str) -> tuple[int, int]:
        depth = 1 + max(int(k.split(".")[2]) for k in state if k.startswith(f"{prefix}.double_blocks."))
        return state[f"{prefix}.img_in.weight"].shape[0], depth

    code_dim = state["encoder.txt_in.weight"].shape[1]
    patch = math.isqrt(state["encoder.img_in.weight"].shape[1] // 3)
    return {"code_dim": code_dim, "patch": patch, "encoder": transformer("encoder"), "decoder": transformer("decoder")}


class FlowMo(NetworkTokenizer):
    """A FlowMo checkpoint (``checkpoint``: weights-store name, or ``weights=PATH``).

    steps: Euler steps of the decoder's sampler (the release evaluates 25); guidance: the
    classifier-free guidance scale (1.5; 1 turns it off); seed: the starting noise's seed;
    code_length: tokens per image (256 in the releases; the files do not record it)."""

    def __init__(self, checkpoint: str = "flowmo-lo", weights: str | None = None, steps: int = 25, guidance: float = 1.5,
                 seed: int = 0, code_length: int = 256, dtype: str = "float32") -> None:  # fmt: skip
        check_sampler_options("FlowMo", steps, guidance, seed)
        if isinstance(code_length, bool) or not isinstance(code_length, int) or code_length < 1:
            raise ValueError(f"FlowMo code_length={code_length!r}: expected a whole number >= 1")
        self.name, self.checkpoint, self.dtype_name = checkpoint, checkpoint, dtype
        self.steps, self.guidance, self.seed, self.code_length = steps, float(guidance), seed, code_length
        self.dtype = compute_dtype(dtype)
        self.weights_path, self.weights_sha256 = find_checkpoint(weights, checkpoint)
        state = unwrap_state_dict(self.weights_path, ("model_ema_state_dict",), "encoder.txt_in.weight", "FlowMo (EMA)", mmap=True)
        self.layout = layout(state)
        self.model = FlowMoModel(**self.layout)
        load_exactly(self.model, state, self.weights_path, "FlowMo")
        self.model.eval().requires_grad_(False).to(self.dtype)
        bits = self.layout["code_dim"]
        calls = steps + (guidance != 1.0) * sum(GUIDANCE_INTERVAL[0] <= t <= GUIDANCE_INTERVAL[1] for t in time_grid(steps)[:-1].tolist())
        self.info = TokenizerInfo(
            family="discrete", quantizer="lfq", codebook_size=2**bits, token_grid=(code_length,), tokens_per_image=code_length,
            native_resolution=256, accepts_any_size=False, input_range=(-1.0, 1.0), license="Apache-2.0 (code)",
            source=str(self.weights_path), paper="arXiv:2503.11056",
            extra={**self.layout, "bits_per_token": bits, "bit_order": "channel c = 2^c", "sampler": "Euler, t_i = (i/steps)^4",
                   "guidance_interval": list(GUIDANCE_INTERVAL), "decoder_calls_per_image": int(calls),
                   "parameters": self.parameter_count(), "weights_sha256": self.weights_sha256},
        )  # fmt: skip

    def options(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "weights": str(self.weights_path), "steps": self.steps, "guidance": self.guidance,
                "seed": self.seed, "code_length": self.code_length, "dtype": self.dtype_name}  # fmt: skip

    def encode(self, images: torch.Tensor) -> Tokens:
        height, width = images.shape[-2:]
        if (height, width) != (256, 256):
            raise ValueError(f"FlowMo was trained on 256x256 images only; got {width}x{height} (use --resolution 256)")
        code = self.model.encode(self._input(images), self.code_length).float()
        ids = bits_to_ids(code > 0, dim=-1, lsb_first=True)
        return Tokens.from_ids(ids, self.info.codebook_size, (height, width))

    def decode(self, tokens: Tokens) -> torch.Tensor:
        signs = ids_to_signs(tokens.data, self.layout["code_dim"], dim=-1, lsb_first=True)
        noise = image_noise(signs, self.seed, (3, *tokens.image_size)).to(self.device)
        return self._output(sample(self.model, signs.to(self.device, self.dtype), noise, self.steps, self.guidance))
