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
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from vtbench.errors import VtbenchError
from vtbench.io import atomic_write_bytes
from vtbench.schema import ProbeRecord
from vtbench.settings import PROBE_FIELDS, RECIPES, ProbeConfig, ProbeRecipe

__all__ = ["RECIPES", "ProbeConfig", "ProbeRecipe", "encode_dataset", "run_probe", "train_probe"]

if TYPE_CHECKING:
    from vtbench.engine.distributed import Ranks

CACHE_VERSION = 1


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
                state_dir: Path | None = None, checkpoint_seconds: float = 30.0, stop_after: int | None = None,
                ranks: Ranks | None = None, identity: str = "") -> dict[str, Any]:  # fmt: skip
    """Train the probe on ``train`` ids (N, L) and score ``validation`` ids; returns the
    results (validation bits per token, the learning curve, steps/s). With ``state_dir`` the
    run checkpoints there and resumes from it; ``stop_after`` ends early after that many
    steps (an interrupted run, for tests), leaving the checkpoint. Under torchrun
    (``ranks``), each process takes every world-th image of each batch and the gradients
    are averaged (DistributedDataParallel): the batches of a one-process run. ``identity``
    names what is trained (settings and data): a checkpoint of another is refused."""
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
        step, curve, seconds, losses = _load_state(state_dir, model, optimizer, recipe, identity)
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
            _save_state(state_dir, model, optimizer, recipe, step, curve, seconds + time.perf_counter() - started, losses, identity)
            last_save = time.perf_counter()
        if done and step < recipe.steps:
            return {"complete": False, "step": step}
    seconds += time.perf_counter() - started
    final = curve[-1]["validation_bits_per_token"] if curve else nll_bits(model, validation)
    return {"complete": True, "step": step, "validation_bits_per_token": final, "curve": curve, "train_seconds": seconds,
            "steps_per_s": recipe.steps / seconds if seconds > 0 else None,
            "parameters": sum(p.numel() for p in model.parameters())}  # fmt: skip


def _save_state(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer, recipe: ProbeRecipe, step: int,
                curve: list[dict[str, Any]], seconds: float, losses: list[float], identity: str) -> None:  # fmt: skip
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
    atomic_write_json(folder / "state.json", {"step": step, "curve": curve, "seconds": seconds, "losses": losses, "recipe": asdict(recipe),
                                              "identity": identity})  # fmt: skip


def _load_state(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer, recipe: ProbeRecipe,
                identity: str) -> tuple[int, list, float, list]:  # fmt: skip
    from safetensors.torch import load_file

    meta = json.loads((folder / "state.json").read_text())
    if meta["recipe"] != asdict(recipe):
        raise VtbenchError(f"{folder}: a probe with another recipe was started here; pass --restart to discard it")
    if meta.get("identity", "") != identity:
        raise VtbenchError(f"{folder}: a probe of other settings or data was started here; pass --restart to discard it")
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


def encode_dataset(config: ProbeConfig) -> tuple[list[str], torch.Tensor, dict[str, Any]]:
    """Every image's ids in raster order: (ids, (N, L) int64, description), through the run's
    source (the dataset and preprocessing) and transform (the tokenizer's encoder). Cached
    under ``$VTBENCH_HOME/cache/token-ids/`` by the dataset's manifest, tokenizer and preprocessing."""
    from vtbench.datasets.base import manifest_sha256
    from vtbench.engine.components import create_dataset, resolve_device
    from vtbench.engine.sources import DatasetSource
    from vtbench.engine.transforms import TokenizerRoundTrip
    from vtbench.tokenizers import TOKENIZERS
    from vtbench.weights import home

    torch_device = resolve_device(config.device)
    tokenizer = TOKENIZERS.create(config.tokenizer, **config.tokenizer_options).to(torch_device)
    if tokenizer.info.family != "discrete" and tokenizer.info.family != "pixel":
        raise VtbenchError(f"tokenizer {config.tokenizer!r} has no discrete ids (family {tokenizer.info.family}): nothing to probe")
    dataset = create_dataset(config.dataset, config.dataset_options)
    preprocessing = config.preprocessing.resolved(tokenizer.info.native_resolution)
    if preprocessing.resolution is None:
        raise VtbenchError(f"tokenizer {config.tokenizer!r} has no native resolution: pass --resolution (the probe needs one id length)")
    count = len(dataset) if config.limit is None else min(config.limit, len(dataset))
    names = [dataset.ids[i] for i in range(count)]
    hashes = [dataset.content_sha256(i) for i in range(count)]  # the files' bytes, not decoded: the cache key comes first
    manifest = manifest_sha256(list(zip(names, hashes, strict=True)))
    identity = {"tokenizer": config.tokenizer, "options": config.tokenizer_options, "preprocessing": preprocessing.canonical(),
                "manifest": manifest, "version": CACHE_VERSION}  # fmt: skip
    key = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:32]
    cache = home() / "cache" / "token-ids" / f"{key}.npz"
    description = {"tokenizer": config.tokenizer, "tokenizer_options": config.tokenizer_options, "dataset": config.dataset,
                   "manifest_sha256": manifest, "preprocessing": preprocessing.to_dict(), "codebook_size": tokenizer.info.codebook_size,
                   "cache_key": key}  # fmt: skip
    if config.use_cache and cache.is_file():
        with np.load(cache, allow_pickle=False) as stored:
            return names, torch.from_numpy(stored["ids"]), {**description, "codebook_size": int(stored["codebook_size"]), "cached": True}
    round_trip = TokenizerRoundTrip(tokenizer, preprocessing, config.batch_size, config.tokenizer)
    rows = []
    source = DatasetSource(dataset, preprocessing)
    with torch.inference_mode():  # one batch of decoded images in memory at a time
        for batch in source.batches(range(count), config.batch_size, 0, torch_device, lambda key, work: work()):
            bad = [f"{item.id} ({item.error or 'changed while it was read'})" for item in batch.items
                   if item.error is not None or item.sha256 != hashes[item.index]]  # fmt: skip
            if bad or len(batch.groups) != 1:
                problem = "; ".join(bad[:3]) if bad else "images differ in size"
                raise VtbenchError(f"cannot read {len(bad) or len(batch.items)} image(s) of {config.dataset}: {problem}")
            pixels = batch.groups[0][1].to(torch_device).float().div(255)
            tokens = round_trip.encode(pixels)
            if tokens.indices is None:
                raise VtbenchError(f"tokenizer {config.tokenizer!r} returned no ids")
            rows.append(tokens.indices.reshape(len(pixels), -1).to(torch.int64).cpu())
            description["codebook_size"] = tokens.codebook_size or description["codebook_size"]
    ids = torch.cat(rows)
    if config.use_cache:
        buffer = io.BytesIO()
        np.savez(buffer, ids=ids.numpy(), codebook_size=np.int64(description["codebook_size"] or int(ids.max()) + 1))
        atomic_write_bytes(cache, buffer.getvalue())
    return names, ids, {**description, "cached": False}


