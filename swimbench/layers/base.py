"""What every token mixer shares: in_proj, the causal depthwise conv, the gate z and out_proj.

A variant supplies the SSM core between the conv and the gate: `core(xc, z)` for a sequence and
`core_step(xc_t, z_t, ssm_state)` for one token. Tensors are token-major, (batch, length, channels).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..config import LayerConfig
from ..kernels import causal_conv1d, causal_conv1d_update


@dataclass
class Cache:
    """Decode state of one layer: the last K conv inputs (b, Di, K) and the SSM state (fp32)."""
    conv: Tensor
    ssm: Tensor

    def zero_(self) -> "Cache":
        self.conv.zero_()
        self.ssm.zero_()
        return self


def init_dt_bias(d_inner: int, dt_min=1e-3, dt_max=1e-1, floor=1e-4, **factory) -> Tensor:
    """mamba-ssm's init: softplus(bias) log-uniform in [dt_min, dt_max]."""
    dt = torch.exp(torch.rand(d_inner, **factory) * (math.log(dt_max) - math.log(dt_min))
                   + math.log(dt_min)).clamp(min=floor)
    return dt + torch.log(-torch.expm1(-dt))


def init_A_log(d_inner: int, d_state: int, device=None) -> Tensor:
    """S4D-real init, kept in fp32: A = -(1..N) for every channel."""
    return torch.log(torch.arange(1, d_state + 1, dtype=torch.float32, device=device)).repeat(d_inner, 1)


class TokenMixer(nn.Module):
    # RoM routes its in and out projections through experts; every other design shares one each.
    routed_projections = False

    def __init__(self, cfg: LayerConfig, device=None, dtype=None):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.cfg = cfg
        D, Di, K = cfg.d_model, cfg.d_inner, cfg.d_conv
        if not self.routed_projections:
            self.in_proj = nn.Linear(D, 2 * Di, bias=False, **factory)
            self.out_proj = nn.Linear(Di, D, bias=False, **factory)
        self.conv1d = nn.Conv1d(Di, Di, K, groups=Di, bias=True, **factory)

    def frozen(self, name: str, fn, *params: Tensor) -> Tensor:
        """fn(*params), kept between calls while no parameter changes (their version counters and
        storage) and autograd is off: per-step constants such as A = -exp(A_log) and fp32 copies of D
        and the delta bias cost a launch each otherwise, a tenth of a decode step at batch 1. Made on
        the first call, which is a warm-up before any CUDA-graph capture."""
        if torch.is_grad_enabled():
            return fn(*params)
        key = tuple((p.data_ptr(), p._version) for p in params)
        cache = self.__dict__.setdefault("_frozen", {})
        hit = cache.get(name)
        if hit is None or hit[0] != key:
            hit = cache[name] = (key, fn(*params))
        return hit[1]

    def ssm_constants(self, A_log: Tensor, D: Tensor, dt_bias: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """A = -exp(A_log) and fp32 D and delta bias, as the scan and state-update ops take them."""
        return (self.frozen("A", lambda a: -torch.exp(a.float()), A_log),
                self.frozen("D", lambda d: d.float(), D), self.frozen("dt_bias", lambda b: b.float(), dt_bias))

    # --- what a variant provides -------------------------------------------------------------
    def core(self, xc: Tensor, z: Tensor, return_state: bool) -> tuple[Tensor, Optional[Tensor]]:
        raise NotImplementedError

    def core_step(self, xc: Tensor, z: Tensor, ssm_state: Tensor) -> Tensor:
        raise NotImplementedError

    def ssm_state_shape(self, batch: int) -> tuple[int, ...]:
        return (batch, self.cfg.d_inner, self.cfg.d_state)

    def project_in(self, x: Tensor):
        """x (..., D) -> x_in, z (..., Di) each, and whatever project_out needs to know."""
        x_in, z = self.in_proj(x).chunk(2, dim=-1)
        return x_in, z, None

    def project_out(self, y: Tensor, ctx) -> Tensor:
        return self.out_proj(y)

    # --- shared front and back ----------------------------------------------------------------
    def allocate_cache(self, batch: int) -> Cache:
        w = self.conv1d.weight
        conv = torch.zeros(batch, self.cfg.d_inner, self.cfg.d_conv, device=w.device, dtype=w.dtype)
        ssm = torch.zeros(self.ssm_state_shape(batch), device=w.device, dtype=torch.float32)
        return Cache(conv, ssm)

    def forward(self, x: Tensor, cache: Optional[Cache] = None) -> Tensor:
        """x (b, l, D) -> (b, l, D). With a cache, leaves in it the state after the last token.

        x_in and z stay views of in_proj's output: the conv and the scan read them in place, token-major,
        so the forward copies nothing between the projections and the scan."""
        K = self.cfg.d_conv
        x_in, z, ctx = self.project_in(x)
        if cache is not None:
            cache.conv.copy_(F.pad(x_in.transpose(1, 2), (K - x_in.shape[1], 0)))
        # one output per token: causal, zeros before the first
        xc = causal_conv1d(x_in, self.conv1d.weight, self.conv1d.bias, True)
        y, h = self.core(xc, z, return_state=cache is not None)
        if cache is not None:
            cache.ssm.copy_(h)
        return self.project_out(y, ctx)

    def step(self, x: Tensor, cache: Cache) -> Tensor:
        """One token: x (b, 1, D) -> (b, 1, D); updates the cache in place."""
        x_in, z, ctx = self.project_in(x[:, 0])
        xc = causal_conv1d_update(x_in, cache.conv, self.conv1d.weight, self.conv1d.bias, True)
        return self.project_out(self.core_step(xc, z, cache.ssm), ctx).unsqueeze(1)
