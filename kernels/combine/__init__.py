"""swimbench::combine: the gate-weighted sum of the k expert outputs of each token.

An op of its own so that the FLOP counters can count it (as a batched product it ran on a
cuBLAS batched GEMV that took 2.6 ms for (8192, 1, 1) x (8192, 1, 8192) on the H100, 25x its
memory floor, see docs/performance.md); one element-wise pass in PyTorch is the implementation on
every device, fused by nothing further.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .naive import combine_naive


@torch.library.custom_op("swimbench::combine", mutates_args=())
def combine(gates: Tensor, values: Tensor) -> Tensor:
    """gates (T, k) fp32, values (T, k, N) bf16/fp16/fp32 -> (T, N) in values' dtype:
    sum_j gates[:, j] * values[:, j], accumulated in fp32."""
    return combine_naive(gates, values)


@combine.register_fake
def _(gates, values):
    return values.new_empty(values.shape[0], values.shape[2])
