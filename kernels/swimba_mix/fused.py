"""Triton Swimba mixing: each token's k expert streams read once by row (straight from the grouped
GEMM's expert-ordered output, so the layer scatters nothing back), mixed in fp32, written once.

One program per (BT tokens, BD channels): delta for its channels; the programs of the first channel
block also mix B and C (n values per token, negligible next to delta's d). The dense scan then reads
delta, B and C like any dense layer's: the mixing costs one pass over the streams, not a per-thread
replica of B and C's mix in every step of the recurrence (docs/performance.md).
"""
from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl
from torch import Tensor

from .._dispatch import interpreting
from .._ssm import _align, _softplus

# Tile shapes tried once per (d, k, n) on the GPU; the interpreter takes the first.
_CONFIGS = [triton.Config(dict(BT=bt, BD=bd), num_warps=w)
            for bt, bd, w in ((16, 256, 4), (32, 128, 4), (64, 128, 8), (32, 256, 8), (8, 512, 4), (128, 64, 8))]


@triton.autotune(configs=_CONFIGS[:1] if interpreting() else _CONFIGS, key=["DI", "K", "N"])
@triton.jit
def _mix_kernel(p_dt, p_B, p_C, p_pos, p_g, p_i, p_bias, p_delta, p_bc, T, DI, s_dt, s_B, s_C,
                N: tl.constexpr, NP: tl.constexpr, K: tl.constexpr, HAS_BIAS: tl.constexpr,
                SOFTPLUS: tl.constexpr, AL: tl.constexpr, BT: tl.constexpr, BD: tl.constexpr):
    i_t, i_d = tl.program_id(0), tl.program_id(1)
    o_t = (i_t * BT + tl.arange(0, BT)).to(tl.int64)
    o_d = i_d * BD + tl.arange(0, BD)
    o_n = tl.arange(0, NP)
    m_t = o_t < T
    m_td = m_t[:, None] & tl.max_constancy(o_d < DI, AL)[None, :]      # see _conv_kernel
    m_tn = m_t[:, None] & (o_n < N)[None, :]
    b_delta = tl.zeros([BT, BD], dtype=tl.float32)
    b_B = tl.zeros([BT, NP], dtype=tl.float32)
    b_C = tl.zeros([BT, NP], dtype=tl.float32)
    for j in tl.static_range(K):
        b_r = tl.load(p_pos + o_t * K + j, mask=m_t, other=0).to(tl.int64)
        b_g = tl.load(p_g + o_t * K + j, mask=m_t, other=0.)
        b_x = tl.load(p_dt + tl.multiple_of(b_r * s_dt, AL)[:, None] + o_d[None, :], mask=m_td, other=0.)
        b_x = b_x.to(tl.float32)
        if HAS_BIAS:
            b_e = tl.load(p_i + o_t * K + j, mask=m_t, other=0).to(tl.int64)
            b_x += tl.load(p_bias + tl.multiple_of(b_e * DI, AL)[:, None] + o_d[None, :], mask=m_td, other=0.)
        if SOFTPLUS:
            b_x = _softplus(b_x)
        b_delta += b_g[:, None] * b_x
        if i_d == 0:
            b_B += b_g[:, None] * tl.load(p_B + b_r[:, None] * s_B + o_n[None, :], mask=m_tn, other=0.).to(tl.float32)
            b_C += b_g[:, None] * tl.load(p_C + b_r[:, None] * s_C + o_n[None, :], mask=m_tn, other=0.).to(tl.float32)
    tl.store(p_delta + tl.multiple_of(o_t * DI, AL)[:, None] + o_d[None, :], b_delta.to(p_delta.dtype.element_ty),
             mask=m_td)
    if i_d == 0:
        # (T, 2, N): B then C of each token
        tl.store(p_bc + o_t[:, None] * (2 * N) + o_n[None, :], b_B.to(p_bc.dtype.element_ty), mask=m_tn)
        tl.store(p_bc + o_t[:, None] * (2 * N) + N + o_n[None, :], b_C.to(p_bc.dtype.element_ty), mask=m_tn)


def _rows(t: Tensor) -> Tensor:
    return t if t.stride(-1) == 1 else t.contiguous()


def swimba_mix_fused(dt: Tensor, B: Tensor, C: Tensor, pos: Tensor, gates: Tensor, idx: Tensor,
                     delta_bias: Optional[Tensor] = None, delta_softplus: bool = True) -> tuple[Tensor, Tensor]:
    """Shapes as in `swimbench.kernels.swimba_mix`; dt, B and C may be row views (unit last stride)."""
    dt, B, C = _rows(dt), _rows(B), _rows(C)
    T, k = pos.shape
    d, n = dt.shape[-1], B.shape[-1]
    pos, gates, idx = pos.contiguous(), gates.float().contiguous(), idx.contiguous()
    bias = delta_bias.float().contiguous() if delta_bias is not None else None
    # delta, B and C are rounded once to dt's dtype, as a dense layer's are (dt_proj's and x_proj's outputs).
    # In fp32, delta would cost the mixing kernel half its bytes again and both passes of a chunked scan
    # 2 more bytes a channel (H200: k = 2 mix-then-scan 1.29x the dense scan with fp32 delta); fp32 B and C
    # cost the scan its 32-bit pair loads of 16-bit B and C (H200: 1.07-1.11x slower, docs/performance.md).
    delta = torch.empty(T, d, device=dt.device, dtype=dt.dtype)
    bc = torch.empty(T, 2, n, device=dt.device, dtype=dt.dtype)
    if T == 0:
        return delta, bc
    grid = lambda meta: (triton.cdiv(T, meta["BT"]), triton.cdiv(d, meta["BD"]))
    _mix_kernel[grid](dt, B, C, pos, gates, idx, bias if bias is not None else gates, delta, bc, T, d,
                      dt.stride(0), B.stride(0), C.stride(0), N=n, NP=triton.next_power_of_2(n), K=k,
                      HAS_BIAS=bias is not None, SOFTPLUS=bool(delta_softplus), AL=_align(d, dt.stride(0)))
    return delta, bc
