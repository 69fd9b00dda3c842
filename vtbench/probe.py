"""The AR probe (GigaTok's "AR probing"): how well a small causal transformer, trained for a
fixed budget on a tokenizer's codes, predicts them. Its validation loss tracks how hard the
codes are for a full autoregressive generator.

A probe encodes the dataset once (ids cached by the dataset's content manifest, the
tokenizer and its options, and the preprocessing), holds out a fixed tenth of the images
(by a hash of their ids), and trains a pre-norm GPT (token + learned position embeddings,
causal self-attention, no dropout) to predict each image's ids in raster order after a
start token, with AdamW and a linear warm-up then cosine decay. Batches are drawn from
``seed`` and the step number alone, so a run is deterministic for its seed on a device and
a resumed run (``OUT/.partial/probe-*``: safetensors + JSON, no pickle) ends where an
uninterrupted one does. It reports validation NLL in bits per token and bits per image,
and the learning curve.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from vtbench.errors import VtbenchError
from vtbench.io import atomic_write_bytes

if TYPE_CHECKING:
    from vtbench.engine.distributed import Ranks

PROBE_SCHEMA = "vtbench.probe-record"
CACHE_VERSION = 1


@dataclass(frozen=True)
class ProbeRecipe:
    """A fixed training recipe: model size, steps and optimizer."""

    name: str
    width: int
    depth: int
    heads: int
    steps: int
    batch_size: int
    learning_rate: float
    weight_decay: float = 0.05
    warmup_steps: int = 50
    eval_every: int = 100
    seed: int = 0


RECIPES = {
    "tiny": ProbeRecipe("tiny", width=128, depth=2, heads=4, steps=400, batch_size=16, learning_rate=3e-3, warmup_steps=40, eval_every=100),
    "small": ProbeRecipe("small", width=384, depth=6, heads=6, steps=5000, batch_size=32, learning_rate=1e-3, eval_every=500),
    "gpt-b": ProbeRecipe(
        "gpt-b", width=768, depth=12, heads=12, steps=20000, batch_size=64, learning_rate=4e-4, warmup_steps=1000, eval_every=2000
    ),  # fmt: skip
}


class ProbeModel(nn.Module):
    """A pre-norm causal transformer over ``vocab`` ids (plus a start token) of length ``length``."""

    def __init__(self, vocab: int, length: int, width: int, depth: int, heads: int) -> None:
        super().__init__()
        self.vocab = vocab
        self.embed = nn.Embedding(vocab + 1, width)  # id ``vocab`` is the start token
        self.position = nn.Parameter(torch.zeros(1, length, width))
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab)
        nn.init.normal_(self.position, std=0.02)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> (B, L, vocab) logits of each id given the ids before it."""
        start = torch.full((len(ids), 1), self.vocab, dtype=ids.dtype, device=ids.device)
        inputs = torch.cat([start, ids[:, :-1]], dim=1)
        mask = nn.Transformer.generate_square_subsequent_mask(ids.shape[1], device=ids.device)
        hidden = self.blocks(self.embed(inputs) + self.position[:, : ids.shape[1]], mask=mask, is_causal=True)
        return self.head(self.norm(hidden))


def nll_bits(model: ProbeModel, ids: torch.Tensor, batch_size: int = 64) -> float:
    """Mean negative log-likelihood of ``ids`` (N, L) in bits per token."""
    model.eval()
    total = 0.0
    with torch.no_grad():
        for chunk in ids.split(batch_size):
            logits = model(chunk)
            total += float(nn.functional.cross_entropy(logits.flatten(0, 1).float(), chunk.flatten(), reduction="sum"))
    model.train()
    return total / ids.numel() / math.log(2)


