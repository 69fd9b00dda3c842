"""What every network tokenizer shares: a torch module, a compute dtype, a device, and
weights found in the Hugging Face cache, the weights store or a user's ``--weights`` path.

Mixed precision: ``dtype="bfloat16"`` or ``"float16"`` runs the network in that dtype
(inputs cast in, reconstructions cast back to float32); the record's tokenizer options say
which. Continuous latents are costed at the dtype they are produced in.
"""

from __future__ import annotations

from pathlib import Path

import torch

from vtbench.tokenizers.base import Tokenizer
from vtbench.weights import WeightsUnavailableError, offline

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def compute_dtype(name: str) -> torch.dtype:
    try:
        return DTYPES[name]
    except KeyError:
        raise ValueError(f"dtype {name!r} is not one of {', '.join(DTYPES)}") from None


def hub_unavailable(tokenizer: str, repo: str, subfolder: str | None, exc: Exception) -> WeightsUnavailableError:
    """The error for a hub model that is neither cached nor downloadable: names the files
    and the command that fetches them."""
    include = f" --include '{subfolder}/*'" if subfolder else ""
    where = f"{repo}/{subfolder}" if subfolder else repo
    state = "vtbench is offline" if offline() else f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return WeightsUnavailableError(
        f"tokenizer {tokenizer!r}: {where} is not in the Hugging Face cache ({state}); fetch it with "
        f"`hf download {repo}{include}` where there is network, or pass --weights PATH (a local copy of that folder)"
    )


class NetworkTokenizer(Tokenizer):
    """A tokenizer backed by ``self.model`` (a torch module) running in ``self.dtype``."""

    model: torch.nn.Module
    dtype: torch.dtype = torch.float32

    def to(self, device: torch.device | str) -> NetworkTokenizer:
        self.device = torch.device(device)
        self.model.to(self.device)
        return self

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def _input(self, images: torch.Tensor) -> torch.Tensor:
        """[0, 1] float -> [-1, 1] in the compute dtype."""
        return images.to(self.device, self.dtype).mul(2).sub_(1)

    def _output(self, images: torch.Tensor) -> torch.Tensor:
        """[-1, 1] in any dtype -> [0, 1] float32."""
        return images.float().add_(1).div_(2)


def local_path(weights: str | None) -> Path | None:
    """A user's ``--weights`` path, checked to exist."""
    if weights is None:
        return None
    path = Path(weights).expanduser()
    if not path.exists():
        raise WeightsUnavailableError(f"--weights {weights}: no such file or folder")
    return path
