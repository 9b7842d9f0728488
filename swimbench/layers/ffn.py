"""Switch feed-forward layer: E expert FFNs (D -> d_ff -> D, GELU), top-k routing (top-1 by
default, as in Switch), a capacity per expert; slots past it are dropped and the token passes
through on the residual. E = 1 is a plain dense FFN."""
from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from .dispatch import combine, dispatch
from .router import Router


class SwitchFFN(nn.Module):
    def __init__(self, d_model: int, d_ff: int, experts: int, top_k: int, capacity_factor: float,
                 routing: str = "learned", device=None, dtype=None):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.experts, self.capacity_factor = experts, capacity_factor
        self.router = Router(d_model, experts, top_k, routing, **factory)
        self.w1 = nn.Parameter(torch.empty(experts, d_model, d_ff, **factory).uniform_(-d_model ** -0.5,
                                                                                        d_model ** -0.5))
        self.w2 = nn.Parameter(torch.empty(experts, d_ff, d_model, **factory).uniform_(-d_ff ** -0.5,
                                                                                        d_ff ** -0.5))

    def forward(self, h: Tensor) -> Tensor:
        """h (..., D) -> (..., D); zero for a token whose every slot was dropped."""
        lead = h.shape[:-1]
        flat = h.reshape(-1, h.shape[-1])
        gates, idx = self.router(flat)
        cf = self.capacity_factor if self.experts > 1 else None
        route = dispatch(idx, self.experts, cf)
        mid = route.mm(route.gather(flat), self.w1, gelu=True)
        return combine(gates, route.scatter(route.mm(mid, self.w2))).view(*lead, -1)
