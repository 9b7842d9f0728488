"""Triton kernel of swimbench::gather_mm: expert-major, masked, no sort.

A program owns (expert e, BN output columns, one split of K). It loads the expert id of every slot
(few: this is the small-batch path), keeps the slots that chose e, and runs their rows through e's
matrix, which it reads once; a program whose expert no slot chose does nothing. So the weights read
are those of the chosen experts, once each, as in the grouped GEMM, without the sort, the gather of
rows and the scatter back that the grouped GEMM needs (a dozen small launches at batch 1).

Narrow outputs (x_proj's R + 2N columns) leave too few column blocks to keep the GPU's memory busy,
so K is split across programs, with the deterministic fix-up of `.._split`.
"""
from __future__ import annotations

from functools import lru_cache

import torch
import triton
import triton.language as tl
from torch import Tensor

from .._dispatch import interpreting
from .._split import tickets

MAX_SLOTS = 64          # slots per call this kernel takes: they share one tile of rows


@triton.jit
def _gelu(x):
    return 0.5 * x * (1.0 + tl.math.erf(x * 0.7071067811865476))


@triton.jit
def _gather_mm_kernel(p_x, p_w, p_i, p_o, p_part, p_cnt, S, KD, N, KS, s_x, s_we, s_wk, CAP,
                      K_SLOT: tl.constexpr, BS: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr,
                      SPLIT: tl.constexpr, PER_SLOT: tl.constexpr, GELU: tl.constexpr,
                      CAPPED: tl.constexpr, IEEE: tl.constexpr):
    i_e, i_n, i_k = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    o_s = tl.arange(0, BS)
    m_s = o_s < S
    b_i = tl.load(p_i + o_s, mask=m_s, other=-1)
    m_e = b_i == i_e
    if tl.sum(m_e.to(tl.int32), 0) > 0:
        m_keep = m_e
        if CAPPED:
            # the slot's place among the slots of its expert, in token order: the sorted dispatch's rule
            m_keep = m_e & (tl.cumsum(m_e.to(tl.int32), 0) <= CAP)
        o_r = o_s if PER_SLOT else o_s // K_SLOT
        o_n = i_n * BN + tl.arange(0, BN)
        m_n = o_n < N
        p_we = p_w + i_e.to(tl.int64) * s_we
        k0 = i_k * KS
        k1 = tl.minimum(k0 + KS, KD)
        acc = tl.zeros([BS, BN], dtype=tl.float32)
        for kk in range(k0, k1, BK):
            o_k = kk + tl.arange(0, BK)
            m_k = o_k < k1
            b_x = tl.load(p_x + o_r[:, None] * s_x + o_k[None, :], mask=m_keep[:, None] & m_k[None, :], other=0.)
            b_w = tl.load(p_we + o_k[:, None] * s_wk + o_n[None, :], mask=m_k[:, None] & m_n[None, :], other=0.)
            if IEEE:
                # fp32 inputs (and bf16 under the interpreter, whose numpy dot has no bf16) in full fp32
                acc += tl.dot(b_x.to(tl.float32), b_w.to(tl.float32), input_precision="ieee")
            else:
                acc += tl.dot(b_x, b_w)
        o_out = o_s[:, None] * N + o_n[None, :]
        m_out = m_e[:, None] & m_n[None, :]
        done = True
        if SPLIT > 1:
            tl.store(p_part + i_k * S * N + o_out, acc, mask=m_out)
            # every thread's partial is stored before the ticket's release (a scalar atomic is one
            # thread's); the ticket acquires the others' partials for the last of the SPLIT programs
            tl.debug_barrier()
            ticket = tl.atomic_add(p_cnt + i_e * tl.num_programs(1) + i_n, 1)
            done = ticket == SPLIT - 1
            if done:
                acc = tl.zeros([BS, BN], dtype=tl.float32)
                for j in range(SPLIT):
                    acc += tl.load(p_part + j * S * N + o_out, mask=m_out, other=0., cache_modifier=".cg")
                tl.atomic_xchg(p_cnt + i_e * tl.num_programs(1) + i_n, 0)
        if done:
            if GELU:
                acc = _gelu(acc)
            acc = tl.where(m_keep[:, None], acc, 0.)
            tl.store(p_o + o_out, acc.to(p_o.dtype.element_ty), mask=m_out)


@lru_cache(maxsize=None)
def _sm_count(device: torch.device) -> int:
    # the interpreter runs programs one by one: a small count still exercises the split path
    return 8 if device.type != "cuda" else torch.cuda.get_device_properties(device).multi_processor_count


def config(slots: int, experts: int, K: int, N: int, device: torch.device) -> dict:
    """Tile sizes and the K split: enough (expert, column block, split) programs with work to keep the
    memory system busy (two per multiprocessor), each split at least four K tiles long."""
    # from a tuning sweep on the H200 (docs/performance.md, issue 11, "Tuning")
    BS = max(16, triton.next_power_of_2(slots))
    BN = 32 if N < 1024 else 64 if N >= 4096 else 128
    BK = 128 if K >= 2048 and N <= 4096 else 64
    busy = min(experts, slots) * triton.cdiv(N, BN)
    split = max(1, min(triton.cdiv(2 * _sm_count(device), busy), K // (4 * BK)))
    return dict(BS=BS, BN=BN, BK=BK, SPLIT=split)


def gather_mm_fused(x: Tensor, w: Tensor, idx: Tensor, capacity: int = 0, gelu: bool = False,
                    **pins) -> Tensor:
    """x (T, K) or (T k, K), w (E, K, N), idx (T, k) -> (T k, N). `pins` override `config`'s choice."""
    T, k = idx.shape
    E, K, N = w.shape
    S = T * k
    if S > MAX_SLOTS:
        raise ValueError(f"gather_mm takes at most {MAX_SLOTS} slots, got {S}: use the sorted dispatch")
    if x.stride(-1) != 1:
        x = x.contiguous()
    if w.stride(-1) != 1:
        w = w.contiguous()
    idx = idx.reshape(-1)
    out = torch.empty(S, N, device=x.device, dtype=x.dtype)
    if S == 0:
        return out
    c = {**config(S, E, K, N, x.device), **pins}
    KS = triton.cdiv(triton.cdiv(K, c["SPLIT"]), c["BK"]) * c["BK"]
    split = triton.cdiv(K, KS)
    nb = triton.cdiv(N, c["BN"])
    part = torch.empty(split, S, N, device=x.device, dtype=torch.float32) if split > 1 else out
    cnt = tickets(x.device, E * nb) if split > 1 else idx
    _gather_mm_kernel[(E, nb, split)](
        x, w, idx, out, part, cnt, S, K, N, KS, x.stride(0), w.stride(0), w.stride(1), capacity,
        K_SLOT=k, BS=c["BS"], BN=c["BN"], BK=c["BK"], SPLIT=split, PER_SLOT=x.shape[0] == S and k > 1,
        GELU=gelu, CAPPED=capacity > 0,
        IEEE=x.dtype == torch.float32 or (interpreting() and x.dtype == torch.bfloat16),
        num_warps=c.get("num_warps", 4), num_stages=c.get("num_stages", 3))
    return out


__all__ = ["gather_mm_fused", "config", "MAX_SLOTS"]
