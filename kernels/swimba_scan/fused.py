"""Triton Swimba scan, two ways over the shared kernel (`.._ssm`):

- mix-then-scan (the default): `swimba_mix` writes the mixed delta, B and C once, then the dense scan
  runs on them: the recurrence costs what a dense layer's does, plus one pass over the k streams.
- in-register: the scan mixes the k streams itself every step. Triton keeps a token's B and C
  replicated in every thread, so each thread widens and mixes k N values per token for the same
  result; on the H100 that made the scan 2.2x dense (docs/performance.md). Kept for the kernel
  benchmark's comparison; decode steps (one token) mix in registers, where there is nothing to share.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from .._ssm import ssm_scan
from ..selective_scan.fused import _row, selective_scan_fused
from ..swimba_mix.fused import swimba_mix_fused

MODES = ("mix-then-scan", "in-register")


def swimba_scan_fused(u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, gates: Tensor, idx: Tensor,
                      D: Optional[Tensor] = None, z: Optional[Tensor] = None,
                      delta_bias: Optional[Tensor] = None, delta_softplus: bool = True,
                      return_last_state: bool = False, mode: str = MODES[0]) -> tuple[Tensor, Optional[Tensor]]:
    """Swimba scan, token-major. Shapes as in `swimbench.kernels.swimba_scan`; `mode` one of MODES."""
    if mode == "in-register":
        y, h = ssm_scan(u, dt, A.unsqueeze(0), B, C, gates, idx, _row(D), z, delta_bias, delta_softplus,
                        return_last_state, mix=True)
        return y, (h.squeeze(1) if h is not None else None)
    if mode != "mix-then-scan":
        raise ValueError(f"mode must be one of {MODES}")
    b, l, k, d = dt.shape
    n = B.shape[-1]
    T = b * l
    pos = torch.arange(T * k, device=dt.device, dtype=torch.int32).view(T, k)
    delta, bc = swimba_mix_fused(dt.reshape(T * k, d), B.reshape(T * k, n), C.reshape(T * k, n), pos,
                                 gates.reshape(T, k), idx.reshape(T, k), delta_bias, delta_softplus)
    bc = bc.view(b, l, 2, n)
    return selective_scan_fused(u, delta.view(b, l, d), A, bc[:, :, 0], bc[:, :, 1], D, z, None, False,
                                return_last_state)
