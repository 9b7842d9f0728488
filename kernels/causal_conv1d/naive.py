"""Pure-PyTorch reference of the causal depthwise conv (+ SiLU), prefill and decode step."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor


def causal_conv1d_naive(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None, silu: bool = True) -> Tensor:
    """x (b, l, d) token-major, weight (d, K), bias (d,) -> (b, l, d) in x's dtype, computed in fp32:
    y_t = bias + sum_k weight[:, k] x_{t-K+1+k}, zeros before the first token."""
    d, K = weight.shape
    xt = F.pad(x.float().transpose(1, 2), (K - 1, 0))
    y = F.conv1d(xt, weight.float().unsqueeze(1), bias.float() if bias is not None else None, groups=d)
    y = F.silu(y) if silu else y
    return y.transpose(1, 2).to(x.dtype)


def causal_conv1d_update_naive(x: Tensor, conv_state: Tensor, weight: Tensor, bias: Optional[Tensor] = None,
                               silu: bool = True) -> Tensor:
    """One token: x (b, d); conv_state (b, d, K), the last K inputs, oldest first, shifted in place
    to end with x. Returns y (b, d) in x's dtype."""
    conv_state.copy_(torch.cat([conv_state[..., 1:], x.unsqueeze(-1).to(conv_state.dtype)], -1))
    y = (conv_state.float() * weight.float()).sum(-1)
    if bias is not None:
        y = y + bias.float()
    return (F.silu(y) if silu else y).to(x.dtype)
