"""Dense Mamba-1: the block of mamba_ssm's Mamba (mamba_simple), whose weights load into it."""
from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from ..kernels import selective_state_update
from ..config import LayerConfig
from .base import TokenMixer, init_A_log, init_dt_bias


class DenseMamba(TokenMixer):
    def __init__(self, cfg: LayerConfig, device=None, dtype=None):
        super().__init__(cfg, device, dtype)
        factory = {"device": device, "dtype": dtype}
        Di, N, R = cfg.d_inner, cfg.d_state, cfg.dt_rank
        self.x_proj = nn.Linear(Di, R + 2 * N, bias=False, **factory)
        self.dt_proj = nn.Linear(R, Di, bias=True, **factory)
        nn.init.uniform_(self.dt_proj.weight, -R ** -0.5, R ** -0.5)
        with torch.no_grad():
            self.dt_proj.bias.copy_(init_dt_bias(Di, device=device))
        self.A_log = nn.Parameter(init_A_log(Di, N, device))
        self.D = nn.Parameter(torch.ones(Di, device=device))

    def _streams(self, xc: Tensor):
        R, N = self.cfg.dt_rank, self.cfg.d_state
        dt, B, C = self.x_proj(xc).split([R, N, N], dim=-1)
        # B and C stay views of x_proj's output: the scan reads them in place
        return nn.functional.linear(dt, self.dt_proj.weight), B, C

    def core(self, xc, z, return_state):
        dt, B, C = self._streams(xc)
        A, D, bias = self.ssm_constants(self.A_log, self.D, self.dt_proj.bias)
        return torch.ops.swimbench.selective_scan(xc, dt, A, B, C, D, z, bias, True, return_state)

    def core_step(self, xc, z, ssm_state):
        dt, B, C = self._streams(xc)
        A, D, bias = self.ssm_constants(self.A_log, self.D, self.dt_proj.bias)
        return selective_state_update(ssm_state, xc, dt, A, B, C, D, z, bias, True)

    @torch.no_grad()
    def load_mamba(self, m: nn.Module) -> "DenseMamba":
        """Copy the weights of a mamba_ssm Mamba module (same sizes) into this layer."""
        for name in ("in_proj", "conv1d", "x_proj", "dt_proj", "out_proj"):
            getattr(self, name).load_state_dict(getattr(m, name).state_dict())
        self.A_log.copy_(m.A_log)
        self.D.copy_(m.D)
        return self
