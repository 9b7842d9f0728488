"""Expert parallelism: a routed layer's experts sharded over the ranks of a torch.distributed group.

`ExpertParallel(layer)` wraps a single-process layer (MoE-Mamba, Routing Mamba or Swimba) built with the
same weights on every rank. Each rank keeps the experts of one contiguous block (distributed.blocks:
E = 8 over 3 ranks is 3, 3, 2) and runs the rest of the layer (router, conv, scan, shared projections)
on its own tokens, its share of the batch. The router's choice, the dispatch and the combine are the
layer's own; only the grouped GEMMs of the experts move: a rank sorts its slots by expert
(dispatch.Dispatch), sends each to the rank that holds its expert and gets the results back.

One exchange (`ExpertExchange.run`), all with `all_to_all_single`:
1. counts: each rank's slots per expert, to every rank (E integers each);
2. the split sizes on the host: all_to_all_single takes them as lists, so this is one host sync per
   exchange (timed with the counts' collective), and the reason an expert-parallel step is timed
   eagerly, not replayed from a CUDA graph;
3. payloads: each slot's row to its expert's rank, which groups what it received by expert (source
   rank, then slot, within an expert: the order of the slots of all ranks' tokens in one process), keeps
   the first `capacity` slots of each expert where the layer has a capacity (MoE-Mamba's Switch FFN:
   the capacity of all ranks' tokens), and runs its experts' grouped GEMMs;
4. results back by the reverse exchange, in the sender's expert order, where the layer's own
   scatter and combine take them.

So the output on each rank equals the single-process layer's on the concatenation of all ranks' inputs
(tests/layers/test_parallel.py, capacity drops included), except that a forced routing pattern
(`balanced`, `skewed`) starts again on every rank's tokens. Swimba's delta biases (E x Di, read by
expert id where its streams are mixed) stay whole on every rank.

Each collective runs inside `exchange.span(name)`, a context manager factory that does nothing unless
a timer sets it (measure/expert_parallel.py puts events around the collectives).
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import Callable, Optional

import torch
import torch.distributed as dist
import torch.nn as nn
from torch import Tensor

from ..distributed import blocks
from .dispatch import Dispatch, capacity_of, combine
from .experts import ExpertProjections
from .ffn import SwitchFFN
from .moe_mamba import MoEMamba
from .rom import RoutingMamba
from .swimba import Swimba

Span = Callable[[str], object]


def _no_span(name: str):
    return nullcontext()


def _counts(route: Dispatch) -> Tensor:
    """Slots per expert, from the dispatch's cumulative group ends."""
    return torch.diff(route.offs, prepend=route.offs.new_zeros(1))


class ExpertExchange:
    """Moves a rank's slots to the ranks that hold their experts and the results back."""

    def __init__(self, experts: int, group=None):
        self.experts, self.group = experts, group
        self.size, self.rank = dist.get_world_size(group), dist.get_rank(group)
        sizes = blocks(experts, self.size)
        self.starts = [sum(sizes[:r]) for r in range(self.size + 1)]
        self.lo, self.hi = self.starts[self.rank], self.starts[self.rank + 1]
        self.span: Span = _no_span

    def shard(self, stack: Tensor) -> nn.Parameter:
        """This rank's block of a stack indexed by expert (E, ...)."""
        return nn.Parameter(stack.detach()[self.lo:self.hi].clone(), requires_grad=stack.requires_grad)

    def _all_to_all(self, name: str, out: Tensor, inp: Tensor, out_splits=None, in_splits=None) -> Tensor:
        with self.span(name):
            dist.all_to_all_single(out, inp, out_splits, in_splits, group=self.group)
        return out

    def run(self, rows: Tensor, counts: Tensor, experts_fn: Callable[[Dispatch, Tensor], Tensor], width: int,
            capacity_factor: Optional[float] = None) -> Tensor:
        """rows (M, K): this rank's slots in expert order, counts (E,): slots per expert; experts_fn(route,
        rows) runs this rank's experts on rows grouped by them (through route.mm) -> (rows, width).
        Returns (M, width), the results in `rows`' order; zeros for slots dropped past an expert's capacity
        (capacity_factor, for top-k slots of all ranks' tokens)."""
        W, E = self.size, self.experts
        counts = counts.to(torch.int64)
        with self.span("counts"):       # the host's wait for the split sizes counts as the exchange's
            table = counts.new_empty(W * E)
            dist.all_to_all_single(table, counts.repeat(W), group=self.group)
            table = table.view(W, E).cpu()
        send = [int(table[self.rank, self.starts[r]:self.starts[r + 1]].sum()) for r in range(W)]
        mine = table[:, self.lo:self.hi]                         # (W, local experts): what comes here
        recv = [int(n) for n in mine.sum(1)]
        got = self._all_to_all("tokens", rows.new_empty(sum(recv), rows.shape[1]), rows.contiguous(), recv, send)
        local = self.hi - self.lo
        if got.shape[0]:
            eids = torch.repeat_interleave(torch.arange(local).repeat(W), mine.reshape(-1)).to(rows.device)
            capacity = None if capacity_factor is None else capacity_of(capacity_factor, int(table.sum()), E)
            route = Dispatch.build(eids.view(-1, 1), local, capacity=capacity)
            back = route.scatter(experts_fn(route, route.gather(got))).view(got.shape[0], width)
        else:
            back = rows.new_empty(0, width)
        return self._all_to_all("results", rows.new_empty(rows.shape[0], width), back.contiguous(), send, recv)


class _Sharded(nn.Module):
    def set_span(self, span: Span) -> None:
        self.exchange.span = span


