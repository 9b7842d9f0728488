"""Routing Mamba (RoM): experts on the two halves of in_proj (conv and gate projections) and on
out_proj, one router per block on the block input whose top-k choice all three share; conv,
x_proj, dt_proj, A and D shared, so the scan is the dense one."""
from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from ..config import LayerConfig
from .dense import DenseMamba
from .dispatch import combine, dispatch
from .router import Router


class RoutingMamba(DenseMamba):
    routed_projections = True

    def __init__(self, cfg: LayerConfig, device=None, dtype=None):
        super().__init__(cfg, device, dtype)
        factory = {"device": device, "dtype": dtype}
        E, D, Di = cfg.experts, cfg.d_model, cfg.d_inner
        self.router = Router(D, E, cfg.top_k, cfg.routing, **factory)
        # (in, out) per expert: the layout the grouped GEMM reads. Columns [:Di] feed the conv, [Di:] z.
        self.in_w = nn.Parameter(torch.empty(E, D, 2 * Di, **factory).uniform_(-D ** -0.5, D ** -0.5))
        self.out_w = nn.Parameter(torch.empty(E, Di, D, **factory).uniform_(-Di ** -0.5, Di ** -0.5))

    def expert_parameters(self):
        """The stacks indexed by expert that tokens are dispatched to."""
        return [self.in_w, self.out_w]

    def project_in(self, x: Tensor):
        lead = x.shape[:-1]
        flat = x.reshape(-1, x.shape[-1])
        gates, idx = self.router(flat)
        route = dispatch(idx, self.cfg.experts)
        xz = combine(gates, route.scatter(route.mm(route.gather(flat), self.in_w)))   # (T, 2 Di)
        x_in, z = xz.view(*lead, -1).chunk(2, dim=-1)
        return x_in, z, (gates, route)

    def project_out(self, y: Tensor, ctx) -> Tensor:
        gates, route = ctx
        lead = y.shape[:-1]
        flat = y.reshape(-1, y.shape[-1])
        out = combine(gates, route.scatter(route.mm(route.gather(flat), self.out_w)))   # (T, D)
        return out.view(*lead, -1)
