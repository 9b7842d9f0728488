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
    def build(cls, idx: Tensor, experts: int, capacity_factor: Optional[float] = None) -> "Dispatch":
        T, k = idx.shape
        flat = idx.reshape(-1)
        ones = torch.ones_like(flat, dtype=torch.int32)
        counts = torch.zeros(experts, dtype=torch.int32, device=idx.device).index_add_(0, flat, ones)
        keep = None
        if capacity_factor is not None:
            capacity = max(1, math.ceil(capacity_factor * T * k / experts))
            by_expert = flat.argsort(stable=True)
            start = counts.cumsum(0) - counts
            rank = torch.empty_like(flat).scatter_(0, by_expert, torch.arange(T * k, device=idx.device))
            rank = rank - start[flat]                                  # position within its expert
            kept = rank < capacity
            flat = torch.where(kept, flat, experts)                    # dropped slots sort last
            counts = counts.clamp(max=capacity)
        order = flat.argsort(stable=True)
        if capacity_factor is not None:
            keep = kept[order].unsqueeze(-1)
        return cls(T, k, order, counts.cumsum(0, dtype=torch.int32), keep)

    def gather(self, x: Tensor) -> Tensor:
        """x (T, K) -> (T k, K), rows in expert order."""
        return x[self.order // self.k]

    def mm(self, xs: Tensor, w: Tensor) -> Tensor:
        """Rows in expert order through each expert's (K, N) matrix; dropped rows give zeros."""
        out = grouped_mm(xs, w, self.offs)
        return out if self.keep is None else torch.where(self.keep, out, 0)

    def scatter(self, ys: Tensor) -> Tensor:
        """(T k, N) rows in expert order -> (T, k, N) in token order."""
        out = torch.empty_like(ys).index_copy_(0, self.order, ys)
        return out.view(self.tokens, self.k, -1)


def combine(gates: Tensor, values: Tensor) -> Tensor:
    """sum_j g_j v_j, gates (T, k), values (T, k, N) -> (T, N), through the swimbench::combine op
    (counted by the FLOP counters; one element-wise pass)."""
    return combine_op(gates, values)
