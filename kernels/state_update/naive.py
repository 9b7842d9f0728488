"""Pure-PyTorch references of the decode step (one token), in place on the SSM state.

Each is one step of the same recurrence as the scans, so decode reproduces prefill by construction
of the references; the kernels are tested against these.
"""
from __future__ import annotations

from typing import Optional

import torch.nn.functional as F
from torch import Tensor

from ..selective_scan.naive import prepare_delta, recurrence
from ..swimba_scan.naive import mix_streams


def _finish(y: Tensor, u: Tensor, D: Optional[Tensor], z: Optional[Tensor]) -> Tensor:
    if D is not None:
        y = y + D.float() * u.float()
    if z is not None:
        y = y * F.silu(z.float())
    return y.to(u.dtype)


def selective_state_update_naive(state, u, dt, A, B, C, D=None, z=None, dt_bias=None, dt_softplus=True):
    """Dense step. state (b, d, n) float32, updated in place; returns y (b, d)."""
    delta = prepare_delta(dt, dt_bias, dt_softplus)
    y, h = recurrence(u[:, None, None], delta[:, None, None], A[None], B[:, None, None], C[:, None, None],
                      h0=state[:, None])
    state.copy_(h[:, 0])
    return _finish(y[:, 0, 0], u, D, z)


def swimba_state_update_naive(state, u, dt, A, B, C, gates, idx, D=None, z=None, dt_bias=None,
                              dt_softplus=True):
    """Swimba step. state (b, d, n); dt (b, k, d); B, C (b, k, n); gates, idx (b, k); returns y (b, d)."""
    delta, Bm, Cm = mix_streams(dt, B, C, gates, idx, dt_bias, dt_softplus)
    y, h = recurrence(u[:, None, None], delta[:, None, None], A[None], Bm[:, None, None], Cm[:, None, None],
                      h0=state[:, None])
    state.copy_(h[:, 0])
    return _finish(y[:, 0, 0], u, D, z)


def separated_state_update_naive(state, u, dt, A, B, C, gates, D=None, z=None, dt_bias=None,
                                 dt_softplus=True):
    """Separated step. state (b, E, d, n); dt (b, E, d); B, C (b, E, n); gates (b, E); returns y (b, d)."""
    E = A.shape[0]
    delta = prepare_delta(dt, dt_bias, dt_softplus)
    ue = u[:, None].expand(-1, E, -1)
    y, h = recurrence(ue[:, None], delta[:, None], A, B[:, None], C[:, None], h0=state)
    state.copy_(h)
    y = y[:, 0]
    if D is not None:
        y = y + D.float() * ue.float()
    y = (gates.float().unsqueeze(-1) * y).sum(1)
    return _finish(y, u, None, z)
