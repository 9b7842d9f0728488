"""Triton kernel of swimbench::route: a program owns BT tokens (and, for few tokens, one split of the
input width, fixed up as in `.._split`); their E logits (a product against the router weight, read
from L2), softmax, choice and gates stay in registers, and 2 k numbers per token are written."""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from .._dispatch import interpreting
from .._split import tickets
from .naive import GOLDEN, MODES

_GOLDEN = tl.constexpr(GOLDEN)


@triton.jit
def _choose(p, o_t, m_t, o_e, m_e, p_g, p_i, E, total, STORE: tl.constexpr, TOPK: tl.constexpr,
            MODE: tl.constexpr, EP: tl.constexpr):
    """The k choices of each token, in order, and the sum of their weights. With STORE, writes the ids
    and the weights over `total`. Run twice (sum first, then store): the gates stay in registers, not
    read back from memory another thread wrote."""
    acc = tl.zeros_like(tl.max(p, 1))
    if MODE == 0:
        left = tl.where(m_e[None, :], p, -1.0)
        for j in tl.static_range(TOPK):
            best = tl.max(left, 1)
            # lowest id among ties
            pick = tl.min(tl.where(left == best[:, None], o_e[None, :], EP), 1)
            if STORE:
                tl.store(p_i + o_t * TOPK + j, pick.to(tl.int64), mask=m_t)
                tl.store(p_g + o_t * TOPK + j, best / total, mask=m_t)
            acc += best
            left = tl.where(o_e[None, :] == pick[:, None], -1.0, left)
    else:
        if MODE == 1:
            first = (o_t * TOPK) % E
        else:
            u = (o_t.to(tl.float64) + 0.5) * _GOLDEN
            u = u - tl.floor(u)
            first = tl.minimum((E * (u * u * u)).to(tl.int64), E - 1).to(tl.int32)
        for j in tl.static_range(TOPK):
            pick = (first + j) % E
            g = tl.sum(tl.where(o_e[None, :] == pick[:, None], p, 0.0), 1)
            if STORE:
                tl.store(p_i + o_t * TOPK + j, pick.to(tl.int64), mask=m_t)
                tl.store(p_g + o_t * TOPK + j, g / total, mask=m_t)
            acc += g
    return acc


@triton.jit
def _decide(acc, o_t, m_t, o_e, m_e, p_g, p_i, E, DT: tl.constexpr, TOPK: tl.constexpr, MODE: tl.constexpr,
            EP: tl.constexpr):
    # the logits as a Linear layer returns them, in x's dtype, then the softmax in fp32
    logit = acc.to(DT).to(tl.float32)
    logit = tl.where(m_e[None, :], logit, float("-inf"))
    p = tl.exp(logit - tl.max(logit, 1)[:, None])
    p = p / tl.sum(p, 1)[:, None]
    total = _choose(p, o_t, m_t, o_e, m_e, p_g, p_i, E, tl.zeros_like(tl.max(p, 1)), False, TOPK, MODE, EP)
    _choose(p, o_t, m_t, o_e, m_e, p_g, p_i, E, total, True, TOPK, MODE, EP)


@triton.jit
def _route_kernel(p_x, p_w, p_g, p_i, p_part, p_cnt, T, KD, KS, E, s_x, s_w, TOPK: tl.constexpr,
                  MODE: tl.constexpr, BT: tl.constexpr, EP: tl.constexpr, BK: tl.constexpr,
                  SPLIT: tl.constexpr, UP: tl.constexpr):
    i_t, i_k = tl.program_id(0), tl.program_id(1)
    o_t = i_t * BT + tl.arange(0, BT)
    m_t = o_t < T
    o_e = tl.arange(0, EP)
    m_e = o_e < E
    k0 = i_k * KS
    k1 = tl.minimum(k0 + KS, KD)
    acc = tl.zeros([BT, EP], dtype=tl.float32)
    for kk in range(k0, k1, BK):
        o_k = kk + tl.arange(0, BK)
        m_k = o_k < k1
        b_x = tl.load(p_x + o_t[:, None].to(tl.int64) * s_x + o_k[None, :], mask=m_t[:, None] & m_k[None, :], other=0.)
        b_w = tl.load(p_w + o_e[None, :] * s_w + o_k[:, None], mask=m_e[None, :] & m_k[:, None], other=0.)
        if UP:
            acc += tl.dot(b_x.to(tl.float32), b_w.to(tl.float32), input_precision="ieee")
        else:
            acc += tl.dot(b_x, b_w)
    DT: tl.constexpr = p_x.dtype.element_ty
    if SPLIT > 1:
        o_p = o_t[:, None] * EP + o_e[None, :]
        m_p = m_t[:, None] & m_e[None, :]
        tl.store(p_part + i_k * T * EP + o_p, acc, mask=m_p)
        tl.debug_barrier()          # all threads' partials before the one thread's release
        ticket = tl.atomic_add(p_cnt + i_t, 1)
        if ticket == SPLIT - 1:
            acc = tl.zeros([BT, EP], dtype=tl.float32)
            for j in range(SPLIT):
                acc += tl.load(p_part + j * T * EP + o_p, mask=m_p, other=0., cache_modifier=".cg")
            tl.atomic_xchg(p_cnt + i_t, 0)
            _decide(acc, o_t, m_t, o_e, m_e, p_g, p_i, E, DT, TOPK, MODE, EP)
    else:
        _decide(acc, o_t, m_t, o_e, m_e, p_g, p_i, E, DT, TOPK, MODE, EP)


def route_fused(x: Tensor, weight: Tensor, k: int, mode: str, split: int = 0) -> tuple[Tensor, Tensor]:
    """x (T, K), weight (E, K) -> gates (T, k) fp32, idx (T, k) int64. `split` (0: chosen here) splits
    K across programs: a few tokens' logits otherwise run as one program's long serial loop."""
    T, K = x.shape
    E = weight.shape[0]
    if x.stride(-1) != 1:
        x = x.contiguous()
    weight = weight.contiguous()
    gates = torch.empty(T, k, device=x.device, dtype=torch.float32)
    idx = torch.empty(T, k, device=x.device, dtype=torch.int64)
    if T == 0:
        return gates, idx
    BT, BK = (64 if T >= 4096 else 16), 64
    nt = triton.cdiv(T, BT)
    if split <= 0:
        split = 1 if nt >= 64 else max(1, min(32, K // (2 * BK)))
    KS = triton.cdiv(triton.cdiv(K, split), BK) * BK
    split = triton.cdiv(K, KS)
    EP = max(16, triton.next_power_of_2(E))
    part = torch.empty(split, T, EP, device=x.device, dtype=torch.float32) if split > 1 else gates
    cnt = tickets(x.device, nt) if split > 1 else idx
    up = x.dtype == torch.float32 or (interpreting() and x.dtype == torch.bfloat16)
    _route_kernel[(nt, split)](x, weight, gates, idx, part, cnt, T, K, KS, E, x.stride(0), weight.stride(0),
                               TOPK=k, MODE=MODES.index(mode), BT=BT, EP=EP, BK=BK, SPLIT=split, UP=up,
                               num_warps=4)
    return gates, idx
