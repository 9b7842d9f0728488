"""swimbench::gather_mm: the small-batch path of routed projections. Each token slot (token t's j-th
choice) goes through the (K, N) matrix of the expert it chose, read by index: no sort, no gather of
rows, no scatter back; the slots stay in token order (slot t k + j). The grouped GEMM behind the
sorted dispatch (swimbench/layers/dispatch.py) stays the path for many slots.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .._dispatch import pick
from .naive import gather_mm_naive


@torch.library.custom_op("swimbench::gather_mm", mutates_args=())
def gather_mm(x: Tensor, w: Tensor, idx: Tensor, capacity: int = 0, gelu: bool = False) -> Tensor:
    """Slots through their experts' matrices.

    Args:
        x:        (T, K) one row per token, or (T k, K) one row per slot; bf16, fp16 or fp32; unit last
                  stride (a column slice of a wider tensor is read in place).
        w:        (E, K, N) expert matrices, stored (in, out); x's dtype.
        idx:      (T, k) integer expert ids.
        capacity: when > 0, a slot is dropped (its row is zero) once `capacity` earlier slots, in token
                  order, chose the same expert: the sorted dispatch's capacity rule.
        gelu:     apply GELU (erf form) to the product.
    Returns:
        (T k, N) in x's dtype, accumulated in fp32.
    """
    return pick(gather_mm_naive, ".gather_mm.fused", "gather_mm_fused", x)(x, w, idx, capacity, gelu)


@gather_mm.register_fake
def _(x, w, idx, capacity=0, gelu=False):
    return x.new_empty(idx.numel(), w.shape[-1])
