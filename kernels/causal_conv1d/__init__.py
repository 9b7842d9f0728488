"""swimbench::causal_conv1d and swimbench::causal_conv1d_update: the depthwise causal conv of every
token mixer, with its SiLU, on token-major tensors (prefill) and on the decode cache (one token)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from .._dispatch import pick
from .naive import causal_conv1d_naive, causal_conv1d_update_naive


@torch.library.custom_op("swimbench::causal_conv1d", mutates_args=())
def causal_conv1d(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None, silu: bool = True) -> Tensor:
    """Causal depthwise conv over a sequence, token-major.

    Args:
        x:      (b, l, d) bf16, fp16 or fp32; any strides with unit channel stride (a view of
                in_proj's output is read in place).
        weight: (d, K) or (d, 1, K), the conv1d weight; bias: (d,) or None.
        silu:   apply SiLU to the output.
    Returns:
        y (b, l, d) contiguous in x's dtype; y_t depends on x_{t-K+1..t}, zeros before the first token.
    """
    return pick(causal_conv1d_naive, ".causal_conv1d.fused", "causal_conv1d_fused", x)(
        x, weight.reshape(weight.shape[0], -1), bias, silu)


@causal_conv1d.register_fake
def _(x, weight, bias=None, silu=True):
    return x.new_empty(x.shape)


@torch.library.custom_op("swimbench::causal_conv1d_update", mutates_args=("conv_state",))
def causal_conv1d_update(x: Tensor, conv_state: Tensor, weight: Tensor, bias: Optional[Tensor] = None,
                         silu: bool = True) -> Tensor:
    """One decode token: x (b, d) (unit channel stride); conv_state (b, d, K), the last K inputs oldest
    first, shifted in place to end with x; weight (d, K) or (d, 1, K); bias (d,) or None.
    Returns y (b, d) in x's dtype. No allocation but y and no host sync: capturable in a CUDA graph."""
    return pick(causal_conv1d_update_naive, ".causal_conv1d.fused", "causal_conv1d_update_fused", x)(
        x, conv_state, weight.reshape(weight.shape[0], -1), bias, silu)


@causal_conv1d_update.register_fake
def _(x, conv_state, weight, bias=None, silu=True):
    return x.new_empty(x.shape)
