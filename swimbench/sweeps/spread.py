"""One sweep spread over the ranks of a torch.distributed world, one GPU each (docs/distributed.md).

Every rank reads the run's finished rows, then (after a barrier, before any rank writes) takes its
deterministic share of the points still to measure: every size-th one from its rank on, so that the
share depends only on what is left, and `--resume` finishes a run whatever world size measured it.
Ranks write into one run directory (results/rundir.py's shared mode); rank 0 writes the metadata and
prints. In a process not started by torchrun, the world has one rank and every step does nothing.

The process group is gloo whatever the device: ranks only agree on a run directory, wait for each
other and gather their outcomes; the GPUs exchange nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, TypeVar

import torch.distributed as dist

from .. import distributed
from ..distributed import World

T = TypeVar("T")


@dataclass(frozen=True)
class Spread:
    world: World

    @classmethod
    def join(cls) -> "Spread":
        return cls(distributed.join("gloo"))

    @property
    def spread(self) -> bool:
        return self.world.size > 1

    def agree(self, value: T) -> T:
        """Rank 0's value, on every rank."""
        if not self.spread:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def wait(self) -> None:
        if self.spread:
            dist.barrier()

    def gather(self, value: T) -> list[T]:
        """Every rank's value, in rank order, on every rank."""
        if not self.spread:
            return [value]
        out: list = [None] * self.world.size
        dist.all_gather_object(out, value)
        return out

    def mine(self, todo: Sequence[T]) -> list[T]:
        return distributed.share(todo, self.world.rank, self.world.size)

    def close(self) -> None:
        distributed.leave()
