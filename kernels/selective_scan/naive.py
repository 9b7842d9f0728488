"""Pure-PyTorch reference of the selective scan: the ground truth every kernel is tested against.

Computed in float32 with a sequential loop over time, one step per token, so it is slow but
obviously right. The same recurrence serves all three designs: a dense layer is one group of
channels, a separated MoE-SSM is E groups, each with its own A, delta, B and C.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor


def prepare_delta(dt: Tensor, bias: Optional[Tensor], softplus: bool) -> Tensor:
    """delta = softplus(dt + bias) in float32 (either step optional)."""
    delta = dt.float()
    if bias is not None:
        delta = delta + bias.float()
    return F.softplus(delta) if softplus else delta


def recurrence(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
               h0: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    """The grouped linear recurrence, float32.

    u, delta: (b, l, g, d); A: (g, d, n); B, C: (b, l, g, n); h0: (b, g, d, n) or None.
    h_t = exp(delta_t A) h_{t-1} + delta_t u_t B_t;  y_t = <C_t, h_t>.
    Returns y (b, l, g, d) and the final state h (b, g, d, n).
    """
    b, l, g, d = u.shape
    n = A.shape[-1]
    u, delta, A, B, C = u.float(), delta.float(), A.float(), B.float(), C.float()
    h = u.new_zeros(b, g, d, n) if h0 is None else h0.float().clone()
    ys = []
    for t in range(l):
        dt = delta[:, t].unsqueeze(-1)                                    # (b, g, d, 1)
        h = torch.exp(dt * A) * h + (dt * u[:, t].unsqueeze(-1)) * B[:, t].unsqueeze(-2)
        ys.append(torch.einsum("bgdn,bgn->bgd", h, C[:, t]))
    y = torch.stack(ys, dim=1) if ys else u.new_zeros(b, 0, g, d)
    return y, h


def selective_scan_naive(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                         D: Optional[Tensor] = None, z: Optional[Tensor] = None,
                         delta_bias: Optional[Tensor] = None, delta_softplus: bool = False,
                         return_last_state: bool = False) -> tuple[Tensor, Optional[Tensor]]:
    """Dense Mamba-1 scan, token-major. Shapes as in `swimbench.kernels.selective_scan`."""
    dl = prepare_delta(delta, delta_bias, delta_softplus)
    y, h = recurrence(u.unsqueeze(2), dl.unsqueeze(2), A.unsqueeze(0), B.unsqueeze(2), C.unsqueeze(2))
    y = y.squeeze(2)
    if D is not None:
        y = y + D.float() * u.float()
    if z is not None:
        y = y * F.silu(z.float())
    return y.to(u.dtype), (h.squeeze(1) if return_last_state else None)
