"""torch.distributed, in one place: the environment every launched process gets, the process group a
rank joins, the share of a list each rank takes, and the torchrun command that starts N ranks.

torch.distributed only (no swimbench import), so any part may use it: the expert-parallel layers
(layers/parallel.py), the sweep runner and the CLI. NVLink multicast (NVLS) is never used: the three
variables of SAFE_ENV turn it off in NCCL, in torch's symmetric memory and in NVSHMEM, and are set in
every process this module starts or initialises, whatever the caller's environment says.
"""
from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from typing import Optional, Sequence, TypeVar

import torch
import torch.distributed as dist

SAFE_ENV = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}
T = TypeVar("T")


def safe_env(env: Optional[dict] = None) -> dict:
    """`env` (default: this process's environment, changed in place) with SAFE_ENV forced into it."""
    env = os.environ if env is None else env
    env.update(SAFE_ENV)
    return env


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: Optional[str] = None       # None: one process, no process group

    @property
    def lead(self) -> bool:
        """The rank that writes shared files and prints."""
        return self.rank == 0

    def as_meta(self) -> dict:
        return {"rank": self.rank, "world_size": self.size, "local_rank": self.local_rank, "backend": self.backend}


def launched() -> bool:
    """Whether this process was started by torchrun (or anything that sets its variables); ValueError
    naming them when they are set but are not what torchrun sets (integers, 0 <= RANK < WORLD_SIZE)."""
    if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
        return False
    got = {k: os.environ.get(k) for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK") if k in os.environ}
    try:
        size, rank, local = (int(os.environ.get(k, "0")) for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK"))
    except ValueError:
        size = rank = local = -1
    if not (size >= 1 and 0 <= rank < size and local >= 0):
        raise ValueError(" ".join(f"{k}={v!r}" for k, v in got.items()) + " is not what torchrun sets: "
                         "integers with 0 <= RANK < WORLD_SIZE (unset them to run as one process)")
    return True


def join(backend: str, alone: bool = False) -> World:
    """Join the process group torchrun described in the environment (env://), once. A process not
    started by torchrun is a world of one: without a process group, or (`alone`) with a group of one
    rank, for code that runs collectives whatever the world size."""
    safe_env()
    if dist.is_available() and dist.is_initialized():
        return current()
    if not launched():
        if not alone:
            return World()
        dist.init_process_group(backend=backend, init_method=f"tcp://127.0.0.1:{free_port()}", rank=0,
                                world_size=1)
        return current()
    dist.init_process_group(backend=backend)
    return current()


def current() -> World:
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())),
                 dist.get_backend())


def leave() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def share(items: Sequence[T], rank: int, size: int) -> list[T]:
    """Rank `rank`'s deterministic share of `items`: every size-th item from its rank on. Round robin,
    so that a sweep ordered by cost (seq and batch outermost) spreads its cost evenly."""
    if not 0 <= rank < size:
        raise ValueError(f"rank {rank} outside a world of {size}")
    return list(items[rank::size])


def blocks(n: int, size: int) -> list[int]:
    """n things (experts) in `size` contiguous blocks as equal as can be: the first n % size one larger."""
    return [n // size + (r < n % size) for r in range(size)]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(nproc: int, args: Sequence[str], module: str = "swimbench") -> list[str]:
    """The command that runs `python -m <module> <args>` as `nproc` ranks on this host, under torch's own
    launcher, its rendezvous on 127.0.0.1 at a free port."""
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", str(nproc),
            "--master-addr", "127.0.0.1", "--master-port", str(free_port()), "-m", module, *args]


def launch_env(extra: Optional[dict] = None) -> dict:
    """The environment of launched ranks: this one, with SAFE_ENV; unless set already, one CPU thread per
    rank (torchrun would set 1 and warn) and gloo on the loopback interface (the ranks share one host;
    gloo otherwise takes the address the host name resolves to, which a container may not route)."""
    env = {**os.environ, **(extra or {})}
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    return safe_env(env)


def device_of(world: World, kind: str) -> torch.device:
    """A rank's device: cuda:<local rank> on GPUs, the CPU otherwise."""
    return torch.device("cuda", world.local_rank) if kind == "cuda" else torch.device("cpu")