def run_probe(config: ProbeConfig, out_dir: str | Path, restart: bool = False) -> ProbeRecord:
    """Encode (cached), train the probe and write ``OUT/TOKENIZER__DATASET.probe.json``; returns
    the record. Under torchrun the processes share each batch; rank 0 encodes first (the
    others read its cache) and writes the checkpoints and the record. A partial probe made
    with other settings or data is refused (``restart`` discards it)."""
    import shutil

    from vtbench.engine.components import resolve_device
    from vtbench.engine.distributed import Ranks
    from vtbench.engine.partial import identity_sha
    from vtbench.io import atomic_write_json
    from vtbench.provenance import environment

    ranks = Ranks.from_environment(config.device)
    recipe = config.training()
    if ranks.world > 1 and not ranks.is_main:
        torch.distributed.barrier()  # wait for rank 0's encoding, then read it from the cache
    names, ids, description = encode_dataset(config)
    if ranks.world > 1 and ranks.is_main:
        torch.distributed.barrier()
    vocab = int(description["codebook_size"] or int(ids.max()) + 1)
    held = torch.tensor(split_validation(names))
    if len(names) < 2:
        raise VtbenchError(f"the probe needs at least 2 images (one held out), {config.dataset} has {len(names)}")
    out_dir = Path(out_dir)
    state_dir = out_dir / ".partial" / f"probe-{config.run_name}"
    if restart and state_dir.exists() and ranks.is_main:
        shutil.rmtree(state_dir)
    if ranks.world > 1:
        torch.distributed.barrier()
    torch_device = resolve_device(config.device, ranks.local_rank if ranks.world > 1 else None)
    identity = identity_sha({**config.identity(), "manifest": description["manifest_sha256"]})
    result = train_probe(ids[~held], ids[held], vocab, recipe, torch_device, state_dir, ranks=ranks, identity=identity)
    record = ProbeRecord(
        run_name=config.run_name,
        tokens={
            **description,
            "images": len(names),
            "train_images": int((~held).sum()),
            "validation_images": int(held.sum()),
            "tokens_per_image": int(ids.shape[1]),
            "vocab": vocab,
        },  # fmt: skip
        recipe=asdict(recipe),
        validation_bits_per_token=result["validation_bits_per_token"],
        validation_bits_per_image=result["validation_bits_per_token"] * ids.shape[1],
        uniform_bits_per_token=math.log2(vocab),
        curve=result["curve"],
        train_seconds=result["train_seconds"],
        steps_per_s=result["steps_per_s"],
        parameters=result["parameters"],
        processes=ranks.world,
        environment=environment(torch_device),
        settings={k: v for k, v in asdict(config).items() if k in (*PROBE_FIELDS, "batch_size", "device", "use_cache")},
    )
    if not ranks.is_main:
        return record
    atomic_write_json(out_dir / f"{config.run_name}.probe.json", record.to_dict())
    shutil.rmtree(state_dir, ignore_errors=True)
    if state_dir.parent.is_dir() and not any(state_dir.parent.iterdir()):
        state_dir.parent.rmdir()
    return record
