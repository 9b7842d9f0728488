"""Triton decode steps: the shared kernel (`.._ssm`) over one token, in place on the cache.

Each launches one kernel and allocates only y, with no host synchronisation: CUDA-graph capturable.
"""
from __future__ import annotations

from typing import Optional

from torch import Tensor

from .._ssm import ssm_step
from ..selective_scan.fused import _row


def selective_state_update_fused(state: Tensor, u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor,
                                 D: Optional[Tensor] = None, z: Optional[Tensor] = None,
                                 dt_bias: Optional[Tensor] = None, dt_softplus: bool = True) -> Tensor:
    """Dense step. state (b, d, n) float32, updated in place; returns y (b, d)."""
    return ssm_step(state.unsqueeze(1), u, dt.unsqueeze(1), A.unsqueeze(0), B.unsqueeze(1), C.unsqueeze(1),
                    None, None, _row(D), z, _row(dt_bias), dt_softplus, mix=False)


def swimba_state_update_fused(state: Tensor, u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor,
                              gates: Tensor, idx: Tensor, D: Optional[Tensor] = None,
                              z: Optional[Tensor] = None, dt_bias: Optional[Tensor] = None,
                              dt_softplus: bool = True) -> Tensor:
    """Swimba step. state (b, d, n); dt (b, k, d); B, C (b, k, n); gates, idx (b, k); returns y (b, d)."""
    return ssm_step(state.unsqueeze(1), u, dt, A.unsqueeze(0), B, C, gates, idx, _row(D), z, dt_bias,
                    dt_softplus, mix=True)


def separated_state_update_fused(state: Tensor, u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor,
                                 gates: Tensor, D: Optional[Tensor] = None, z: Optional[Tensor] = None,
                                 dt_bias: Optional[Tensor] = None, dt_softplus: bool = True) -> Tensor:
    """Separated step. state (b, E, d, n); dt (b, E, d); B, C (b, E, n); gates (b, E); returns y (b, d)."""
    return ssm_step(state, u, dt, A, B, C, gates, None, D, z, dt_bias, dt_softplus, mix=False)
