"""Pure-PyTorch reference of the Swimba scan: mix the k selected expert streams, then one recurrence."""
from __future__ import annotations

from typing import Optional

import torch.nn.functional as F
from torch import Tensor

from ..selective_scan.naive import prepare_delta, recurrence


def mix_streams(dt: Tensor, B: Tensor, C: Tensor, gates: Tensor, idx: Tensor,
                delta_bias: Optional[Tensor], delta_softplus: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Parameter-space mixing, float32.

    dt: (..., k, d); B, C: (..., k, n); gates: (..., k); idx: (..., k) expert ids; delta_bias: (E, d).
    delta = sum_j g_j softplus(dt_j + bias[idx_j]);  B = sum_j g_j B_j;  C = sum_j g_j C_j.
    """
    bias = delta_bias[idx] if delta_bias is not None else None          # (..., k, d)
    g = gates.float().unsqueeze(-1)
    delta = (g * prepare_delta(dt, bias, delta_softplus)).sum(-2)
    return delta, (g * B.float()).sum(-2), (g * C.float()).sum(-2)


def swimba_scan_naive(u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, gates: Tensor,
                      idx: Tensor, D: Optional[Tensor] = None, z: Optional[Tensor] = None,
                      delta_bias: Optional[Tensor] = None, delta_softplus: bool = True,
                      return_last_state: bool = False) -> tuple[Tensor, Optional[Tensor]]:
    """Swimba scan, token-major. Shapes as in `swimbench.kernels.swimba_scan`."""
    delta, Bm, Cm = mix_streams(dt, B, C, gates, idx, delta_bias, delta_softplus)
    y, h = recurrence(u.unsqueeze(2), delta.unsqueeze(2), A.unsqueeze(0), Bm.unsqueeze(2), Cm.unsqueeze(2))
    y = y.squeeze(2)
    if D is not None:
        y = y + D.float() * u.float()
    if z is not None:
        y = y * F.silu(z.float())
    return y.to(u.dtype), (h.squeeze(1) if return_last_state else None)
