"""Expert-parallel timing (`swimbench ep`, docs/distributed.md): one routed layer over the ranks of a
torch.distributed world, its experts sharded (layers/parallel.py) or replicated, prefill and decode, the
time of the collectives apart from the rest.

Every rank runs the layer on its own tokens (batch sequences of seq tokens: weak scaling, so the world
processes size x batch x seq tokens a step). Each timed call starts together on every rank (a barrier,
after a device sync) and is bracketed by a pair of clock stamps; each collective inside it by another
pair (the exchange's `span` hook). On a GPU the stamps are CUDA events on the current stream, so the
times are the GPU's; on the CPU they are the host's `perf_counter` (gloo's collectives block the host),
and rows say which (`clock`). Per call: the step's time is the slowest rank's; the communication time
is the mean over ranks of the time inside collectives, which includes waiting for the slowest rank to
arrive at them; compute is the rest.

Every rank runs the same number of calls (collectives must match), so the counts are fixed (`reps`,
`warmup`), not a time budget as in `swimbench latency`. Calls are eager: the exchange's split sizes
reach the host once per exchange (all_to_all_single takes them as lists), which a CUDA graph cannot hold.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch
import torch.distributed as dist

from .. import designs
from ..distributed import World
from ..layers.parallel import ExpertParallel
from ..sweeps.spec import Point, Sweep
from .timing import _CudaClock, _HostClock, is_cuda
from .workload import DTYPES, random_cache, size

PHASES = ("prefill", "decode")


@dataclass(frozen=True)
class EpPoint:
    variant: str
    experts: int
    top_k: int
    seq: int
    batch: int                  # sequences per rank
    mode: str                   # "expert" (sharded) or "replicated"


class Spans:
    """The exchange's span hook: a pair of stamps around every collective of one call."""

    def __init__(self, clock):
        self.clock, self.pairs = clock, []

    @contextmanager
    def __call__(self, name: str):
        a = self.clock.stamp()
        try:
            yield
        finally:
            self.pairs.append((a, self.clock.stamp()))

    def take_ms(self) -> float:
        ms = sum(self.clock.elapsed_ms(a, b) for a, b in self.pairs)
        self.pairs = []
        return ms


def _sync(device) -> None:
    if is_cuda(device):
        torch.cuda.synchronize(device)


def _time(call: Callable[[], object], spans: Spans, clock, device, warmup: int, reps: int,
          together: Callable[[], None]) -> np.ndarray:
    """(reps, 2): total and in-collective ms of each timed call on this rank; every call starts after
    `together` (a barrier of all ranks)."""
    out = []
    for i in range(warmup + reps):
        _sync(device)
        together()
        a = clock.stamp()
        call()
        b = clock.stamp()
        _sync(device)
        comm = spans.take_ms()
        if i >= warmup:
            out.append((clock.elapsed_ms(a, b), comm))
    return np.array(out, dtype=np.float64)


def measure(point: EpPoint, sweep: Sweep, world: World, device, warmup: int, reps: int, seed: int,
            group=None) -> list[dict]:
    """This point's rows (one per phase) on rank 0, None elsewhere; every rank must call it."""
    device = torch.device(device)
    sizing = size(Point(point.variant, point.experts, point.top_k, point.seq, point.batch, 1), sweep)
    dtype = DTYPES[sweep.dtype]
    torch.manual_seed(seed)                                  # the same weights on every rank
    layer = designs.build_layer(sizing.cfg, device=device, dtype=dtype).eval()
    full = sum(p.numel() for p in layer.parameters())
    ep = ExpertParallel(layer, group=group, mode=point.mode)
    del layer
    clock = _CudaClock(device) if is_cuda(device) else _HostClock()
    spans = Spans(clock)
    ep.set_span(spans)
    torch.manual_seed(seed + 1 + world.rank)                 # each rank its own tokens
    D = sizing.cfg.d_model
    x = torch.randn(point.batch, point.seq, D, device=device, dtype=dtype)
    x_t = torch.randn(point.batch, 1, D, device=device, dtype=dtype)
    cache = random_cache(ep, point.batch)
    held = sum(p.numel() for p in ep.parameters())
    rows = []
    with torch.inference_mode():
        for phase, call in (("prefill", lambda: ep(x)), ("decode", lambda: ep.step(x_t, cache))):
            t0 = time.perf_counter()
            mine = _time(call, spans, clock, device, warmup, reps, lambda: dist.barrier(group=group))
            wall = time.perf_counter() - t0
            every = _gather(mine, world, group)
            if every is not None:
                rows.append(_row(point, sizing, sweep.dtype, phase, every, world, clock.name, held, full, wall))
    return rows if world.lead else None


def _gather(mine: np.ndarray, world: World, group) -> Optional[np.ndarray]:
    """(ranks, reps, 2) on rank 0."""
    if world.size == 1:
        return mine[None]
    parts = [None] * world.size
    dist.all_gather_object(parts, mine.tolist(), group=group)
    return np.array(parts, dtype=np.float64) if world.lead else None


def _row(point: EpPoint, sizing, dtype: str, phase: str, t: np.ndarray, world: World, clock: str, held: int,
         full: int, wall: float) -> dict:
    total, comm = t[..., 0], t[..., 1]                       # (ranks, reps)
    step = total.max(axis=0)                                 # a call ends when its slowest rank does
    comm_mean = comm.mean(axis=0)
    tokens = world.size * point.batch * (point.seq if phase == "prefill" else 1)
    step_ms = float(np.median(step))
    comm_ms = float(np.median(comm_mean))
    return {
        "variant": point.variant, "experts": point.experts, "top_k": point.top_k, "seq": point.seq,
        "batch": point.batch, "mode": point.mode, "phase": phase, "world_size": world.size,
        "backend": world.backend, "d_model": sizing.cfg.d_model, "d_inner": sizing.cfg.d_inner,
        "dtype": dtype, "routing": sizing.cfg.routing, "tokens": tokens,
        "step_ms": step_ms, "step_ms_p10": float(np.percentile(step, 10)),
        "step_ms_p90": float(np.percentile(step, 90)),
        "us_per_token": step_ms * 1e3 / tokens, "comm_ms": comm_ms,
        "compute_ms": float(np.median((total - comm).mean(axis=0))),
        "comm_share": float(np.median(comm_mean / np.maximum(total.mean(axis=0), 1e-12))),
        "comm_ms_max_rank": float(np.median(comm.max(axis=0))),
        "slowest_rank": int(np.bincount(total.argmax(axis=0), minlength=world.size).argmax()),
        "reps": int(t.shape[1]), "clock": clock, "params_per_rank": held, "params_layer": full,
        "wall_s": round(wall, 3),
    }


def points(variants, experts, top_k, seq, batch, modes) -> list[EpPoint]:
    """Every (variant, E, k <= E, seq, batch, mode), seq and batch outermost."""
    return [EpPoint(v, E, k, s, b, m) for s in seq for b in batch for v in variants for E in experts
            for k in top_k if k <= E for m in modes]
