"""Multi-process training under ``torchrun``: process group set-up, sharding, rank-0-only writes."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only the main process writes files or prints."""
        return self.rank == 0

    def shard(self, items: list) -> list:
        """This rank's share of ``items``, the same count on every rank.

        DDP synchronises gradients in every backward, so a rank with one batch fewer would leave
        the others waiting forever; short shards repeat their first items instead.
        """
        if not self.enabled:
            return items
        per_rank = -(-len(items) // self.world_size)
        mine = items[self.rank::self.world_size]
        if not mine:
            mine = items[:1]
        return (mine * per_rank)[:per_rank] if len(mine) < per_rank else mine

    def broadcast(self, value):
        """Rank 0's ``value`` on every rank (e.g. a run directory named after the clock)."""
        if not self.enabled:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name!r} is not a device (expected cpu, cuda, cuda:N or auto)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return device


def init_distributed(device_name: str) -> Distributed:
    """Join the process group when started by ``torchrun`` (gloo on CPU, nccl on CUDA)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_name)
    if world_size <= 1:
        return Distributed(device=device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Distributed(rank=dist.get_rank(), world_size=dist.get_world_size(), device=device)


def shutdown_distributed(ctx: Distributed) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()
