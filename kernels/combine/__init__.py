"""swimbench::combine: the gate-weighted sum of the k expert outputs of each token.

An op of its own, with a Triton kernel, because the obvious forms are slow on the GPU: as a batched
product it ran on a cuBLAS batched GEMV (2.6 ms for (8192, 1, 1) x (8192, 1, 8192) on the H100, 25x
its memory floor), and element-wise in fp32 it materialises k upcast copies (docs/performance.md).
Being an op also lets the FLOP counters count it.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .._dispatch import pick
from .naive import combine_naive


@torch.library.custom_op("swimbench::combine", mutates_args=())
def combine(gates: Tensor, values: Tensor) -> Tensor:
    """gates (T, k) fp32, values (T, k, N) bf16/fp16/fp32 -> (T, N) in values' dtype:
    sum_j gates[:, j] * values[:, j], accumulated in fp32."""
    return pick(combine_naive, ".combine.fused", "combine_fused", values)(gates, values)


@combine.register_fake
def _(gates, values):
    return values.new_empty(values.shape[0], values.shape[2])