def _learning_rate(recipe: ProbeRecipe, step: int) -> float:
    if step < recipe.warmup_steps:
        return recipe.learning_rate * (step + 1) / recipe.warmup_steps
    progress = (step - recipe.warmup_steps) / max(1, recipe.steps - recipe.warmup_steps)
    return recipe.learning_rate * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def train_probe(train: torch.Tensor, validation: torch.Tensor, vocab: int, recipe: ProbeRecipe, device: str | torch.device = "cpu",
                state_dir: Path | None = None, checkpoint_seconds: float = 30.0,
                stop_after: int | None = None, ranks: Ranks | None = None) -> dict[str, Any]:  # fmt: skip
    """Train the probe on ``train`` ids (N, L) and score ``validation`` ids; returns the
    results (validation bits per token, the learning curve, steps/s). With ``state_dir`` the
    run checkpoints there and resumes from it; ``stop_after`` ends early after that many
    steps (an interrupted run, for tests), leaving the checkpoint. Under torchrun
    (``ranks``), each process takes every world-th image of each batch and the gradients
    are averaged (DistributedDataParallel): the batches of a one-process run."""
    from vtbench.engine.distributed import Ranks

    ranks = ranks or Ranks()
    if recipe.batch_size % ranks.world:
        raise VtbenchError(f"the probe's batch of {recipe.batch_size} does not split over {ranks.world} processes")
    if train.dim() != 2 or validation.dim() != 2 or train.shape[1] != validation.shape[1]:
        raise VtbenchError(f"probe ids must be (N, L) with one length, got {tuple(train.shape)} and {tuple(validation.shape)}")
    if int(train.max()) >= vocab or int(validation.max()) >= vocab or int(train.min()) < 0:
        raise VtbenchError(f"probe ids must lie in [0, {vocab})")
    device = torch.device(device)
    torch.manual_seed(recipe.seed)
    model = ProbeModel(vocab, train.shape[1], recipe.width, recipe.depth, recipe.heads).to(device)
    trained: nn.Module = model
    if ranks.world > 1:
        trained = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "position" not in n]
    other = [p for n, p in model.named_parameters() if p.dim() < 2 or "position" in n]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay}, {"params": other, "weight_decay": 0.0}],
                                  lr=recipe.learning_rate, betas=(0.9, 0.95))  # fmt: skip
    train, validation = train.to(device), validation.to(device)
    step, curve, seconds, losses = 0, [], 0.0, []  # losses: the training losses since the last evaluation
    if state_dir is not None and (state_dir / "state.json").is_file():
        step, curve, seconds, losses = _load_state(state_dir, model, optimizer, recipe)
    last_save = time.perf_counter()
    started = time.perf_counter()
    while step < recipe.steps:
        generator = torch.Generator().manual_seed(recipe.seed * 1_000_003 + step)  # the batch depends on the seed and step only
        batch = train[torch.randint(0, len(train), (recipe.batch_size,), generator=generator)[ranks.rank :: ranks.world].to(device)]
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(recipe, step)
        logits = trained(batch)
        loss = nn.functional.cross_entropy(logits.flatten(0, 1).float(), batch.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        logged = loss.detach()
        if ranks.world > 1:  # the loss of the whole batch, as one process would log it
            torch.distributed.all_reduce(logged)
            logged = logged / ranks.world
        losses.append(float(logged) / math.log(2))
        step += 1
        if step % recipe.eval_every == 0 or step == recipe.steps:
            curve.append(
                {"step": step, "train_bits_per_token": float(np.mean(losses)), "validation_bits_per_token": nll_bits(model, validation)}
            )
            losses = []
        done = stop_after is not None and step >= stop_after
        due = time.perf_counter() - last_save > checkpoint_seconds
        if ranks.world > 1:  # every rank agrees on when to save, so none waits on another
            flag = torch.tensor([float(due)], device=device if device.type == "cuda" else "cpu")
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            due = bool(flag.item())
        if state_dir is not None and ranks.is_main and (done or due or step == recipe.steps):
            _save_state(state_dir, model, optimizer, recipe, step, curve, seconds + time.perf_counter() - started, losses)
            last_save = time.perf_counter()
        if done and step < recipe.steps:
            return {"complete": False, "step": step}
    seconds += time.perf_counter() - started
    final = curve[-1]["validation_bits_per_token"] if curve else nll_bits(model, validation)
    return {"complete": True, "step": step, "validation_bits_per_token": final, "curve": curve, "train_seconds": seconds,
            "steps_per_s": recipe.steps / seconds if seconds > 0 else None,
            "parameters": sum(p.numel() for p in model.parameters())}  # fmt: skip


def _save_state(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer, recipe: ProbeRecipe, step: int,
                curve: list[dict[str, Any]], seconds: float, losses: list[float]) -> None:  # fmt: skip
    from safetensors.torch import save_file

    from vtbench.io import atomic_write_json

    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    names = {id(p): n for n, p in model.named_parameters()}
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            for key, value in optimizer.state.get(parameter, {}).items():
                tensors[f"optimizer.{names[id(parameter)]}.{key}"] = value.detach().cpu().reshape(value.shape).contiguous()
    temporary = folder / ".state.safetensors.tmp"
    save_file(tensors, str(temporary))
    temporary.replace(folder / "state.safetensors")
    atomic_write_json(folder / "state.json", {"step": step, "curve": curve, "seconds": seconds, "losses": losses, "recipe": asdict(recipe)})


def _load_state(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer, recipe: ProbeRecipe) -> tuple[int, list, float, list]:
    from safetensors.torch import load_file

    meta = json.loads((folder / "state.json").read_text())
    if meta["recipe"] != asdict(recipe):
        raise VtbenchError(f"{folder}: a probe with another recipe was started here; pass --restart to discard it")
    tensors = load_file(str(folder / "state.safetensors"))
    device = next(model.parameters()).device
    model.load_state_dict({k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")})
    for name, parameter in model.named_parameters():
        state = {key.rsplit(".", 1)[1]: value if key.endswith(".step") else value.to(device)  # AdamW keeps its step on the CPU
                 for key, value in tensors.items() if key.startswith(f"optimizer.{name}.")}  # fmt: skip
        if state:
            optimizer.state[parameter] = state
    return int(meta["step"]), list(meta["curve"]), float(meta["seconds"]), list(meta["losses"])


def split_validation(ids: list[str], fraction: float = 0.1) -> list[bool]:
    """Which images are held out: a fixed ``fraction`` by a hash of each id (at least one)."""
    held = [int(hashlib.sha256(i.encode()).hexdigest()[:8], 16) % 1000 < fraction * 1000 for i in ids]
    if not any(held) and ids:
        held[-1] = True
    if all(held) and len(ids) > 1:
        held[0] = False
    return held


def encode_dataset(tokenizer_name: str, dataset: str, options: dict[str, Any] | None = None, dataset_options: dict[str, Any] | None = None,
                   resolution: int | None = None, limit: int | None = None, batch_size: int = 16,
                   device: str = "auto", use_cache: bool = True) -> tuple[list[str], torch.Tensor, dict[str, Any]]:  # fmt: skip
    """Every image's ids in raster order: (ids, (N, L) int64, description). Cached under
    ``$VTBENCH_HOME/cache/token-ids/`` by the dataset's manifest, tokenizer and preprocessing."""
    from vtbench.datasets.base import manifest_sha256
    from vtbench.engine.components import create_dataset, resolve_device
    from vtbench.engine.loading import ImageLoading
    from vtbench.images import Preprocessing
    from vtbench.tokenizers import TOKENIZERS
    from vtbench.weights import home

    options, dataset_options = options or {}, dataset_options or {}
    torch_device = resolve_device(device)
    tokenizer = TOKENIZERS.create(tokenizer_name, **options).to(torch_device)
    if tokenizer.info.family != "discrete" and tokenizer.info.family != "pixel":
        raise VtbenchError(f"tokenizer {tokenizer_name!r} has no discrete ids (family {tokenizer.info.family}): nothing to probe")
    source = create_dataset(dataset, dataset_options)
    preprocessing = Preprocessing(resolution).resolved(tokenizer.info.native_resolution)
    if preprocessing.resolution is None:
        raise VtbenchError(f"tokenizer {tokenizer_name!r} has no native resolution: pass --resolution (the probe needs one id length)")
    count = len(source) if limit is None else min(limit, len(source))
    names = [source.ids[i] for i in range(count)]
    hashes = [source.content_sha256(i) for i in range(count)]  # the files' bytes, not decoded: the cache key comes first
    manifest = manifest_sha256(list(zip(names, hashes, strict=True)))
    identity = {"tokenizer": tokenizer_name, "options": options, "preprocessing": preprocessing.canonical(), "manifest": manifest,
                "version": CACHE_VERSION}  # fmt: skip
    key = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:32]
    cache = home() / "cache" / "token-ids" / f"{key}.npz"
    description = {"tokenizer": tokenizer_name, "tokenizer_options": options, "dataset": dataset, "manifest_sha256": manifest,
                   "preprocessing": preprocessing.to_dict(), "codebook_size": tokenizer.info.codebook_size, "cache_key": key}  # fmt: skip
    if use_cache and cache.is_file():
        with np.load(cache, allow_pickle=False) as stored:
            return names, torch.from_numpy(stored["ids"]), {**description, "codebook_size": int(stored["codebook_size"]), "cached": True}
    rows = []
    with torch.inference_mode():
        for start in range(0, count, batch_size):  # one batch of decoded images in memory at a time
            loading = ImageLoading(source, preprocessing, range(start, min(start + batch_size, count)))
            items = [loading[i] for i in range(len(loading))]
            bad = [f"{item['id']} ({item['error'] or 'changed while it was read'})" for item, expected in
                   zip(items, hashes[start:], strict=False) if item["error"] is not None or item["sha256"] != expected]  # fmt: skip
            if bad:
                raise VtbenchError(f"cannot read {len(bad)} image(s) of {dataset}: {'; '.join(bad[:3])}")
            pixels = torch.stack([item["pixels"] for item in items]).to(torch_device).float().div(255)
            tokens = tokenizer.encode(pixels)
            if tokens.indices is None:
                raise VtbenchError(f"tokenizer {tokenizer_name!r} returned no ids")
            rows.append(tokens.indices.reshape(len(pixels), -1).to(torch.int64).cpu())
            description["codebook_size"] = tokens.codebook_size or description["codebook_size"]
    ids = torch.cat(rows)
    if use_cache:
        buffer = io.BytesIO()
        np.savez(buffer, ids=ids.numpy(), codebook_size=np.int64(description["codebook_size"] or int(ids.max()) + 1))
        atomic_write_bytes(cache, buffer.getvalue())
    return names, ids, {**description, "cached": False}


def run_probe(tokenizer: str, dataset: str, out_dir: str | Path, recipe: str | ProbeRecipe = "tiny", steps: int | None = None,
              seed: int | None = None, device: str = "auto", restart: bool = False, **encode_options: Any) -> dict[str, Any]:  # fmt: skip
    """Encode (cached), train the probe and write ``OUT/TOKENIZER__DATASET.probe.json``; returns
    the record. Under torchrun the processes share each batch; rank 0 encodes first (the
    others read its cache) and writes the checkpoints and the record."""
    import shutil

    from vtbench.engine.components import resolve_device
    from vtbench.engine.distributed import Ranks
    from vtbench.io import atomic_write_json
    from vtbench.record import environment

    ranks = Ranks.from_environment(device)

    if isinstance(recipe, str):
        if recipe not in RECIPES:
            raise VtbenchError(f"unknown probe recipe {recipe!r}; choose from {', '.join(RECIPES)}")
        recipe = RECIPES[recipe]
    recipe = replace(recipe, **{k: v for k, v in {"steps": steps, "seed": seed}.items() if v is not None})
    if recipe.steps < 1:
        raise VtbenchError(f"the probe needs at least 1 training step, got --steps {recipe.steps}")
    if encode_options.get("resolution") is not None and encode_options["resolution"] < 1:
        raise VtbenchError(f"--resolution must be a positive number of pixels, got {encode_options['resolution']}")
    if ranks.world > 1 and not ranks.is_main:
        torch.distributed.barrier()  # wait for rank 0's encoding, then read it from the cache
    names, ids, description = encode_dataset(tokenizer, dataset, device=device, **encode_options)
    if ranks.world > 1 and ranks.is_main:
        torch.distributed.barrier()
    vocab = int(description["codebook_size"] or int(ids.max()) + 1)
    held = torch.tensor(split_validation(names))
    if len(names) < 2:
        raise VtbenchError(f"the probe needs at least 2 images (one held out), {dataset} has {len(names)}")
    run_name = f"{tokenizer}__{Path(dataset).name or dataset}"
    out_dir = Path(out_dir)
    state_dir = out_dir / ".partial" / f"probe-{run_name}"
    if restart and state_dir.exists() and ranks.is_main:
        shutil.rmtree(state_dir)
    if ranks.world > 1:
        torch.distributed.barrier()
    torch_device = resolve_device(device, ranks.local_rank if ranks.world > 1 else None)
    result = train_probe(ids[~held], ids[held], vocab, recipe, torch_device, state_dir, ranks=ranks)
    record = {
        "schema": PROBE_SCHEMA, "schema_version": 1, "run_name": run_name, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "tokens": {**description, "images": len(names), "train_images": int((~held).sum()), "validation_images": int(held.sum()),
                   "tokens_per_image": int(ids.shape[1]), "vocab": vocab},
        "recipe": asdict(recipe),
        "validation_bits_per_token": result["validation_bits_per_token"],
        "validation_bits_per_image": result["validation_bits_per_token"] * ids.shape[1],
        "uniform_bits_per_token": math.log2(vocab),
        "curve": result["curve"], "train_seconds": result["train_seconds"], "steps_per_s": result["steps_per_s"],
        "parameters": result["parameters"], "processes": ranks.world, "environment": environment(torch_device),
    }  # fmt: skip
    if not ranks.is_main:
        return record
    atomic_write_json(out_dir / f"{run_name}.probe.json", record)
    shutil.rmtree(state_dir, ignore_errors=True)
    if state_dir.parent.is_dir() and not any(state_dir.parent.iterdir()):
        state_dir.parent.rmdir()
    return record
