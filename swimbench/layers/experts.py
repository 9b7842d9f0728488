"""Per-expert SSM-parameter producers (x_proj_e, dt_proj_e) and how tokens reach them.

Swimba computes only the k chosen experts per token, so token slots are sorted by expert and go
through grouped matrix products (torch._grouped_mm: one launch for all experts, what a real MoE
does). A separated MoE-SSM runs every expert on every token, so it needs no dispatch: one product
against all experts' x_proj stacked, one batched product for dt_proj.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from .base import init_dt_bias


def _aligned(t: Tensor) -> bool:
    """The grouped GEMM wants a unit last stride and 16-byte multiples for the others."""
    return t.stride(-1) == 1 and all(s * t.element_size() % 16 == 0 for s in t.stride()[:-1])


def grouped_mm(x: Tensor, w: Tensor, offs: Tensor) -> Tensor:
    """x (M, K) with rows grouped by expert, w (G, K, N), offs (G,) int32 cumulative group ends
    -> (M, N). torch's grouped GEMM where it exists for the dtype (bf16 on Hopper; any dtype on the
    CPU); elsewhere a loop over experts, which syncs with the host."""
    if (x.device.type == "cpu" or x.dtype == torch.bfloat16) and _aligned(x) and _aligned(w):
        return torch._grouped_mm(x, w, offs=offs)
    out, start = x.new_empty(x.shape[0], w.shape[-1]), 0
    for g, end in enumerate(offs.tolist()):
        out[start:end] = x[start:end] @ w[g]
        start = end
    return out


class ExpertProjections(nn.Module):
    """E copies of (x_proj: Di -> R + 2N, dt_proj: R -> Di with bias), stored (in, out) per expert:
    the layout the grouped GEMM reads without a transpose."""

    def __init__(self, experts: int, d_inner: int, dt_rank: int, d_state: int, device=None, dtype=None):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        E, Di, R, N = experts, d_inner, dt_rank, d_state
        self.R, self.N = R, N
        bound = Di ** -0.5
        self.x_w = nn.Parameter(torch.empty(E, Di, R + 2 * N, **factory).uniform_(-bound, bound))
        self.dt_w = nn.Parameter(torch.empty(E, R, Di, **factory).uniform_(-R ** -0.5, R ** -0.5))
        self.dt_b = nn.Parameter(torch.stack([init_dt_bias(Di, device=device) for _ in range(E)]))

    def _split(self, dbl: Tensor):
        return dbl.split([self.R, self.N, self.N], dim=-1)

    def selected(self, xc: Tensor, idx: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Streams of the chosen experts: xc (T, Di), idx (T, k) -> dt (T, k, Di) before bias,
        B and C (T, k, N). Token slots are sorted by expert and each expert's slots go through one
        grouped matrix product; no host sync, so decode can be captured in a CUDA graph."""
        T, k = idx.shape
        E = self.x_w.shape[0]
        flat = idx.reshape(-1)
        order = flat.argsort(stable=True)
        counts = torch.zeros(E, dtype=torch.int32, device=idx.device).index_add_(
            0, flat, torch.ones_like(flat, dtype=torch.int32))
        offs = counts.cumsum(0, dtype=torch.int32)
        xs = xc[order // k]                                                     # (T k, Di), by expert
        dbl = grouped_mm(xs, self.x_w, offs)                                    # (T k, R + 2N)
        dt = grouped_mm(dbl[:, :self.R], self.dt_w, offs)                       # (T k, Di)
        unsort = torch.empty_like(order).scatter_(0, order, torch.arange(order.numel(), device=order.device))
        dbl, dt = dbl[unsort].view(T, k, -1), dt[unsort].view(T, k, -1)
        _, B, C = self._split(dbl)
        return dt, B.contiguous(), C.contiguous()

    def every(self, xc: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Every expert on every token: xc (T, Di) -> dt (T, E, Di), B and C (T, E, N)."""
        E = self.x_w.shape[0]
        dbl = torch.bmm(xc.expand(E, *xc.shape), self.x_w)                       # (E, T, R + 2N)
        dt = torch.bmm(dbl[..., :self.R], self.dt_w)                              # (E, T, Di)
        _, B, C = self._split(dbl.transpose(0, 1))
        return dt.transpose(0, 1).contiguous(), B.contiguous(), C.contiguous()
