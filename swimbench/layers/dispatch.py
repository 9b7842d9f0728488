"""Token dispatch for mixture-of-experts layers, two ways, chosen by the number of token slots
(tokens x k) in a call (`path`):

- sorted (`Dispatch`), the way a real MoE runs many tokens: slots sorted by expert, each expert's slots
  through one grouped matrix product (torch._grouped_mm: one launch for all experts), results put back
  in token order;
- gathered (`Gathered`), for a handful of slots (decode at small batch): each slot through its
  expert's matrix read by index (swimbench::gather_mm), slots left in token order. No sort, gather or
  scatter: those are a dozen launches, which at batch 1 cost more than the arithmetic.

Both read each chosen expert's weights once, neither syncs with the host, so a decode step that uses
them can be captured in a CUDA graph. Optional capacity: slots past an expert's capacity (in token
order) are dropped and given a zero result.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ..kernels.combine import combine as combine_op
from ..kernels.gather_mm import gather_mm


def _aligned(t: Tensor) -> bool:
    """The grouped GEMM wants a unit last stride and 16-byte multiples for the others."""
    return t.stride(-1) == 1 and all(s * t.element_size() % 16 == 0 for s in t.stride()[:-1])


def _narrowest(bound: int) -> torch.dtype:
    """The narrowest integer dtype that holds 0..bound-1."""
    return torch.uint8 if bound <= 256 else torch.int16 if bound <= 2 ** 15 else torch.int32


def grouped_mm(x: Tensor, w: Tensor, offs: Tensor) -> Tensor:
    """x (M, K) with rows grouped by expert, w (G, K, N), offs (G,) int32 cumulative group ends
    -> (M, N); rows past offs[-1] are left unspecified. torch's grouped GEMM where it exists for
    the dtype (bf16 on Hopper; any dtype on the CPU); elsewhere on a GPU `grouped_mm_masked`; on the
    CPU with unaligned shapes a loop over the groups (no graph to capture there; the FLOP counters see
    exactly each group's product)."""
    cpu = x.device.type == "cpu"
    if (cpu or x.dtype == torch.bfloat16) and _aligned(x) and _aligned(w):
        return torch._grouped_mm(x, w, offs=offs)
    if not cpu:
        return grouped_mm_masked(x, w, offs)
    out, start = x.new_zeros(x.shape[0], w.shape[-1]), 0
    for g, end in enumerate(offs.tolist()):
        out[start:end] = x[start:end] @ w[g]
        start = end
    return out


def grouped_mm_masked(x: Tensor, w: Tensor, offs: Tensor) -> Tensor:
    """The grouped product without a grouped GEMM (fp16 and fp32 on a GPU, unaligned shapes): every
    expert's matrix over all rows, each row keeping its own expert's product. G times the arithmetic,
    but no host sync, so prefill graphs capture it (a loop over the groups' bounds read to the host
    could not be captured: fp16 prefill failed that way). Rows past offs[-1] give zeros."""
    rows = torch.arange(x.shape[0], device=x.device)
    group = torch.searchsorted(offs, rows, right=True).unsqueeze(-1)       # G for rows past the end
    out = x.new_zeros(x.shape[0], w.shape[-1])
    for g in range(w.shape[0]):
        out = torch.where(group == g, x @ w[g], out)
    return out


# The most slots the gathered path takes (one tile of rows in its kernel). Measured on the H200: at
# batch 1 to 64 slots it beats the sorted path at every E (docs/performance.md, issue 11).
GATHER_SLOTS = 64


def path(slots: int) -> str:
    """How a call with `slots` token slots is dispatched: "gathered" or "sorted"."""
    return "gathered" if slots <= GATHER_SLOTS else "sorted"


def capacity_of(capacity_factor: Optional[float], slots: int, experts: int) -> int:
    """Slots an expert keeps: ceil(factor x its fair share), at least one."""
    return max(1, math.ceil(capacity_factor * slots / experts))


def dispatch(idx: Tensor, experts: int, capacity_factor: Optional[float] = None):
    """The dispatch of a routing decision idx (T, k), by `path`."""
    cls = Gathered if path(idx.numel()) == "gathered" else Dispatch
    return cls.build(idx, experts, capacity_factor)


@dataclass
class Gathered:
    """Slots in token order (slot t k + j), each through its expert's matrix by index. The same methods
    as `Dispatch`, so a layer does not know which path it runs."""
    idx: Tensor                   # (T, k)
    capacity: int                 # 0: nothing drops

    @classmethod
    def build(cls, idx: Tensor, experts: int, capacity_factor: Optional[float] = None) -> "Gathered":
        cap = 0 if capacity_factor is None else capacity_of(capacity_factor, idx.numel(), experts)
        return cls(idx, cap)

    def gather(self, x: Tensor) -> Tensor:
        """x (T, K): the slots read their token's row in place."""
        return x

    def mm(self, xs: Tensor, w: Tensor, gelu: bool = False) -> Tensor:
        """Token rows (T, K) or slot rows (T k, K) through each slot's expert -> (T k, N); dropped slots
        give zeros."""
        return gather_mm(xs, w, self.idx, self.capacity, gelu)

    def positions(self) -> Tensor:
        T, k = self.idx.shape
        return torch.arange(T * k, device=self.idx.device).view(T, k)

    def scatter(self, ys: Tensor) -> Tensor:
        """(T k, N) slot rows, already in token order -> (T, k, N)."""
        return ys.view(*self.idx.shape, -1)


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
            capacity = capacity_of(capacity_factor, T * k, experts)
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

    def mm(self, xs: Tensor, w: Tensor, gelu: bool = False) -> Tensor:
        """Rows in expert order through each expert's (K, N) matrix; dropped rows give zeros."""
        out = grouped_mm(xs, w, self.offs)
        if gelu:
            out = F.gelu(out)
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
