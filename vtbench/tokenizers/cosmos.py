"""NVIDIA Cosmos tokenizers (arXiv:2501.03575) in their published layout: a hub repository
(``nvidia/Cosmos-0.1-Tokenizer-DV4x8x8`` ...) holding ``encoder.jit`` and ``decoder.jit``,
TorchScript modules that run as NVIDIA's own inference code runs them.

The kind is the repository name's suffix, as Cosmos' ``--tokenizer_type``: C/D (continuous
latents / discrete FSQ ids, levels 8,8,8,5,5,5: 64,000 codes), I/V (images / causal video),
then the compression (``DV4x8x8``: 4 frames x 8 x 8 pixels per token). Inputs are [-1, 1]
in bfloat16 (the modules' published dtype; ``dtype=float32`` casts their weights, which
the discrete ones' quantizer does not follow). As in Cosmos' ``image_lib``/``video_lib``: sides are zero-padded
(black) to a multiple of 16, centred; a video is cut into windows of ``temporal_window``
frames (17), each edge-padded in time to 1 + 8k frames (the shorter half in front),
encoded and decoded on its own; the padding is cropped off the reconstruction. A clip's
tokens are its windows' tokens. Images through a video tokenizer are one-frame clips.

The files are TorchScript archives, read with ``torch.jit.load``: the only layout NVIDIA
publishes for these models (no safetensors). Load them from the hub or a folder you trust.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import torch

from vtbench.tokenizers.base import TokenizerInfo, Tokens
from vtbench.tokenizers.neural import NetworkTokenizer, compute_dtype, hub_unavailable, local_path
from vtbench.weights import WeightsUnavailableError, offline

SPATIAL_ALIGN = 16  # Cosmos' _SPATIAL_ALIGN: every side padded to a multiple
TEMPORAL_ALIGN = 8  # Cosmos' _TEMPORAL_ALIGN: a window padded to 1 + 8k frames
FSQ_CODES = 64_000  # levels (8, 8, 8, 5, 5, 5), every published discrete Cosmos tokenizer
FILES = ("encoder.jit", "decoder.jit")
KIND = re.compile(r"(?P<latent>[CD])(?P<media>[IV])(?P<factors>\d+x\d+(?:x\d+)?)")


def parse_kind(kind: str) -> dict[str, Any]:
    """``DV4x8x8`` -> discrete, video, 4 frames and 8 x 8 pixels per token."""
    match = KIND.search(kind)
    if match is None:
        raise ValueError(f"{kind!r} names no Cosmos tokenizer type: give kind= one of CI8x8, DI16x16, CV4x8x8, DV8x16x16, ...")
    factors = [int(f) for f in match["factors"].split("x")]
    video = match["media"] == "V"
    if len(factors) != (3 if video else 2):
        raise ValueError(f"{kind!r}: a{' video' if video else 'n image'} tokenizer has {3 if video else 2} compression factors")
    return {"kind": match.group(0), "discrete": match["latent"] == "D", "video": video,
            "temporal": factors[0] if video else 1, "spatial": factors[-1]}  # fmt: skip


def load_torchscript(path: Path) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        try:
            return torch.jit.load(str(path), map_location="cpu").eval()
        except RuntimeError as exc:
            raise ValueError(f"{path}: not a TorchScript archive ({str(exc).splitlines()[0][:200]})") from None


def _pad_amounts(size: int, align: int) -> tuple[int, int]:
    extra = (align - size % align) % align
    return extra >> 1, extra - (extra >> 1)


class CosmosTokenizer(NetworkTokenizer):
    """A Cosmos image or video tokenizer from its ``encoder.jit``/``decoder.jit``."""

    def __init__(
        self,
        repo: str | None = None,
        kind: str | None = None,
        weights: str | None = None,
        revision: str | None = None,
        temporal_window: int = 17,
        dtype: str = "bfloat16",
        native_resolution: int | None = None,
    ) -> None:
        if repo is None and weights is None:
            raise ValueError("give the model's hub repository (repo=nvidia/Cosmos-0.1-Tokenizer-DV4x8x8) or a local copy (--weights PATH)")
        if temporal_window < 1:
            raise ValueError(f"temporal_window must be at least 1 frame, got {temporal_window}")
        self.name = repo or str(weights)
        self.repo, self.revision, self.weights = repo, revision, local_path(weights)
        self.spec = parse_kind(kind or repo or self.weights.name)
        self.temporal_window, self.dtype_name, self.dtype = int(temporal_window), dtype, compute_dtype(dtype)
        encoder, decoder = (load_torchscript(self._file(name)) for name in FILES)
        self.model = torch.nn.ModuleDict({"encoder": encoder, "decoder": decoder})
        self.model.to(self.dtype)
        discrete, spatial, temporal = self.spec["discrete"], self.spec["spatial"], self.spec["temporal"]
        self.info = TokenizerInfo(
            family="discrete" if discrete else "continuous",
            quantizer="fsq" if discrete else "none",
            codebook_size=FSQ_CODES if discrete else None,
            native_resolution=native_resolution,
            accepts_any_size=True,
            input_range=(-1.0, 1.0),
            source=str(self.weights) if self.weights else f"hf://{repo}",
            license="NVIDIA Open Model License",
            paper="arXiv:2501.03575",
            video=self.spec["video"],
            extra={"kind": self.spec["kind"], "compression": f"{temporal} x {spatial} x {spatial}" if self.spec["video"] else
                   f"{spatial} x {spatial}", "format": "TorchScript (encoder.jit, decoder.jit)", "parameters": self.parameter_count()},
        )  # fmt: skip

    def _file(self, name: str) -> Path:
        if self.weights is not None:
            path = self.weights / name
            if not path.is_file():
                files = " and ".join(FILES)
                raise WeightsUnavailableError(f"--weights {self.weights}: no {name} in that folder (a Cosmos tokenizer has {files})")
            return path
        from huggingface_hub import hf_hub_download

        try:
            return Path(hf_hub_download(self.repo, name, revision=self.revision, local_files_only=offline()))
        except Exception as exc:
            raise hub_unavailable(self.name, self.repo, None, exc) from None

    def options(self) -> dict[str, Any]:
        return {"repo": self.repo, "kind": self.spec["kind"], "weights": str(self.weights) if self.weights else None,
                "revision": self.revision, "temporal_window": self.temporal_window, "dtype": self.dtype_name}  # fmt: skip

    def encode(self, images: torch.Tensor) -> Tokens:
        """Images (N, 3, H, W), or clips (N, T, 3, H, W) for a video tokenizer."""
        is_clip = images.dim() == 5
        height, width = images.shape[-2:]
        top, bottom = _pad_amounts(height, SPATIAL_ALIGN)
        left, right = _pad_amounts(width, SPATIAL_ALIGN)
        x = images.to(self.device, torch.float32).mul(2).sub(1).to(self.dtype)  # rounded once, as Cosmos' numpy2tensor
        x = torch.nn.functional.pad(x, (left, right, top, bottom), value=-1.0)  # uint8 0 is -1
        if not self.spec["video"]:
            windows = [self._encode(x)]
            crops = [(0, 0)]
        else:
            x = x.transpose(1, 2) if is_clip else x.unsqueeze(2)  # (N, 3, T, H, W)
            windows, crops = [], []
            for start in range(0, x.shape[2], self.temporal_window):
                window = x[:, :, start : start + self.temporal_window]
                front, back = _pad_amounts(window.shape[2] - 1, TEMPORAL_ALIGN)
                padded = torch.cat([window[:, :, :1]] * front + [window] + [window[:, :, -1:]] * back, dim=2)
                windows.append(self._encode(padded))
                crops.append((front, window.shape[2]))
        n = images.shape[0]
        data = {"windows": windows, "crops": crops, "pad": (top, height, left, width), "clip": is_clip}
        if self.spec["discrete"]:
            ids = torch.cat([w.reshape(n, -1) for w in windows], dim=1).long()
            tokens = Tokens.from_ids(ids, FSQ_CODES, (height, width), data=data)
        else:
            per_image = sum(w[0].numel() for w in windows)
            positions = sum(w[0, 0].numel() for w in windows)  # a latent's positions: (t x) h x w
            tokens = Tokens(data, torch.full((n,), float(per_image * torch.finfo(windows[0].dtype).bits), dtype=torch.float64),
                            torch.full((n,), positions, dtype=torch.int64), (height, width),
                            latent_shape=tuple(windows[0].shape[1:]) if len(windows) == 1 else None,
                            latent_dtype=str(windows[0].dtype).removeprefix("torch."))  # fmt: skip
        tokens.frames = images.shape[1] if is_clip else None
        return tokens

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's ids (discrete: its first output) or latent (continuous)."""
        output = self.model["encoder"](x)
        if isinstance(output, torch.Tensor):
            return output
        return output[0]

    def decode(self, tokens: Tokens) -> torch.Tensor:
        data = tokens.data
        top, height, left, width = data["pad"]
        frames = []
        for latent, (front, length) in zip(data["windows"], data["crops"], strict=True):
            decoded = self.model["decoder"](latent if self.spec["discrete"] else latent.to(self.dtype))
            frames.append(decoded[:, :, front : front + length] if self.spec["video"] else decoded)
        x = torch.cat(frames, dim=2) if self.spec["video"] else frames[0]
        x = x[..., top : top + height, left : left + width]
        if self.spec["video"]:
            x = x.transpose(1, 2) if data["clip"] else x[:, :, 0]
        return self._output(x)
