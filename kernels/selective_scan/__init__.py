"""swimbench::selective_scan: the dense Mamba-1 scan (prefill)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from .._dispatch import pick
from .naive import selective_scan_naive


@torch.library.custom_op("swimbench::selective_scan", mutates_args=())
def _op(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Optional[Tensor],
        z: Optional[Tensor], delta_bias: Optional[Tensor], delta_softplus: bool,
        return_last_state: bool) -> tuple[Tensor, Tensor]:
    impl = pick(selective_scan_naive, ".selective_scan.fused", "selective_scan_fused", u)
    y, h = impl(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    return y, (h if h is not None else u.new_empty(0, dtype=torch.float32))


@_op.register_fake
def _(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state):
    b, _, d = u.shape
    h = u.new_empty((b, d, A.shape[-1]) if return_last_state else (0,), dtype=torch.float32)
    return torch.empty_like(u), h


def selective_scan(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                   D: Optional[Tensor] = None, z: Optional[Tensor] = None,
                   delta_bias: Optional[Tensor] = None, delta_softplus: bool = False,
                   return_last_state: bool = False):
    """Dense selective scan over a whole sequence, token-major.

    Args:
        u:     (b, l, d) bf16, fp16 or fp32; the conv output xc.
        delta: (b, l, d) same dtype; dt_proj output before its bias.
        A:     (d, n) fp32; -exp(A_log).
        B, C:  (b, l, n) same dtype as u.
        D:     (d,) fp32 or None; skip.
        z:     (b, l, d) or None; the output is gated by silu(z).
        delta_bias: (d,) fp32 or None; delta_softplus: apply softplus after the bias.
    Returns:
        y (b, l, d) in u's dtype, and the final state (b, d, n) fp32 if return_last_state
        (it seeds decode), else only y.
    """
    y, h = torch.ops.swimbench.selective_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus,
                                              return_last_state)
    return (y, h) if return_last_state else y
