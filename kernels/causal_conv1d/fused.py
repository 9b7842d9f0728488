"""Triton causal depthwise conv (+ SiLU) on token-major, strided inputs: in_proj's output is read in
place (its x half is a view with row stride 2 d_inner), so the layer needs no transpose, pad or copy.

Prefill: one program per (BT tokens, BD channels, batch row); the K shifted [BT, BD] windows are
loaded directly (the K - 1 rows they share with the neighbour block come from cache), accumulated in
fp32 and written once, contiguous. Decode: one program per (BD channels, batch row) shifts the
(b, d, K) state in registers, writes it back and emits the output.
"""
from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl
from torch import Tensor

from .._ssm import _align


@triton.jit
def _conv_kernel(p_x, p_w, p_b, p_y, L, DI, s_xb, s_xl, K: tl.constexpr, BT: tl.constexpr, BD: tl.constexpr,
                 HAS_BIAS: tl.constexpr, SILU: tl.constexpr, AL: tl.constexpr):
    i_t, i_d, i_b = tl.program_id(0), tl.program_id(1), tl.program_id(2).to(tl.int64)
    o_t = i_t * BT + tl.arange(0, BT)
    o_d = i_d * BD + tl.arange(0, BD)
    # DI is a multiple of AL: the mask is constant over aligned runs of AL channels, so masked loads and
    # stores stay vectors at widths Triton does not see as multiples of 16 (d_inner 4088)
    m_d = tl.max_constancy(o_d < DI, AL)
    b_y = tl.zeros([BT, BD], dtype=tl.float32)
    if HAS_BIAS:
        b_y += tl.load(p_b + o_d, mask=m_d, other=0.).to(tl.float32)[None, :]
    p_xb = p_x + i_b * s_xb
    for k in tl.static_range(K):
        o_s = o_t - (K - 1) + k                     # the input token tap k reads
        m = ((o_s >= 0) & (o_s < L))[:, None] & m_d[None, :]
        b_x = tl.load(p_xb + tl.multiple_of(o_s * s_xl, AL)[:, None] + o_d[None, :], mask=m, other=0.).to(tl.float32)
        b_w = tl.load(p_w + o_d * K + k, mask=m_d, other=0.).to(tl.float32)
        b_y += b_x * b_w[None, :]
    if SILU:
        b_y = b_y * tl.sigmoid(b_y)
    m_y = (o_t < L)[:, None] & m_d[None, :]
    o_y = tl.multiple_of((i_b * L + o_t) * DI, AL)
    tl.store(p_y + o_y[:, None] + o_d[None, :], b_y.to(p_y.dtype.element_ty), mask=m_y)


@triton.jit
def _conv_step_kernel(p_x, p_s, p_w, p_b, p_y, DI, s_xb, s_sb, s_sd, K: tl.constexpr, KP: tl.constexpr,
                      BD: tl.constexpr, HAS_BIAS: tl.constexpr, SILU: tl.constexpr):
    i_d, i_b = tl.program_id(0), tl.program_id(1).to(tl.int64)
    o_d = i_d * BD + tl.arange(0, BD)
    o_k = tl.arange(0, KP)
    m_d = o_d < DI
    m_dk = m_d[:, None] & (o_k < K)[None, :]
    p_sb = p_s + i_b * s_sb + o_d[:, None] * s_sd
    # the window after this token: the state's taps 1..K-1, then x
    b_old = tl.load(p_sb + o_k[None, :] + 1, mask=m_d[:, None] & (o_k < K - 1)[None, :], other=0.)
    b_x = tl.load(p_x + i_b * s_xb + o_d, mask=m_d, other=0.)
    b_win = tl.where((o_k == K - 1)[None, :], b_x[:, None].to(b_old.dtype), b_old)
    tl.store(p_sb + o_k[None, :], b_win, mask=m_dk)
    b_w = tl.load(p_w + o_d[:, None] * K + o_k[None, :], mask=m_dk, other=0.).to(tl.float32)
    b_y = tl.sum(b_win.to(tl.float32) * b_w, axis=1)
    if HAS_BIAS:
        b_y += tl.load(p_b + o_d, mask=m_d, other=0.).to(tl.float32)
    if SILU:
        b_y = b_y * tl.sigmoid(b_y)
    tl.store(p_y + i_b * DI + o_d, b_y.to(p_y.dtype.element_ty), mask=m_d)


def _rows(x: Tensor) -> Tensor:
    """Channels must be unit-stride; any batch and token strides are read as they are."""
    return x if x.stride(-1) == 1 else x.contiguous()


def causal_conv1d_fused(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None, silu: bool = True) -> Tensor:
    """Shapes as in `swimbench.kernels.causal_conv1d`; x may be any view with unit channel stride."""
    x = _rows(x)
    b, l, d = x.shape
    K = weight.shape[-1]
    weight = weight.reshape(d, K).contiguous()
    y = torch.empty(b, l, d, device=x.device, dtype=x.dtype)
    if l == 0:
        return y
    BD = min(128, triton.next_power_of_2(d))
    BT = min(32, triton.next_power_of_2(l))
    _conv_kernel[(triton.cdiv(l, BT), triton.cdiv(d, BD), b)](
        x, weight, bias if bias is not None else weight, y, l, d, x.stride(0), x.stride(1), K=K, BT=BT, BD=BD,
        HAS_BIAS=bias is not None, SILU=bool(silu), AL=_align(d, x.stride(1)), num_warps=4)
    return y


def causal_conv1d_update_fused(x: Tensor, conv_state: Tensor, weight: Tensor, bias: Optional[Tensor] = None,
                               silu: bool = True) -> Tensor:
    """Shapes as in `swimbench.kernels.causal_conv1d_update`; conv_state is updated in place."""
    x = _rows(x)
    b, d = x.shape
    K = weight.shape[-1]
    weight = weight.reshape(d, K).contiguous()
    work = conv_state if conv_state.stride(-1) == 1 else conv_state.contiguous()
    y = torch.empty(b, d, device=x.device, dtype=x.dtype)
    BD = min(128, triton.next_power_of_2(d))
    _conv_step_kernel[(triton.cdiv(d, BD), b)](
        x, work, weight, bias if bias is not None else weight, y, d, x.stride(0), work.stride(0), work.stride(1),
        K=K, KP=triton.next_power_of_2(K), BD=BD, HAS_BIAS=bias is not None, SILU=bool(silu), num_warps=4)
    if work is not conv_state:
        conv_state.copy_(work)
    return y
