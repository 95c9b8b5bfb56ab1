"""Scale-out of the maps over processes with ``torch.distributed`` (launched by ``torchrun``).

Each process counts its shard of the split; the integer counts and class sizes are then
summed with ``all_reduce`` (NCCL on GPUs, Gloo on CPUs), so the result is exactly the
single-process one. Rank 0 writes the output.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

from ..base.errors import InputError
from .maps import OccurrenceCounter

__all__ = ["DistributedRun", "distributed_from_env"]


class DistributedRun:
    """The process group of a ``torchrun`` launch (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``)."""

    def __init__(self, device: torch.device):
        self.world = int(os.environ["WORLD_SIZE"])
        self.local_rank = int(os.environ.get("LOCAL_RANK", 0))
        if device.type == "cuda":
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        self.device = device
        self.backend = "nccl" if device.type == "cuda" else "gloo"
        if not dist.is_initialized():
            dist.init_process_group(self.backend)
        self.rank = dist.get_rank()

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, n: int) -> torch.Tensor:
        """This rank's image indices: ``DistributedSampler(shuffle=False)`` without its padding.

        The sampler pads the index list with repeats so every rank gets the same number;
        a repeated image would be counted twice, so the padding is dropped.
        """
        if n < self.world:
            raise InputError("fewer images than processes", expected=f">= {self.world} images", found=str(n))
        sampler = DistributedSampler(range(n), num_replicas=self.world, rank=self.rank, shuffle=False)
        positions = range(self.rank, sampler.total_size, self.world)
        return torch.tensor([i for pos, i in zip(positions, sampler, strict=True) if pos < n], dtype=torch.int64)

    def reduce(self, counter: OccurrenceCounter) -> None:
        """Sum a counter's counts and class sizes over all ranks, in place."""
        dist.all_reduce(counter.counts_, op=dist.ReduceOp.SUM)
        dist.all_reduce(counter.class_sizes_, op=dist.ReduceOp.SUM)

    def close(self) -> None:
        if dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def distributed_from_env(device: torch.device) -> DistributedRun | None:
    """A :class:`DistributedRun` when launched by torchrun with more than one process, else None."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    return DistributedRun(device)
