"""Pure-PyTorch reference of Swimba's parameter-space mixing, reading expert streams by row."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ..swimba_scan.naive import mix_streams


def swimba_mix_naive(dt: Tensor, B: Tensor, C: Tensor, pos: Tensor, gates: Tensor, idx: Tensor,
                     delta_bias: Optional[Tensor] = None, delta_softplus: bool = True) -> tuple[Tensor, Tensor]:
    """Shapes as in `swimbench.kernels.swimba_mix`; mixed in fp32; all three returned in dt's dtype."""
    rows = pos.long()
    delta, Bm, Cm = mix_streams(dt[rows], B[rows], C[rows], gates, idx, delta_bias, delta_softplus)
    return delta.to(dt.dtype), torch.stack([Bm, Cm], -2).to(dt.dtype)
