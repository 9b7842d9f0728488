"""Triton kernel of swimbench::combine: one pass, the k expert rows of a token read once, the
weighted sum kept in fp32 registers and written once (the floor is (k + 1) x N elements per token)."""
from __future__ import annotations

from typing import Optional

import triton
import triton.language as tl
from torch import Tensor


@triton.jit
def _combine_kernel(p_g, p_v, p_o, K, N, s_vt, s_vk, BN: tl.constexpr):
    i_t, i_n = tl.program_id(0), tl.program_id(1)
    o_n = i_n * BN + tl.arange(0, BN)
    m_n = o_n < N
    b_acc = tl.zeros([BN], dtype=tl.float32)
    for j in range(K):
        b_g = tl.load(p_g + i_t * K + j)
        b_v = tl.load(p_v + i_t * s_vt + j * s_vk + o_n, mask=m_n, other=0).to(tl.float32)
        b_acc += b_g * b_v
    tl.store(p_o + i_t.to(tl.int64) * N + o_n, b_acc.to(p_o.dtype.element_ty), mask=m_n)


def combine_fused(gates: Tensor, values: Tensor, out: Optional[Tensor] = None) -> Tensor:
    """gates (T, k) fp32, values (T, k, N) with unit stride on N -> out (T, N) in values' dtype."""
    T, k, N = values.shape
    gates = gates.float().contiguous()
    if values.stride(-1) != 1:
        values = values.contiguous()
    if out is None:
        out = values.new_empty(T, N)
    BN = min(1024, triton.next_power_of_2(N))
    _combine_kernel[(T, triton.cdiv(N, BN))](gates, values, out, k, N, values.stride(0), values.stride(1),
                                             BN=BN, num_warps=4)
    return out
