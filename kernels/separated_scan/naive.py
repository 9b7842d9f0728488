"""Pure-PyTorch reference of the separated MoE-SSM scan: E trajectories, gated and summed."""
from __future__ import annotations

from typing import Optional

import torch.nn.functional as F
from torch import Tensor

from ..selective_scan.naive import prepare_delta, recurrence


def separated_scan_naive(u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, gates: Tensor,
                         D: Optional[Tensor] = None, z: Optional[Tensor] = None,
                         delta_bias: Optional[Tensor] = None, delta_softplus: bool = True,
                         return_last_state: bool = False) -> tuple[Tensor, Optional[Tensor]]:
    """Separated scan, token-major. Shapes as in `swimbench.kernels.separated_scan`."""
    E = A.shape[0]
    delta = prepare_delta(dt, delta_bias, delta_softplus)                  # (b, l, E, d)
    ue = u.unsqueeze(2).expand(-1, -1, E, -1)
    y, h = recurrence(ue, delta, A, B, C)                                  # (b, l, E, d)
    if D is not None:
        y = y + D.float() * ue.float()
    y = (gates.float().unsqueeze(-1) * y).sum(2)
    if z is not None:
        y = y * F.silu(z.float())
    return y.to(u.dtype), (h if return_last_state else None)
