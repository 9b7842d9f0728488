"""swimbench::separated_scan: E selective SSMs, one trajectory each, outputs gated and summed."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from .._dispatch import pick
from .naive import separated_scan_naive


@torch.library.custom_op("swimbench::separated_scan", mutates_args=())
def _op(u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, gates: Tensor, D: Optional[Tensor],
        z: Optional[Tensor], delta_bias: Optional[Tensor], delta_softplus: bool,
        return_last_state: bool) -> tuple[Tensor, Tensor]:
    impl = pick(separated_scan_naive, ".separated_scan.fused", "separated_scan_fused", u)
    y, h = impl(u, dt, A, B, C, gates, D, z, delta_bias, delta_softplus, return_last_state)
    return y, (h if h is not None else u.new_empty(0, dtype=torch.float32))


@_op.register_fake
def _(u, dt, A, B, C, gates, D, z, delta_bias, delta_softplus, return_last_state):
    b, _, d = u.shape
    h = u.new_empty((b, *A.shape) if return_last_state else (0,), dtype=torch.float32)
    return torch.empty_like(u), h


def separated_scan(u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, gates: Tensor,
                   D: Optional[Tensor] = None, z: Optional[Tensor] = None,
                   delta_bias: Optional[Tensor] = None, delta_softplus: bool = True,
                   return_last_state: bool = False):
    """Separated MoE-SSM scan: every expert's state advances on every token.

    y_t = silu(z_t) * sum_e g_te (<C^e_t, h^e_t> + D_e u_t).

    Args:
        u:     (b, l, d) bf16, fp16 or fp32; shared input.
        dt:    (b, l, E, d) same dtype; each expert's dt_proj output before bias.
        A:     (E, d, n) fp32.
        B, C:  (b, l, E, n) same dtype as u.
        gates: (b, l, E) fp32, zero for experts not selected.
        D:     (E, d) fp32 or None; z: (b, l, d) or None; delta_bias: (E, d) fp32 or None.
    Returns:
        y (b, l, d) in u's dtype [, final states (b, E, d, n) fp32].
    """
    y, h = torch.ops.swimbench.separated_scan(u, dt, A, B, C, gates, D, z, delta_bias, delta_softplus,
                                              return_last_state)
    return (y, h) if return_last_state else y
