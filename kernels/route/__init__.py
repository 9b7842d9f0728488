"""swimbench::route: a router's whole decision in one op, from its input to (gates, expert ids).

The logits (one product against the (E, K) router weight, rounded to x's dtype as a Linear layer's
output is), their softmax, the choice (top k, or a forced pattern for benchmarks) and the
renormalised gates, which unfused take five to eight launches.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .._dispatch import pick
from .naive import MODES, route_naive


@torch.library.custom_op("swimbench::route", mutates_args=())
def route(x: Tensor, weight: Tensor, k: int, mode: str) -> tuple[Tensor, Tensor]:
    """Route tokens to experts.

    Args:
        x:      (T, K) bf16, fp16 or fp32, unit last stride.
        weight: (E, K) the router's Linear weight, x's dtype.
        k:      experts per token, 1 <= k <= E.
        mode:   "learned" (top k of the softmax), "balanced" or "skewed" (forced choices, see naive.py);
                forced modes still compute the logits and take the chosen experts' softmax weights.
    Returns:
        gates (T, k) fp32 summing to 1 over k, idx (T, k) int64 (learned: by descending weight).
    """
    if mode not in MODES:
        raise ValueError(f"route: mode must be one of {', '.join(MODES)}, got {mode!r}")
    return pick(route_naive, ".route.fused", "route_fused", x)(x, weight, k, mode)


@route.register_fake
def _(x, weight, k, mode):
    T = x.shape[0]
    return x.new_empty(T, k, dtype=torch.float32), x.new_empty(T, k, dtype=torch.int64)
