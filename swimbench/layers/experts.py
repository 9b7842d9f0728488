"""Per-expert SSM-parameter producers (x_proj_e, dt_proj_e) and how tokens reach them.

Swimba computes only the k chosen experts per token, through the dispatch of dispatch.py. A
separated MoE-SSM runs every expert on every token, so it needs no dispatch: one product
against all experts' x_proj stacked, one batched product for dt_proj.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from .base import init_dt_bias
from .dispatch import dispatch


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
        B and C (T, k, N), through the dispatch (dispatch.py)."""
        route = dispatch(idx, self.x_w.shape[0])
        dbl = route.mm(route.gather(xc), self.x_w)                          # (T k, R + 2N)
        dt = route.scatter(route.mm(dbl[:, :self.R], self.dt_w))            # (T, k, Di)
        _, B, C = self._split(route.scatter(dbl))
        return dt, B, C

    def routed(self, xc: Tensor, idx: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Streams of the chosen experts, left in the dispatch's expert order: xc (T, Di), idx (T, k) ->
        dt (T k, Di) before bias, B and C (T k, N) (views), and pos (T, k), the row of each token's
        stream. What `selected` returns, without its scatter back to token order."""
        route = dispatch(idx, self.x_w.shape[0])
        dbl = route.mm(route.gather(xc), self.x_w)                          # (T k, R + 2N)
        dt = route.mm(dbl[:, :self.R], self.dt_w)                           # (T k, Di)
        _, B, C = self._split(dbl)
        return dt, B, C, route.positions()

    def every(self, xc: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Every expert on every token: xc (T, Di) -> dt (T, E, Di), B and C (T, E, N)."""
        E = self.x_w.shape[0]
        dbl = torch.bmm(xc.expand(E, *xc.shape), self.x_w)                       # (E, T, R + 2N)
        dt = torch.bmm(dbl[..., :self.R], self.dt_w)                              # (E, T, Di)
        _, B, C = self._split(dbl.transpose(0, 1))
        return dt.transpose(0, 1).contiguous(), B.contiguous(), C.contiguous()
