r"""Data-parallel training under ``torchrun``: one process per device, each on its shard of
every batch, gradients averaged before each optimiser step.

``torchrun --nproc-per-node N -m clipcore train ...`` starts N processes with ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` set; :func:`from_env` joins them into one process group
(NCCL on CUDA, gloo on the CPU). Each training batch of ``batch_size`` is split into N equal
shards (LSTM: columns of the batchified stream, each with its own carried hidden state;
images: rows of the augmented batch), each process computes the mean objective of its shard,
and :func:`average_gradients` -- registered as the optimiser's step pre-hook, so after the
step probe has copied its shard's own gradient -- averages the gradients with one all-reduce.
Equal shards make that average the gradient of the whole batch, so the optimiser (clipping
included, on the global norm) takes the step one process would take, as DDP does. BatchNorm
statistics stay per process, as in DDP without ``SyncBatchNorm``, so image runs differ from a
single process by that.

Rank 0 writes the run store (the run's ``meta.json`` records ``world_size``) and computes the
probes; the other ranks write nothing (:class:`NullWriter`) and read the checkpoint to resume.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["Group", "from_env", "average_gradients", "mean", "NullWriter"]


@dataclass(frozen=True)
class Group:
    """This process's place in the process group."""

    rank: int
    world: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, n: int, what: str) -> slice:
        """This rank's slice of ``n`` items split into ``world`` equal shards."""
        if n % self.world:
            raise ValueError(f"Invalid {what}: {n} (not divisible by the {self.world} processes of torchrun)")
        k = n // self.world
        return slice(self.rank * k, (self.rank + 1) * k)

    def barrier(self) -> None:
        torch.distributed.barrier()


def from_env(device_type: str) -> Group | None:
    """The process group of a ``torchrun`` launch (joined on first call), or None when this
    process runs alone (no ``WORLD_SIZE`` > 1 in the environment)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return Group(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def average_gradients(params) -> None:
    """Replace every ``.grad`` by its mean over the processes: one all-reduce of the
    gradients flattened into one buffer (a missing gradient counts as zero)."""
    import torch.distributed as dist

    params = list(params)
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = flat[offset : offset + n].view_as(g)
        offset += n


def mean(t: Tensor) -> Tensor:
    """The mean of a tensor over the processes (a new tensor)."""
    import torch.distributed as dist

    out = t.detach().clone()
    dist.all_reduce(out)
    return out / dist.get_world_size()


def broadcast_parameters(module: torch.nn.Module) -> None:
    """Every rank starts from rank 0's parameters and buffers."""
    import torch.distributed as dist

    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, 0)


def broadcast_flag(flag: bool, device: torch.device) -> bool:
    """Rank 0's ``flag`` on every rank."""
    import torch.distributed as dist

    t = torch.tensor([1 if flag else 0], device=device)
    dist.broadcast(t, 0)
    return bool(t.item())


class NullWriter:
    """The run writer of ranks other than 0: logs nothing, reads the run's checkpoint."""

    def __init__(self, checkpoint_path):
        self.meta: dict = {}
        self._checkpoint = checkpoint_path

    def log(self, *a, **k) -> None:
        pass

    def log_table(self, *a, **k) -> None:
        pass

    def truncate_after(self, step) -> None:
        pass

    def flush(self) -> None:
        pass

    def save_checkpoint(self, obj) -> None:
        pass

    def load_checkpoint(self, map_location=None):
        from .store import _load_checkpoint

        return _load_checkpoint(self._checkpoint, map_location)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
