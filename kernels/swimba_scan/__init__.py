"""swimbench::swimba_scan: the Swimba scan, expert streams mixed in parameter space, one recurrence."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from .._dispatch import pick
from .naive import swimba_scan_naive


@torch.library.custom_op("swimbench::swimba_scan", mutates_args=())
def _op(u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, gates: Tensor, idx: Tensor,
        D: Optional[Tensor], z: Optional[Tensor], delta_bias: Optional[Tensor], delta_softplus: bool,
        return_last_state: bool) -> tuple[Tensor, Tensor]:
    impl = pick(swimba_scan_naive, ".swimba_scan.fused", "swimba_scan_fused", u)
    y, h = impl(u, dt, A, B, C, gates, idx, D, z, delta_bias, delta_softplus, return_last_state)
    return y, (h if h is not None else u.new_empty(0, dtype=torch.float32))


@_op.register_fake
def _(u, dt, A, B, C, gates, idx, D, z, delta_bias, delta_softplus, return_last_state):
    b, _, d = u.shape
    h = u.new_empty((b, d, A.shape[-1]) if return_last_state else (0,), dtype=torch.float32)
    return torch.empty_like(u), h


def swimba_scan(u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, gates: Tensor, idx: Tensor,
                D: Optional[Tensor] = None, z: Optional[Tensor] = None,
                delta_bias: Optional[Tensor] = None, delta_softplus: bool = True,
                return_last_state: bool = False):
    """Swimba scan: mixes the k selected experts' streams per token, then runs one recurrence.

    delta_t = sum_j g_j softplus(dt_j + delta_bias[idx_j]); B_t, C_t = sum_j g_j B_j, sum_j g_j C_j.
    The mixed tensors are never materialised by the fused kernel.

    Args:
        u:     (b, l, d) bf16, fp16 or fp32.
        dt:    (b, l, k, d) same dtype; the selected experts' dt_proj outputs before bias.
        A:     (d, n) fp32, shared.
        B, C:  (b, l, k, n) same dtype as u; the selected experts' streams.
        gates: (b, l, k) fp32, convex weights (top-k renormalised).
        idx:   (b, l, k) int64 expert ids (they select each stream's delta bias).
        D:     (d,) fp32 or None; z: (b, l, d) or None.
        delta_bias: (E, d) fp32 or None.
    Returns:
        y (b, l, d) in u's dtype [, final state (b, d, n) fp32].
    """
    y, h = torch.ops.swimbench.swimba_scan(u, dt, A, B, C, gates, idx, D, z, delta_bias, delta_softplus,
                                           return_last_state)
    return (y, h) if return_last_state else y