class ExpertParallelFFN(_Sharded):
    """MoE-Mamba's Switch FFN with its experts sharded: its router, capacity and combine."""

    def __init__(self, ffn: SwitchFFN, group=None):
        super().__init__()
        self.router, self.capacity_factor = ffn.router, ffn.capacity_factor
        self.experts = ffn.experts
        self.exchange = ExpertExchange(ffn.experts, group)
        self.w1, self.w2 = self.exchange.shard(ffn.w1), self.exchange.shard(ffn.w2)

    def _experts(self, route: Dispatch, rows: Tensor) -> Tensor:
        return route.mm(route.mm(rows, self.w1, gelu=True), self.w2)

    def forward(self, h: Tensor) -> Tensor:
        lead = h.shape[:-1]
        flat = h.reshape(-1, h.shape[-1])
        gates, idx = self.router(flat)
        route = Dispatch.build(idx, self.experts)
        cf = self.capacity_factor if self.experts > 1 else None
        ys = self.exchange.run(route.gather(flat), _counts(route), self._experts, flat.shape[-1], cf)
        return combine(gates, route.scatter(ys)).view(*lead, -1)


class ExpertParallelProjections(_Sharded):
    """Swimba's expert x_proj and dt_proj sharded; the same `routed` and `selected` as ExpertProjections."""

    def __init__(self, experts: ExpertProjections, group=None):
        super().__init__()
        self.R, self.N = experts.R, experts.N
        self.count, self.d_inner = experts.x_w.shape[0], experts.dt_w.shape[-1]
        self.exchange = ExpertExchange(self.count, group)
        self.x_w, self.dt_w = self.exchange.shard(experts.x_w), self.exchange.shard(experts.dt_w)
        self.dt_b = experts.dt_b

    def _experts(self, route: Dispatch, rows: Tensor) -> Tensor:
        dbl = route.mm(rows, self.x_w)
        return torch.cat([route.mm(dbl[:, :self.R], self.dt_w), dbl], dim=-1)

    def _streams(self, xc: Tensor, idx: Tensor):
        route = Dispatch.build(idx, self.count)
        width = self.d_inner + self.R + 2 * self.N
        out = self.exchange.run(route.gather(xc), _counts(route), self._experts, width)
        dt, _, B, C = out.split([self.d_inner, self.R, self.N, self.N], dim=-1)
        return route, dt, B, C

    def routed(self, xc: Tensor, idx: Tensor):
        route, dt, B, C = self._streams(xc, idx)
        return dt, B, C, route.positions()

    def selected(self, xc: Tensor, idx: Tensor):
        route, dt, B, C = self._streams(xc, idx)
        return route.scatter(dt), route.scatter(B), route.scatter(C)


class ExpertParallelProjectionsRoM(_Sharded):
    """Routing Mamba's expert in and out projections sharded; its router's choice shared by both."""

    def __init__(self, layer: RoutingMamba, group=None):
        super().__init__()
        self.cfg = layer.cfg
        self.exchange = ExpertExchange(layer.cfg.experts, group)
        self.in_w, self.out_w = self.exchange.shard(layer.in_w), self.exchange.shard(layer.out_w)
        self.router = layer.router

    def _through(self, route: Dispatch, flat: Tensor, w: Tensor) -> Tensor:
        return self.exchange.run(route.gather(flat), _counts(route), lambda r, rows: r.mm(rows, w), w.shape[-1])

    def project_in(self, x: Tensor):
        lead = x.shape[:-1]
        flat = x.reshape(-1, x.shape[-1])
        gates, idx = self.router(flat)
        route = Dispatch.build(idx, self.cfg.experts)
        xz = combine(gates, route.scatter(self._through(route, flat, self.in_w)))
        x_in, z = xz.view(*lead, -1).chunk(2, dim=-1)
        return x_in, z, (gates, route)

    def project_out(self, y: Tensor, ctx) -> Tensor:
        gates, route = ctx
        lead = y.shape[:-1]
        flat = y.reshape(-1, y.shape[-1])
        return combine(gates, route.scatter(self._through(route, flat, self.out_w))).view(*lead, -1)


MODES = ("expert", "replicated")     # experts sharded over the ranks, or whole on every rank


class ExpertParallel(nn.Module):
    """A routed layer with its experts sharded over `group` (mode "expert"), or whole on every rank
    (mode "replicated": each rank runs the layer on its own tokens, no exchange; the comparison).
    The wrapped layer is changed in place: its expert stacks are replaced by this rank's block."""

    def __init__(self, layer: nn.Module, group=None, mode: str = "expert"):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        self.mode, self.layer = mode, layer
        if mode == "replicated":
            return
        if isinstance(layer, MoEMamba):
            layer.ffn = ExpertParallelFFN(layer.ffn, group)
        elif isinstance(layer, Swimba):
            layer.experts = ExpertParallelProjections(layer.experts, group)
        elif isinstance(layer, RoutingMamba):
            sharded = ExpertParallelProjectionsRoM(layer, group)
            del layer.in_w, layer.out_w
            layer.expert_parallel = sharded
            layer.project_in, layer.project_out = sharded.project_in, sharded.project_out
        else:
            raise ValueError(f"{type(layer).__name__} has no experts dispatched to: expert parallelism applies "
                             f"to {', '.join(SUPPORTED)}")

    def set_span(self, span: Span) -> None:
        """Run every collective of this layer inside span(name)."""
        for m in self.modules():
            if isinstance(m, _Sharded):
                m.set_span(span)

    def allocate_cache(self, batch: int):
        return self.layer.allocate_cache(batch)

    def forward(self, x: Tensor, cache=None) -> Tensor:
        return self.layer(x, cache)

    def step(self, x: Tensor, cache) -> Tensor:
        return self.layer.step(x, cache)


SUPPORTED = ("moe_mamba", "rom", "swimba")       # the routed designs whose experts tokens are sent to
