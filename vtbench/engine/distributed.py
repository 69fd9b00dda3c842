"""Data-parallel runs with torch.distributed: which slice of the images this process scores,
and how the finished slices reach rank 0.

Under ``torchrun`` (``WORLD_SIZE`` > 1) the process group is set up from the environment:
NCCL when the run's device is a GPU, gloo on CPU. Each rank scores a contiguous block of
the images; at the end every rank's finished slice (metric states, counts, per-image rows)
is gathered to rank 0, which merges them into the one record a single process writes.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Ranks:
    """This process's place among the processes of a run."""

    rank: int = 0
    world: int = 1
    local_rank: int | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_environment(cls, device: str = "auto") -> Ranks:
        """The torchrun ranks, initialising the process group once; a single process otherwise."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if not dist.is_initialized():
            use_nccl = device != "cpu" and not device.startswith("mps") and torch.cuda.is_available()
            if use_nccl:
                torch.cuda.set_device(local_rank)
            dist.init_process_group("nccl" if use_nccl else "gloo")
            atexit.register(shutdown)
        return cls(dist.get_rank(), dist.get_world_size(), local_rank)

    def gather(self, payload: bytes) -> list[bytes] | None:
        """Every rank's ``payload``, in rank order, on rank 0 (None elsewhere)."""
        if self.world == 1:
            return [payload]
        gathered: list[bytes | None] = [None] * self.world
        dist.all_gather_object(gathered, payload)
        return [part for part in gathered if part is not None] if self.is_main else None

    def barrier(self) -> None:
        """Wait for every rank (nothing to wait for in a single process)."""
        if self.world > 1:
            dist.barrier()


def slice_bounds(total: int, index: int, count: int) -> tuple[int, int]:
    """The ``index``-th of ``count`` contiguous, near-equal blocks of ``range(total)``."""
    return total * index // count, total * (index + 1) // count


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
