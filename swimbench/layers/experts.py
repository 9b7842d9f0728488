"""Per-expert SSM-parameter producers (x_proj_e, dt_proj_e) and how tokens reach them.

Swimba computes only the k chosen experts per token, so tokens are dispatched: in prefill they
are sorted by expert and each expert runs one matrix product over its tokens (what a real MoE
does); in decode, where shapes must stay static for CUDA graphs, each token gathers its k
experts' weights. A separated MoE-SSM runs every expert on every token, so it needs no dispatch:
one product against all experts' x_proj stacked, one batched product for dt_proj.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from .base import init_dt_bias


class ExpertProjections(nn.Module):
    """E copies of (x_proj: Di -> R + 2N, dt_proj: R -> Di with bias)."""

    def __init__(self, experts: int, d_inner: int, dt_rank: int, d_state: int, device=None, dtype=None):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        E, Di, R, N = experts, d_inner, dt_rank, d_state
        self.R, self.N = R, N
        bound = Di ** -0.5
        self.x_w = nn.Parameter(torch.empty(E, R + 2 * N, Di, **factory).uniform_(-bound, bound))
        self.dt_w = nn.Parameter(torch.empty(E, Di, R, **factory).uniform_(-R ** -0.5, R ** -0.5))
        self.dt_b = nn.Parameter(torch.stack([init_dt_bias(Di, device=device) for _ in range(E)]))

    def _split(self, dbl: Tensor):
        return dbl.split([self.R, self.N, self.N], dim=-1)

    def selected(self, xc: Tensor, idx: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Streams of the chosen experts, tokens sorted by expert.

        xc (T, Di), idx (T, k) -> dt (T, k, Di) before bias, B and C (T, k, N).
        """
        T, k = idx.shape
        Di, R, N = xc.shape[-1], self.R, self.N
        flat = idx.reshape(-1)
        order = flat.argsort(stable=True)
        counts = torch.bincount(flat, minlength=self.x_w.shape[0]).tolist()
        tok = order // k
        out_dbl = xc.new_empty(T * k, R + 2 * N)
        out_dt = xc.new_empty(T * k, Di)
        start = 0
        for e, n in enumerate(counts):
            if n == 0:
                continue
            slots = order[start:start + n]
            dbl = xc[tok[start:start + n]] @ self.x_w[e].t()
            out_dbl[slots] = dbl
            out_dt[slots] = dbl[:, :R] @ self.dt_w[e].t()
            start += n
        _, B, C = self._split(out_dbl.view(T, k, -1))
        return out_dt.view(T, k, Di), B.contiguous(), C.contiguous()

    def gathered(self, xc: Tensor, idx: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Same result with static shapes (graph-capturable): each token gathers its experts' weights."""
        T, k = idx.shape
        x = xc.unsqueeze(1).expand(T, k, -1).reshape(T * k, 1, -1)
        dbl = torch.bmm(x, self.x_w[idx.reshape(-1)].transpose(1, 2))             # (T k, 1, R + 2N)
        dt = torch.bmm(dbl[..., :self.R], self.dt_w[idx.reshape(-1)].transpose(1, 2))
        _, B, C = self._split(dbl.view(T, k, -1))
        return dt.view(T, k, -1), B.contiguous(), C.contiguous()

    def every(self, xc: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Every expert on every token: xc (T, Di) -> dt (T, E, Di), B and C (T, E, N)."""
        E, P, Di = self.x_w.shape
        dbl = (xc @ self.x_w.reshape(E * P, Di).t()).view(-1, E, P)               # (T, E, R + 2N)
        dt = torch.bmm(dbl[..., :self.R].transpose(0, 1), self.dt_w.transpose(1, 2))  # (E, T, Di)
        _, B, C = self._split(dbl)
        return dt.transpose(0, 1).contiguous(), B.contiguous(), C.contiguous()
