"""MaskBiT's bit-token tokenizers (markweberdev/maskbit, arXiv 2409.16211, "VQGAN+").

A conv encoder (bias-free residual convolutions, TensorFlow "SAME" padding, stride-2
convolutions between 5 levels, no attention) emits N channels at 1/16 of the image side;
lookup-free quantization takes their signs, so each token is an N-bit code (channel 0 =
the least significant bit of the id; a code of exactly 0 counts as bit 0). The decoder
mirrors it with nearest-neighbour upsampling followed by a convolution. Two details of the
release matter for its weights to reproduce its numbers: a residual block that changes
width applies its 1x1 shortcut to the block's own output, not to its input, and the
decoder's ``up.0`` is the deepest level. Images go in and come out in [0, 1].

Checkpoints are flat state dicts (``maskbit_tokenizer_{N}bit.bin``) that also hold the
quantizer's two buffers: ``bits_to_indices`` (2^c) and ``codebook`` (every code as ±1).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vtbench.safe_load import load_checkpoint
from vtbench.tokenizers.base import TokenizerInfo, Tokens, bits_to_ids, ids_to_signs
from vtbench.tokenizers.conv_blocks import group_norm
from vtbench.tokenizers.neural import NetworkTokenizer, compute_dtype, find_checkpoint, load_exactly


class Conv2dSame(nn.Conv2d):
    """A convolution padded as TensorFlow's "SAME": the output side is ceil(input / stride),
    with the odd pixel of padding on the right and bottom."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, kernel, stride, dilation in zip(reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride),
                                                  reversed(self.dilation), strict=True):  # fmt: skip
            total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


class ResidualBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = group_norm(in_channels), Conv2dSame(in_channels, out_channels, 3, bias=False)
        self.norm2, self.conv2 = group_norm(out_channels), Conv2dSame(out_channels, out_channels, 3, bias=False)
        if in_channels != out_channels:
            self.nin_shortcut = Conv2dSame(out_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.silu(self.norm2(self.conv1(F.silu(self.norm1(x))))))
        return h + (self.nin_shortcut(h) if hasattr(self, "nin_shortcut") else x)  # the release's shortcut: of the output


def _stage(in_channels: int, out_channels: int, blocks: int) -> nn.Module:
    stage = nn.Module()
    stage.res_blocks = nn.ModuleList([ResidualBlock(in_channels if j == 0 else out_channels, out_channels) for j in range(blocks)])
    return stage


