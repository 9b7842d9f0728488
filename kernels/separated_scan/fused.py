"""Triton separated MoE-SSM scan: the shared kernel (`.._ssm`) with E trajectories in one launch,
gated and summed inside each program."""
from __future__ import annotations

from typing import Optional

from torch import Tensor

from .._ssm import ssm_scan


def separated_scan_fused(u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, gates: Tensor,
                         D: Optional[Tensor] = None, z: Optional[Tensor] = None,
                         delta_bias: Optional[Tensor] = None, delta_softplus: bool = True,
                         return_last_state: bool = False) -> tuple[Tensor, Optional[Tensor]]:
    """Separated scan, token-major. Shapes as in `swimbench.kernels.separated_scan`."""
    return ssm_scan(u, dt, A, B, C, gates, None, D, z, delta_bias, delta_softplus, return_last_state, mix=False)
