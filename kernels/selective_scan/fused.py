"""Triton dense selective scan: the shared kernel (`.._ssm`) with one stream and one trajectory."""
from __future__ import annotations

from typing import Optional

from torch import Tensor

from .._ssm import ssm_scan


def _row(t: Optional[Tensor]) -> Optional[Tensor]:
    return t.unsqueeze(0) if t is not None else None


def selective_scan_fused(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                         D: Optional[Tensor] = None, z: Optional[Tensor] = None,
                         delta_bias: Optional[Tensor] = None, delta_softplus: bool = False,
                         return_last_state: bool = False) -> tuple[Tensor, Optional[Tensor]]:
    """Dense Mamba-1 scan, token-major. Shapes as in `swimbench.kernels.selective_scan`."""
    y, h = ssm_scan(u, delta.unsqueeze(2), A.unsqueeze(0), B.unsqueeze(2), C.unsqueeze(2), None, None,
                    _row(D), z, _row(delta_bias), delta_softplus, return_last_state, mix=False)
    return y, (h.squeeze(1) if h is not None else None)
