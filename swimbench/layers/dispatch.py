"""Token dispatch for mixture-of-experts layers, the way a real MoE does it: token slots sorted by
expert, each expert's slots through one grouped matrix product (torch._grouped_mm: one launch for
all experts), results put back in token order. No host sync anywhere, so a decode step that uses
it can be captured in a CUDA graph. Optional capacity: slots past an expert's capacity are dropped
(moved after every kept slot, outside all groups, and given a zero result).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from ..kernels.combine import combine as combine_op


def _aligned(t: Tensor) -> bool:
    """The grouped GEMM wants a unit last stride and 16-byte multiples for the others."""
    return t.stride(-1) == 1 and all(s * t.element_size() % 16 == 0 for s in t.stride()[:-1])


def _narrowest(bound: int) -> torch.dtype:
    """The narrowest integer dtype that holds 0..bound-1."""
    return torch.uint8 if bound <= 256 else torch.int16 if bound <= 2 ** 15 else torch.int32


def grouped_mm(x: Tensor, w: Tensor, offs: Tensor) -> Tensor:
    """x (M, K) with rows grouped by expert, w (G, K, N), offs (G,) int32 cumulative group ends
    -> (M, N); rows past offs[-1] are left unspecified. torch's grouped GEMM where it exists for
    the dtype (bf16 on Hopper; any dtype on the CPU); elsewhere a loop that syncs with the host."""
    if (x.device.type == "cpu" or x.dtype == torch.bfloat16) and _aligned(x) and _aligned(w):
        return torch._grouped_mm(x, w, offs=offs)
    out, start = x.new_zeros(x.shape[0], w.shape[-1]), 0
    for g, end in enumerate(offs.tolist()):
        out[start:end] = x[start:end] @ w[g]
        start = end
    return out


def slots_per_expert(capacity_factor: float, tokens: int, k: int, experts: int) -> int:
    """An expert's capacity: capacity_factor times its share of the T k slots, at least one."""
    return max(1, math.ceil(capacity_factor * tokens * k / experts))


@dataclass
class Dispatch:
    """Where each of the T*k token slots goes. Built once per routing decision; RoM reuses one for
    its input and output projections."""
    tokens: int
    k: int
    order: Tensor                 # (T k,) slot ids in expert order, dropped slots last
    offs: Tensor                  # (E,) int32 cumulative ends of the kept groups
    keep: Optional[Tensor]        # (T k, 1) bool in expert order, None when nothing can drop

    @classmethod
    def build(cls, idx: Tensor, experts: int, capacity_factor: Optional[float] = None,
              capacity: Optional[int] = None) -> "Dispatch":
        """`capacity`, slots kept per expert, when given, in place of capacity_factor's (an
        expert-parallel layer passes the capacity of all ranks' tokens: layers/parallel.py)."""
        T, k = idx.shape
        flat = idx.reshape(-1)
        # A radix sort makes one pass per key byte: the ids sorted as uint8 take one pass, not the
        # eight of int64 (each pass a launch and a read of the keys).
        order = flat.to(_narrowest(experts)).argsort(stable=True)
        ones = torch.ones_like(flat, dtype=torch.int32)
        counts = torch.zeros(experts, dtype=torch.int32, device=idx.device).index_add_(0, flat, ones)
        if capacity_factor is None and capacity is None:
            return cls(T, k, order, counts.cumsum(0, dtype=torch.int32), None)
        if capacity is None:
            capacity = slots_per_expert(capacity_factor, T, k, experts)
        start = counts.cumsum(0) - counts
        rank = torch.arange(T * k, device=idx.device) - start[flat[order]]   # place within its expert
        dropped = rank >= capacity
        # stable on a one-byte key: kept slots first, still in expert order; dropped ones after
        part = dropped.to(torch.uint8).argsort(stable=True)
        keep = ~dropped[part]
        return cls(T, k, order[part], counts.clamp(max=capacity).cumsum(0, dtype=torch.int32),
                   keep.unsqueeze(-1))

    def gather(self, x: Tensor) -> Tensor:
        """x (T, K) -> (T k, K), rows in expert order."""
        return x[self.order // self.k]

    def mm(self, xs: Tensor, w: Tensor) -> Tensor:
        """Rows in expert order through each expert's (K, N) matrix; dropped rows give zeros."""
        out = grouped_mm(xs, w, self.offs)
        return out if self.keep is None else torch.where(self.keep, out, 0)

    def positions(self) -> Tensor:
        """(T, k): the expert-order row of each token's slots, for ops that read rows in place of a
        scatter back to token order."""
        n = self.order.numel()
        rows = torch.arange(n, device=self.order.device, dtype=self.order.dtype)
        return torch.empty_like(self.order).scatter_(0, self.order, rows).view(self.tokens, self.k)

    def scatter(self, ys: Tensor) -> Tensor:
        """(T k, N) rows in expert order -> (T, k, N) in token order."""
        out = torch.empty_like(ys).index_copy_(0, self.order, ys)
        return out.view(self.tokens, self.k, -1)


def combine(gates: Tensor, values: Tensor) -> Tensor:
    """sum_j g_j v_j, gates (T, k), values (T, k, N) -> (T, N), through the swimbench::combine op
    (counted by the FLOP counters; one element-wise pass)."""
    return combine_op(gates, values)