class Encoder(nn.Module):
    def __init__(self, ch: int, multipliers: tuple[int, ...], blocks: int, bits: int) -> None:
        super().__init__()
        widths = [ch * m for m in multipliers]
        self.conv_in = Conv2dSame(3, ch, 3, bias=False)
        self.down = nn.ModuleList()
        for i, width in enumerate(widths):
            stage = _stage(widths[i - 1] if i else ch, width, blocks)
            if i != len(widths) - 1:
                stage.down_conv = Conv2dSame(width, width, 3, stride=2)
            self.down.append(stage)
        self.mid = _stage(widths[-1], widths[-1], blocks)
        self.norm_out, self.conv_out = group_norm(widths[-1]), Conv2dSame(widths[-1], bits, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for stage in [*self.down, self.mid]:
            for block in stage.res_blocks:
                h = block(h)
            if hasattr(stage, "down_conv"):
                h = stage.down_conv(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, ch: int, multipliers: tuple[int, ...], blocks: int, bits: int) -> None:
        super().__init__()
        widths = [ch * m for m in multipliers]
        self.conv_in = Conv2dSame(bits, widths[-1], 3)
        self.mid = _stage(widths[-1], widths[-1], blocks)
        self.up = nn.ModuleList()  # up.0 is the deepest level and runs first
        channels = widths[-1]
        for i in reversed(range(len(widths))):
            stage = _stage(channels, widths[i], blocks)
            channels = widths[i]
            if i != 0:
                stage.upsample_conv = Conv2dSame(channels, channels, 3)
            self.up.append(stage)
        self.norm_out, self.conv_out = group_norm(channels), Conv2dSame(channels, 3, 3)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(codes)
        for stage in [self.mid, *self.up]:
            for block in stage.res_blocks:
                h = block(h)
            if hasattr(stage, "upsample_conv"):
                h = stage.upsample_conv(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


class BitQuantizer(nn.Module):
    """Lookup-free quantization to N bits; holds the release's two buffers so the file loads exactly."""

    def __init__(self, bits: int) -> None:
        super().__init__()
        self.register_buffer("bits_to_indices", 2 ** torch.arange(bits, dtype=torch.int32))
        self.register_buffer("codebook", ids_to_signs(torch.arange(2**bits), bits, dim=-1))

    def indices(self, z: torch.Tensor) -> torch.Tensor:
        """(B, N, h, w) encoder output -> (B, h, w) ids, channel c worth 2^c."""
        return bits_to_ids(z > 0, dim=1)

    def codes(self, ids: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """(B, h, w) ids -> (B, N, h, w) codes of ±1."""
        return ids_to_signs(ids, len(self.bits_to_indices), dim=1, dtype=dtype)


class MaskBitTokenizerModel(nn.Module):
    """The release's ``ConvVQModel`` with its lookup-free quantizer (key names as published)."""

    def __init__(self, ch: int = 128, multipliers: tuple[int, ...] = (1, 1, 2, 2, 4), blocks: int = 2, bits: int = 14) -> None:
        super().__init__()
        self.encoder = Encoder(ch, multipliers, blocks, bits)
        self.decoder = Decoder(ch, multipliers, blocks, bits)
        self.quantize = BitQuantizer(bits)


def layout(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Width, multipliers, blocks per level and bits, read from a state dict."""
    ch = state["encoder.conv_in.weight"].shape[0]
    levels = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("encoder.down."))
    widths = [state[f"encoder.down.{i}.res_blocks.0.conv1.weight"].shape[0] for i in range(levels)]
    blocks = 1 + max(int(k.split(".")[4]) for k in state if k.startswith("encoder.down.0.res_blocks."))
    return {"ch": ch, "multipliers": tuple(w // ch for w in widths), "blocks": blocks, "bits": state["encoder.conv_out.weight"].shape[0]}


class MaskBit(NetworkTokenizer):
    """A MaskBiT tokenizer checkpoint (``checkpoint``: weights-store name, or ``weights=PATH``)."""

    def __init__(self, checkpoint: str = "maskbit-14bit", weights: str | None = None, native_resolution: int = 256,
                 dtype: str = "float32") -> None:  # fmt: skip
        self.name, self.checkpoint, self.dtype_name = checkpoint, checkpoint, dtype
        self.dtype = compute_dtype(dtype)
        self.weights_path, self.weights_sha256 = find_checkpoint(weights, checkpoint)
        state = load_checkpoint(self.weights_path)
        if not isinstance(state, dict) or "encoder.conv_in.weight" not in state or "decoder.conv_out.weight" not in state:
            raise ValueError(
                f"{self.weights_path}: not a MaskBiT tokenizer state dict (no encoder.conv_in.weight / decoder.conv_out.weight)"
            )
        state = {k.removeprefix("module."): v for k, v in state.items()}
        self.layout = layout(state)
        self.model = MaskBitTokenizerModel(**self.layout)
        load_exactly(self.model, state, self.weights_path, "MaskBiT")
        self.model.eval().requires_grad_(False).to(self.dtype)
        self.model.quantize.float()  # the ±1 table stays exact
        self.factor = 2 ** (len(self.layout["multipliers"]) - 1)
        bits, grid = self.layout["bits"], native_resolution // self.factor
        self.info = TokenizerInfo(
            family="discrete", quantizer="lfq", codebook_size=2**bits, token_grid=(grid, grid), tokens_per_image=grid * grid,
            native_resolution=native_resolution, input_range=(0.0, 1.0), license="Apache-2.0", source=str(self.weights_path),
            paper="arXiv:2409.16211",
            extra={**self.layout, "bits_per_token": bits, "bit_order": "channel 0 = LSB", "parameters": self.parameter_count(),
                   "weights_sha256": self.weights_sha256},
        )  # fmt: skip

    def options(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "weights": str(self.weights_path), "dtype": self.dtype_name}

    def encode(self, images: torch.Tensor) -> Tokens:
        height, width = images.shape[-2:]
        if height % self.factor or width % self.factor:
            raise ValueError(f"MaskBiT needs sides divisible by {self.factor}, got {width}x{height}")
        z = self.model.encoder(images.to(self.device, self.dtype))  # [0, 1] in, as the release feeds it
        return Tokens.from_ids(self.model.quantize.indices(z), self.info.codebook_size, (height, width))

    def decode(self, tokens: Tokens) -> torch.Tensor:
        codes = self.model.quantize.codes(tokens.data, self.dtype)
        return self.model.decoder(codes).float().clamp(0, 1)
