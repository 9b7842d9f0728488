"""Swimba: experts produce the SSM parameters, the router mixes them, the recurrence runs once."""
from __future__ import annotations

import torch
import torch.nn as nn

from ..kernels import swimba_state_update
from ..config import LayerConfig
from .base import TokenMixer, init_A_log
from .experts import ExpertProjections
from .router import Router


class Swimba(TokenMixer):
    def __init__(self, cfg: LayerConfig, device=None, dtype=None):
        super().__init__(cfg, device, dtype)
        Di, N = cfg.d_inner, cfg.d_state
        self.router = Router(Di, cfg.experts, cfg.top_k, cfg.routing, device=device, dtype=dtype)
        self.experts = ExpertProjections(cfg.experts, Di, cfg.dt_rank, N, device, dtype)
        self.A_log = nn.Parameter(init_A_log(Di, N, device))
        self.D = nn.Parameter(torch.ones(Di, device=device))

    def expert_parameters(self):
        """The stacks indexed by expert that tokens are dispatched to."""
        return list(self.experts.parameters())

    def core(self, xc, z, return_state):
        # Mix the chosen experts' streams once, straight from the grouped GEMMs' expert-ordered rows,
        # then run the dense scan: the recurrence costs what dense's does (docs/kernels.md).
        b, l, Di = xc.shape
        T = b * l
        gates, idx = (t.reshape(T, -1) for t in self.router(xc))
        dt, B, C, pos = self.experts.routed(xc.reshape(T, Di), idx)
        A, D, bias = self.ssm_constants(self.A_log, self.D, self.experts.dt_b)
        delta, bc = torch.ops.swimbench.swimba_mix(dt, B, C, pos, gates, idx, bias, True)
        bc = bc.view(b, l, 2, -1)
        return torch.ops.swimbench.selective_scan(xc, delta.view(b, l, Di), A, bc[:, :, 0], bc[:, :, 1],
                                                  D, z, None, False, return_state)

    def core_step(self, xc, z, ssm_state):
        gates, idx = self.router(xc)
        dt, B, C = self.experts.selected(xc, idx)
        A, D, bias = self.ssm_constants(self.A_log, self.D, self.experts.dt_b)
        return swimba_state_update(ssm_state, xc, dt, A, B, C, gates, idx, D, z, bias, True)
