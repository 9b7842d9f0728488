"""Triton Swimba scan: the shared kernel (`.._ssm`) mixing k streams in registers, one trajectory."""
from __future__ import annotations

from typing import Optional

from torch import Tensor

from .._ssm import ssm_scan
from ..selective_scan.fused import _row


def swimba_scan_fused(u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, gates: Tensor, idx: Tensor,
                      D: Optional[Tensor] = None, z: Optional[Tensor] = None,
                      delta_bias: Optional[Tensor] = None, delta_softplus: bool = True,
                      return_last_state: bool = False) -> tuple[Tensor, Optional[Tensor]]:
    """Swimba scan, token-major; the mixed delta, B and C never reach memory. Shapes as in
    `swimbench.kernels.swimba_scan`."""
    y, h = ssm_scan(u, dt, A.unsqueeze(0), B, C, gates, idx, _row(D), z, delta_bias, delta_softplus,
                    return_last_state, mix=True)
    return y, (h.squeeze(1) if h is not None else None)
