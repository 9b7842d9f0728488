"""Separated MoE-SSM: E complete selective-SSM cores, every expert's state advancing on every token."""
from __future__ import annotations

import torch
import torch.nn as nn

from ..kernels import separated_state_update
from ..config import LayerConfig
from .base import TokenMixer, init_A_log
from .experts import ExpertProjections
from .router import Router


class Separated(TokenMixer):
    def __init__(self, cfg: LayerConfig, device=None, dtype=None):
        super().__init__(cfg, device, dtype)
        E, Di, N = cfg.experts, cfg.d_inner, cfg.d_state
        self.router = Router(Di, E, cfg.top_k, cfg.routing, device=device, dtype=dtype)
        self.experts = ExpertProjections(E, Di, cfg.dt_rank, N, device, dtype)
        self.A_log = nn.Parameter(init_A_log(Di, N, device).repeat(E, 1, 1))
        self.D = nn.Parameter(torch.ones(E, Di, device=device))

    def ssm_state_shape(self, batch):
        return (batch, self.cfg.experts, self.cfg.d_inner, self.cfg.d_state)

    def core(self, xc, z, return_state):
        b, l, Di = xc.shape
        E = self.cfg.experts
        gates = self.router.dense_gates(xc)
        dt, B, C = self.experts.every(xc.reshape(b * l, Di))
        A, D, bias = self.ssm_constants(self.A_log, self.D, self.experts.dt_b)
        return torch.ops.swimbench.separated_scan(
            xc, dt.view(b, l, E, Di), A, B.view(b, l, E, -1), C.view(b, l, E, -1), gates,
            D, z, bias, True, return_state)

    def core_step(self, xc, z, ssm_state):
        gates = self.router.dense_gates(xc)
        dt, B, C = self.experts.every(xc)
        A, D, bias = self.ssm_constants(self.A_log, self.D, self.experts.dt_b)
        return separated_state_update(ssm_state, xc, dt, A, B, C, gates, D, z, bias, True)
