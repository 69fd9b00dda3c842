"""What every network tokenizer shares: a torch module, a compute dtype, a device, and
weights found in the Hugging Face cache, the weights store or a user's ``--weights`` path.

Mixed precision: ``dtype="bfloat16"`` or ``"float16"`` runs the network in that dtype
(inputs cast in, reconstructions cast back to float32); the record's tokenizer options say
which. Continuous latents are costed at the dtype they are produced in.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from vtbench.safe_load import load_checkpoint
from vtbench.tokenizers.base import Tokenizer
from vtbench.weights import WeightsUnavailableError, offline

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def compute_dtype(name: str) -> torch.dtype:
    try:
        return DTYPES[name]
    except KeyError:
        raise ValueError(f"dtype {name!r} is not one of {', '.join(DTYPES)}") from None


def hub_unavailable(tokenizer: str, repo: str, subfolder: str | None, exc: Exception, kind: str = "tokenizer") -> WeightsUnavailableError:
    """The error for a hub model that is neither cached nor downloadable: names the files
    and the command that fetches them."""
    include = f" --include '{subfolder}/*'" if subfolder else ""
    where = f"{repo}/{subfolder}" if subfolder else repo
    state = "vtbench is offline" if offline() else f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return WeightsUnavailableError(
        f"{kind} {tokenizer!r}: {where} is not in the Hugging Face cache ({state}); fetch it with "
        f"`hf download {repo}{include}` where there is network, or pass {'--weights PATH' if kind == 'tokenizer' else 'weights=PATH'} "
        "(a local copy of that folder)"
    )


class Codebook(torch.nn.Module):
    """A VQ codebook held as ``embedding`` (the key ``quantize.embedding.weight`` of the VQGAN lineage)."""

    def __init__(self, codes: int, dim: int) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(codes, dim)


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


SINGLE_FILES = ("model.safetensors", "pytorch_model.bin")


def repository_folder(repo: str, revision: str | None) -> Path:
    """The cached snapshot of a hub repository with its config and shard index (not the shards)."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo, revision=revision, allow_patterns=["config.json", "*.index.json"], local_files_only=offline()))
    except Exception as exc:
        raise hub_unavailable(repo, repo, None, exc) from None


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return load_checkpoint(path, mmap=True)


def submodel_tensors(folder: Path, mark: str, repo: str | None = None, revision: str | None = None) -> dict[str, torch.Tensor]:
    """The tensors of one sub-model of a large checkpoint: keys containing ``mark`` (e.g.
    ``vqmodel.``, ``gen_vision_model.``), with everything up to it stripped. Only the shards
    that hold them are read (per the ``*.index.json``); shards not in ``folder`` come from the
    hub cache of ``repo`` (``None``: a local copy, nothing to fetch)."""
    index_files = sorted(folder.glob("*.index.json"))
    if index_files:
        weight_map: dict[str, str] = json.loads(index_files[0].read_text())["weight_map"]
        shards = sorted({shard for key, shard in weight_map.items() if mark in key})
    else:
        local = [p.name for p in sorted(folder.iterdir()) if p.suffix in (".safetensors", ".bin")]
        shards = local or list(SINGLE_FILES)
    state: dict[str, torch.Tensor] = {}
    for shard in shards:
        path = folder / shard
        if not path.is_file() and repo is None:
            raise WeightsUnavailableError(f"{path}: weights file missing from the local copy")
        if not path.is_file():
            from huggingface_hub import hf_hub_download

            try:
                path = Path(hf_hub_download(repo, shard, revision=revision, local_files_only=offline()))
            except Exception as exc:
                if not index_files and shard != shards[-1]:
                    continue  # a single-file repository: try the next usual file name
                raise hub_unavailable(repo, repo, None, exc) from None
        for key, tensor in _read_weights(path).items():
            if mark in key:
                state[key[key.index(mark) + len(mark) :]] = tensor
        if state and not index_files:
            break
    if not state:
        raise ValueError(f"{folder}: no tensors under a '{mark}' prefix in {', '.join(shards)}")
    return state


def find_checkpoint(weights: str | None, checkpoint: str) -> tuple[Path, str]:
    """A user's ``--weights`` file, else the weights-store entry ``checkpoint``; with its SHA-256."""
    from vtbench import weights as weights_store

    path = local_path(weights)
    if path is not None:
        return path, weights_store.sha256_file(path)
    located = weights_store.locate(checkpoint)
    return located.path, located.sha256


def unwrap_state_dict(
    path: Path, containers: tuple[str, ...], required: str, layout: str, ignored: tuple[str, ...] = (), mmap: bool = False
) -> dict[str, torch.Tensor]:
    """The weights of a training checkpoint: the dict under the first of ``containers`` it has
    (or the file's own dict), ``module.`` prefixes (DDP) removed, ``ignored`` keys dropped;
    refused, naming the file, when ``required`` is not among them. ``mmap``: tensors stay in
    the file until loaded (for multi-gigabyte checkpoints of which only part is read)."""
    checkpoint = load_checkpoint(path, mmap=mmap)
    for key in containers:
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
            break
    state = {k.removeprefix("module."): v for k, v in checkpoint.items()} if isinstance(checkpoint, dict) else {}
    if required not in state:
        raise ValueError(f"{path}: not a {layout} checkpoint (no {required} under {'/'.join(containers)})")
    return {k: v for k, v in state.items() if k not in ignored}


def load_exactly(model: torch.nn.Module, state: dict[str, torch.Tensor], source: Path, layout: str) -> None:
    """Load every tensor, no more and no fewer; a mismatch names the file and the layout."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{source}: does not match the {layout} layout: {' '.join(str(exc).split())}") from None


def local_path(weights: str | None) -> Path | None:
    """A user's ``--weights`` path, checked to exist."""
    if weights is None:
        return None
    path = Path(weights).expanduser()
    if not path.exists():
        raise WeightsUnavailableError(f"--weights {weights}: no such file or folder")
    return path
