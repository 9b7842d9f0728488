"""The Triton kernel behind every scan and state-update op: one recurrence, three designs.

All six ops are one computation over token-major tensors, h_t = exp(delta_t A) h_{t-1} + delta_t u_t B_t,
y_t = <C_t, h_t> (+ D u_t), differing only in where delta, B and C come from and how outputs combine:

- dense:     one stream (S = 1), one trajectory (G = 1).
- Swimba:    S = k streams per token, mixed with the gates into one delta, B and C in registers (MIX),
             one trajectory; per-stream delta bias gathered by expert id.
- separated: S = E streams, each its own trajectory (G = E, GATED), run one after another in the
             program; their gated outputs are summed in an fp32 buffer only that program touches.

Streams are read as dt (b, l, S, d) and B, C (b, l, S, n); the dense op views its (b, l, d) and
(b, l, n) tensors that way. A program owns (one batch row, BD channels, one chunk of tokens) and
holds the fp32 state [N, BD] of the trajectory it is on in registers; it walks its tokens in order,
so the sums over n and over experts stay inside the program (no atomics).

A decode step is the same program with l = 1, the state read from and written back to the cache.

Long sequences with too few (batch, channel-block) programs to fill the GPU are split into chunks:
  pass 1 (LOCAL): each chunk's state from zero, and the sum of its deltas;
  combine:        H_c = exp(A * sum_c delta) H_{c-1} + h_c, in order over chunks;
  pass 2:         each chunk rescans from H_{c-1} and writes y (and the final state).
The decay over a chunk is exp(A * sum delta) because A is fixed per (channel, state), so pass 1
needs only one extra [BD] accumulator; the price is a second pass of exponentials.
Measurements behind these choices: docs/performance.md; a walk-through: docs/kernels.md.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import torch
import triton
import triton.language as tl
from torch import Tensor


@triton.jit
def _log1p_unit(t):
    # log1p(t) for t in [0, 1] as t * p(t), p of degree 7 least-squares fitted to log1p(t) / t on Chebyshev
    # nodes: relative error 3.5e-7 in fp32 (tests/kernels/test_softplus.py), small t included
    p = -0.008574676205265227 * t + 0.04421419233968214
    p = p * t - 0.10785367917384134
    p = p * t + 0.1775702399243116
    p = p * t - 0.2449961172459047
    p = p * t + 0.3327617657151962
    p = p * t - 0.49997449384835957
    p = p * t + 0.9999998102178478
    return t * p


@triton.jit
def _softplus(x):
    # softplus(x) = max(x, 0) + log1p(e^-|x|): one exponential on the special-function unit and eight FMAs.
    # tl.log on fp32 lowers to libdevice's logf (about fifteen FMAs and a branch, beside a second MUFU op):
    # with it softplus was 40% of Swimba's mixing kernel (docs/performance.md). No cancellation anywhere:
    # for x << 0 the polynomial keeps e^x's relative accuracy; for x >> 0 the second term vanishes.
    return tl.maximum(x, 0.0) + _log1p_unit(tl.exp(-tl.abs(x)))


@triton.jit
def _ld(p, m, FULL: tl.constexpr):
    # unmasked where the block is known full: masked lanes cost predicates and stop vector loads
    if FULL:
        return tl.load(p)
    else:
        return tl.load(p, mask=m, other=0)


@triton.jit
def _load_bc(p, row, g, o_s, m_s, s_l, s_s, N: tl.constexpr, NP: tl.constexpr, FULL: tl.constexpr,
             PAIRS: tl.constexpr):
    """B or C of token `row`, streams g + o_s, [N, SP] as stored (strides s_l per token, s_s per stream,
    in units of what is loaded); with PAIRS (16-bit values, N even) as [N/2, SP] 32-bit words: a thread
    reads each word whole and `_widen` splits it, half the loads and conversions."""
    base = row * s_l + (g + o_s[None, :]) * s_s
    if PAIRS:
        o_w = tl.arange(0, NP // 2)
        m = (o_w < N // 2)[:, None] & m_s[None, :]
        return _ld(p.to(tl.pointer_type(tl.int32)) + base + o_w[:, None], m, FULL)
    else:
        m = (tl.arange(0, NP) < N)[:, None] & m_s[None, :]
        return _ld(p + base + tl.arange(0, NP)[:, None], m, FULL)


@triton.jit
def _widen(x, DT: tl.constexpr, NP: tl.constexpr, SP: tl.constexpr, PAIRS: tl.constexpr):
    """`_load_bc`'s block as fp32 [N, SP]."""
    if PAIRS:
        if DT == tl.bfloat16:
            # a bf16 is the top half of the fp32 with the same value
            lo = (x << 16).to(tl.float32, bitcast=True)
            hi = (x & -65536).to(tl.float32, bitcast=True)
        else:
            lo = x.to(tl.int16).to(tl.float16, bitcast=True).to(tl.float32)
            hi = (x >> 16).to(tl.int16).to(tl.float16, bitcast=True).to(tl.float32)
        # word w holds states 2w (low half) and 2w + 1
        return tl.reshape(tl.permute(tl.join(lo, hi), (0, 2, 1)), (NP, SP))
    else:
        return x.to(tl.float32)


@triton.jit
def _load_token(row, g, G, p_u, p_dt, p_B, p_C, p_z, p_g, p_i, p_bias, p_acc, o_d, m_d, o_s, m_s, DI,
                s_u, s_z, s_dt, s_dts, s_bc, s_bcs, N: tl.constexpr, NP: tl.constexpr, S: tl.constexpr, EVEN_D: tl.constexpr,
                FULL_S: tl.constexpr, PAIRS: tl.constexpr, MIX: tl.constexpr, GATED: tl.constexpr,
                HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, LOCAL: tl.constexpr, DECODE: tl.constexpr,
                AL: tl.constexpr):
    """What token `row` (a flat b*l index, int64) brings for trajectory g, as stored: u [BD]; dt [SP, BD]
    and B, C (see `_load_bc`) of streams g + o_s (all k for Swimba, the trajectory's own otherwise); the
    gates; for the separated scan the sum over earlier trajectories. Values are converted where used, so
    prefetched 16-bit values hold half the registers. u, z, dt, B and C are read through their token
    (s_u, s_z, s_dt, s_bc) and stream (s_dts, s_bcs) strides: views of the projections' outputs."""
    rs = row * S + g
    m_sd = m_s[:, None] & m_d[None, :]
    b_u = _ld(p_u + tl.multiple_of(row * s_u, AL) + o_d, m_d, EVEN_D)
    b_dt = _ld(p_dt + tl.multiple_of(row * s_dt, AL) + (g + o_s[:, None]) * s_dts + o_d[None, :], m_sd,
               FULL_S and EVEN_D)
    b_B = _load_bc(p_B, row, g, o_s, m_s, s_bc, s_bcs, N, NP, FULL_S and N == NP, PAIRS)
    # unused slots carry b_u: same type every iteration, and the compiler drops them
    b_C = b_u
    b_z = b_u
    b_g = b_u
    b_bias = b_u
    b_acc = b_u
    if not LOCAL:
        b_C = _load_bc(p_C, row, g, o_s, m_s, s_bc, s_bcs, N, NP, FULL_S and N == NP, PAIRS)
        if HAS_Z:
            if GATED:
                # only the last trajectory gates the sum
                b_z = _ld(p_z + tl.multiple_of(row * s_z, AL) + o_d, m_d & (o_d * 0 + g == G - 1), False)
            else:
                b_z = _ld(p_z + tl.multiple_of(row * s_z, AL) + o_d, m_d, EVEN_D)
        if GATED and not DECODE:
            b_acc = _ld(p_acc + tl.multiple_of(row * DI, AL) + o_d, m_d & (o_d * 0 + g > 0), False)
    if MIX or (GATED and not LOCAL):
        b_g = _ld(p_g + rs + o_s, m_s, FULL_S)
    if MIX and HAS_BIAS:
        # Swimba: each stream's delta bias is its expert's row, gathered by id
        b_e = _ld(p_i + rs + o_s, m_s, FULL_S)
        b_bias = _ld(p_bias + b_e[:, None] * DI + o_d[None, :], m_sd, FULL_S and EVEN_D)
    return b_u, b_dt, b_B, b_C, b_z, b_g, b_bias, b_acc


@triton.jit
def _store_y(p, v, m_d, EVEN_D: tl.constexpr):
    if EVEN_D:
        tl.store(p, v.to(p.dtype.element_ty))
    else:
        tl.store(p, v.to(p.dtype.element_ty), mask=m_d)


@triton.jit
def _step(h, b_sd, acc, row, g, G, b_u, b_dt, b_B, b_C, b_z, b_g, b_bias, b_acc, b_A, b_D, b_bg,
          p_y, p_acc, p_B, p_C, o_d, m_d, DI, NP: tl.constexpr, SP: tl.constexpr, EVEN_D: tl.constexpr,
          PAIRS: tl.constexpr, MIX: tl.constexpr, GATED: tl.constexpr, HAS_D: tl.constexpr,
          HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, LOCAL: tl.constexpr,
          DECODE: tl.constexpr, AL: tl.constexpr):
    """One token of one trajectory: advance the [N, BD] state h; accumulate delta (LOCAL) or emit y."""
    b_u = b_u.to(tl.float32)
    b_B = _widen(b_B, p_B.dtype.element_ty, NP, SP, PAIRS)
    b_x = b_dt.to(tl.float32)
    if HAS_BIAS:
        if MIX:
            b_x = b_x + b_bias
        else:
            b_x = b_x + b_bg[None, :]
    if SOFTPLUS:
        b_x = _softplus(b_x)
    if MIX:
        # Swimba: the gate-weighted mixture of the k streams, formed in registers only
        b_w = b_g.to(tl.float32)
        b_delta = tl.sum(b_w[:, None] * b_x, axis=0)
        b_Bt = tl.sum(b_B * b_w[None, :], axis=1)
    else:
        b_delta = tl.sum(b_x, axis=0)
        b_Bt = tl.sum(b_B, axis=1)

    h = tl.exp2(b_delta[None, :] * b_A) * h + (b_delta * b_u)[None, :] * b_Bt[:, None]
    if LOCAL:
        b_sd += b_delta
    else:
        b_C = _widen(b_C, p_C.dtype.element_ty, NP, SP, PAIRS)
        if MIX:
            b_Ct = tl.sum(b_C * b_w[None, :], axis=1)
        else:
            b_Ct = tl.sum(b_C, axis=1)
        b_y = tl.sum(h * b_Ct[:, None], axis=0)
        if HAS_D:
            b_y += b_D * b_u
        if GATED:
            b_y = tl.sum(b_g.to(tl.float32), axis=0) * b_y
            if DECODE:
                acc += b_y
                b_y = acc
            else:
                b_y += b_acc
        if GATED and (g < G - 1):
            if not DECODE:
                # the running sum over trajectories; this program alone reads it back
                _store_y(p_acc + tl.multiple_of(row * DI, AL) + o_d, b_y, m_d, EVEN_D)
        else:
            if HAS_Z:
                b_zf = b_z.to(tl.float32)
                b_y = b_y * b_zf * tl.sigmoid(b_zf)
            _store_y(p_y + tl.multiple_of(row * DI, AL) + o_d, b_y, m_d, EVEN_D)
    return h, b_sd, acc


@triton.jit
def _load_A(p_A, o_d, m_d, o_n, DI, N: tl.constexpr, NP: tl.constexpr, BD: tl.constexpr):
    """A (d, n) of one trajectory as an [N, BD] block times log2(e), one state column at a time.

    A is contiguous along n; loaded as one 2D block, the compiler would lay it out along n and keep
    the loop's exp(delta A) in that layout, converting it every step. Column loads along channels
    leave the block in the default layout, channels across threads, which the loop wants.
    """
    b_A = tl.zeros([NP, BD], dtype=tl.float32)
    for j in tl.static_range(NP):
        b_col = tl.load(p_A + o_d * N + j, mask=m_d & (j < N), other=0.)
        b_A = tl.where(o_n[:, None] == j, b_col[None, :], b_A)
    return b_A * 1.4426950408889634


@triton.jit(do_not_specialize=["s_n"])
def _ssm_kernel(p_u, p_dt, p_A, p_B, p_C, p_D, p_z, p_bias, p_g, p_i, p_y, p_acc, p_hin, p_hout, p_sd,
                L, T, DI, G,
                s_ib, s_ic, s_ob, s_oc, s_n, s_u, s_z, s_dt, s_dts, s_bc, s_bcs,
                N: tl.constexpr, S: tl.constexpr, SP: tl.constexpr, NP: tl.constexpr, BD: tl.constexpr,
                EVEN_D: tl.constexpr, PAIRS: tl.constexpr, MIX: tl.constexpr, GATED: tl.constexpr,
                HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
                LOCAL: tl.constexpr, INIT: tl.constexpr, STORE_H: tl.constexpr, PF: tl.constexpr,
                AL: tl.constexpr):
    """One (channel block, chunk, batch row): scan tokens [c*T, min((c+1)*T, L)) in order, for each of
    the G trajectories in turn (G > 1 only for the separated design, GATED).

    LOCAL: start from zero, store the chunk's state to hout[b, c, g] ((n, d) order) and its delta sum
    to sd[b, c, g]; no y.
    Else:  write y; start from zero (INIT 0), from hin[b, g] (INIT 1, decode) or from hin[b, c-1, g]
    (INIT 2, chunk c > 0, (n, d) order); with STORE_H the last chunk stores its final state to hout[b, g].
    States are fp32 at hin + b*s_ib + c*s_ic and hout + b*s_ob + c*s_oc, [G, d, n] unless said; s_n
    is 1 (see o_st). GATED scans keep the running sum over trajectories in acc (b, l, d) fp32; a decode
    step keeps it in registers.
    """
    pid_d = tl.program_id(0)
    pid_c = tl.program_id(1)
    pid_b = tl.program_id(2).to(tl.int64)
    n_c = tl.num_programs(1)
    DECODE: tl.constexpr = INIT == 1
    # Swimba reads all S streams of a token; the others one stream, their trajectory's
    FULL_S: tl.constexpr = (SP == S) or not MIX

    o_d = pid_d * BD + tl.arange(0, BD)
    # DI is a multiple of AL: the mask is constant over aligned runs of AL channels, so masked loads and
    # stores of a partial block stay vectors
    m_d = tl.max_constancy(o_d < DI, AL)
    o_s = tl.arange(0, SP)
    m_s = o_s < (S if MIX else 1)
    o_n = tl.arange(0, NP)
    m_n = o_n < N
    # State blocks are [N, BD]: Triton's default layout spreads the last axis over threads, so each
    # thread owns every state of its channels and <C, h> sums in registers.
    m_nd = m_n[:, None] & m_d[None, :]
    if DECODE:
        o_st = o_d[None, :] * N + o_n[:, None]       # one pass over state and A: let the loads vectorise
    else:
        # n's stride is 1 but passed unspecialised: were the compiler to see runs along n it would lay
        # the state out along n and convert every step's exp(delta A) between layouts
        o_st = o_d[None, :] * N * s_n + o_n[:, None] * s_n
    o_ws = o_n[:, None] * DI + o_d[None, :]           # the chunk workspace, (n, d) in memory

    t0 = pid_c * T
    t1 = tl.minimum(t0 + T, L)
    r0 = pid_b * L
    acc = tl.zeros([BD], dtype=tl.float32)
    for g in range(G):
        # exp(delta A) = exp2(delta * A log2 e): one MUFU op per state element, the scan's bottleneck
        if DECODE:
            b_A = tl.load(p_A + g * DI * N + o_st, mask=m_nd, other=0.) * 1.4426950408889634
        else:
            b_A = _load_A(p_A + g * DI * N, o_d, m_d, o_n, DI, N, NP, BD)
        b_D = tl.zeros([BD], dtype=tl.float32)
        if HAS_D and not LOCAL:
            b_D = tl.load(p_D + g * DI + o_d, mask=m_d, other=0.)
        b_bg = tl.zeros([BD], dtype=tl.float32)
        if HAS_BIAS and not MIX:
            b_bg = tl.load(p_bias + g * DI + o_d, mask=m_d, other=0.)

        h = tl.zeros([NP, BD], dtype=tl.float32)
        if INIT == 1:
            h = tl.load(p_hin + pid_b * s_ib + g * DI * N + o_st, mask=m_nd, other=0.)
        if INIT == 2:
            if pid_c > 0:
                h = tl.load(p_hin + pid_b * s_ib + (pid_c - 1) * s_ic + g * N * DI + o_ws, mask=m_nd, other=0.)
        b_sd = tl.zeros([BD], dtype=tl.float32)

        # Software prefetch PF tokens deep: each iteration handles tokens t .. t+PF-1 and first issues the
        # loads of the next PF tokens, so a DRAM round trip overlaps PF steps of work. Past the end of
        # the chunk the loads re-read its last token (a cache hit) rather than mask.
        va = _load_token(r0 + t0, g, G, p_u, p_dt, p_B, p_C, p_z, p_g, p_i, p_bias, p_acc, o_d, m_d, o_s, m_s,
                         DI, s_u, s_z, s_dt, s_dts, s_bc, s_bcs, N, NP, S, EVEN_D, FULL_S, PAIRS, MIX, GATED, HAS_Z,
                         HAS_BIAS, LOCAL, DECODE, AL)
        if PF == 2:
            vb = _load_token(r0 + tl.minimum(t0 + 1, t1 - 1), g, G, p_u, p_dt, p_B, p_C, p_z, p_g, p_i, p_bias,
                             p_acc, o_d, m_d, o_s, m_s, DI, s_u, s_z, s_dt, s_dts, s_bc, s_bcs, N, NP, S, EVEN_D, FULL_S, PAIRS, MIX, GATED, HAS_Z,
                             HAS_BIAS, LOCAL, DECODE, AL)
        for t in range(t0, t1, PF):
            ca = va
            va = _load_token(r0 + tl.minimum(t + PF, t1 - 1), g, G, p_u, p_dt, p_B, p_C, p_z, p_g, p_i, p_bias,
                             p_acc, o_d, m_d, o_s, m_s, DI, s_u, s_z, s_dt, s_dts, s_bc, s_bcs, N, NP, S, EVEN_D, FULL_S, PAIRS, MIX, GATED, HAS_Z,
                             HAS_BIAS, LOCAL, DECODE, AL)
            if PF == 2:
                cb = vb
                vb = _load_token(r0 + tl.minimum(t + 3, t1 - 1), g, G, p_u, p_dt, p_B, p_C, p_z, p_g, p_i,
                                 p_bias, p_acc, o_d, m_d, o_s, m_s, DI, s_u, s_z, s_dt, s_dts, s_bc, s_bcs, N, NP, S, EVEN_D, FULL_S, PAIRS, MIX, GATED,
                                 HAS_Z, HAS_BIAS, LOCAL, DECODE, AL)
            h, b_sd, acc = _step(h, b_sd, acc, r0 + t, g, G, *ca, b_A, b_D, b_bg, p_y, p_acc, p_B, p_C, o_d, m_d,
                                 DI, NP, SP, EVEN_D, PAIRS, MIX, GATED, HAS_D, HAS_Z, HAS_BIAS, SOFTPLUS, LOCAL,
                                 DECODE, AL)
            if PF == 2:
                if t + 1 < t1:
                    h, b_sd, acc = _step(h, b_sd, acc, r0 + t + 1, g, G, *cb, b_A, b_D, b_bg, p_y, p_acc, p_B,
                                         p_C, o_d, m_d, DI, NP, SP, EVEN_D, PAIRS, MIX, GATED, HAS_D, HAS_Z,
                                         HAS_BIAS, SOFTPLUS, LOCAL, DECODE, AL)

        if LOCAL:
            slot = (pid_b * n_c + pid_c) * G + g
            tl.store(p_hout + slot * N * DI + o_ws, h, mask=m_nd)
            tl.store(p_sd + slot * DI + o_d, b_sd, mask=m_d)
        elif STORE_H:
            if pid_c == n_c - 1:
                tl.store(p_hout + pid_b * s_ob + g * DI * N + o_st, h, mask=m_nd)
        if GATED and not LOCAL and not DECODE:
            # the next trajectory reads acc rows this one wrote, maybe from other threads
            tl.debug_barrier()


@triton.jit
def _combine_kernel(p_A, p_h, p_sd, NC, DI, G, N: tl.constexpr, NP: tl.constexpr, BD: tl.constexpr):
    """In place over chunks c = 0..NC-1 of one (channel block, trajectory, batch row):
    h[c] <- exp(A sd[c]) h[c-1] + h[c]. h is the chunked scan's workspace, (b, NC, G, n, d) so that loads
    run along channels; A is (G, d, n)."""
    pid_d = tl.program_id(0)
    g = tl.program_id(1)
    pid_b = tl.program_id(2).to(tl.int64)
    o_d = pid_d * BD + tl.arange(0, BD)
    o_n = tl.arange(0, NP)
    m_d = o_d < DI
    m_nd = (o_n < N)[:, None] & m_d[None, :]
    o_ws = o_n[:, None] * DI + o_d[None, :]

    b_A = _load_A(p_A + g * DI * N, o_d, m_d, o_n, DI, N, NP, BD)
    h = tl.zeros([NP, BD], dtype=tl.float32)
    for c in range(NC):
        slot = (pid_b * NC + c) * G + g
        b_hc = tl.load(p_h + slot * N * DI + o_ws, mask=m_nd, other=0.)
        b_sd = tl.load(p_sd + slot * DI + o_d, mask=m_d, other=0.)
        h = tl.exp2(b_sd[None, :] * b_A) * h + b_hc
        tl.store(p_h + slot * N * DI + o_ws, h, mask=m_nd)


# ---------------------------------------------------------------------------------------------
# launch planning


@dataclass(frozen=True)
class Plan:
    block_d: int      # channels per program
    num_warps: int
    chunks: int       # 1: a single pass; more: the two-pass chunked scan
    prefetch: int = 2  # tokens whose loads are in flight ahead of the one computed (1 or 2)


# Tuning knobs a benchmark may pin (see `tuned`); None leaves the choice to `plan`.
_PINNED: dict = {}
# State elements per thread in a scan that has to be chunked: the [N, BD] block over num_warps * 32
# threads. 32 at N = 16 gives each thread two channels, which share the per-token B and C loads and
# conversions; one channel a thread (16) leaves twice the programs, which is what a batch that fills
# the GPU without chunking wants (H100, 2026-11-23: see docs/performance.md).
_STATE_PER_THREAD = 32
# Programs per SM below which a scan is chunked, and the number the chunked scan aims for.
_FULL_PROGRAMS_PER_SM = 1.5
_CHUNKED_PROGRAMS_PER_SM = 2
# Chunk length the chunked scan aims for; longer sequences get more chunks. Never below _MIN_CHUNK.
_CHUNK = 512
_MIN_CHUNK = 128


@contextlib.contextmanager
def tuned(**pins):
    """Pin plan fields (block_d, num_warps, chunks, prefetch) inside the block: for tests and tuning sweeps."""
    unknown = set(pins) - set(Plan.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown plan fields {sorted(unknown)}")
    saved = dict(_PINNED)
    _PINNED.update({k: v for k, v in pins.items() if v is not None})
    try:
        yield
    finally:
        _PINNED.clear()
        _PINNED.update(saved)


@lru_cache(maxsize=None)
def _sm_count(index: Optional[int]) -> int:
    if index is None or not torch.cuda.is_available():
        return 132  # the interpreter has no SMs; plan as for an H100
    return torch.cuda.get_device_properties(index).multi_processor_count


def plan(b: int, l: int, d: int, np_: int, device: torch.device) -> Plan:
    """Block and chunk sizes for b sequences of l tokens, d channels and np_ (padded) states per channel.
    Trajectories (separated experts) run one after another in a program, so they do not enter."""
    index = None
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
    sms = _sm_count(index)
    if l == 1:
        # decode moves each state once: many small programs, one channel per thread
        num_warps = _PINNED.get("num_warps", 1)
        bd = _PINNED.get("block_d", min(32 * num_warps, triton.next_power_of_2(d)))
        return Plan(bd, num_warps, 1, _PINNED.get("prefetch", 1))
    num_warps = _PINNED.get("num_warps", 4)
    per_thread = _STATE_PER_THREAD // 2
    if b * triton.cdiv(d, per_thread * 32 * num_warps // np_) < _FULL_PROGRAMS_PER_SM * sms:
        per_thread = _STATE_PER_THREAD
    bd = max(32, per_thread * 32 * num_warps // np_)
    bd = _PINNED.get("block_d", min(triton.next_power_of_2(bd), triton.next_power_of_2(d)))
    programs = b * triton.cdiv(d, bd)
    chunks = 1
    if programs < _FULL_PROGRAMS_PER_SM * sms:
        # at most _CHUNKED_PROGRAMS_PER_SM programs an SM, rounded down: one SM running one program more
        # than the rest sets the time (17 chunks at b1 l8192 ran 16% slower than 16)
        chunks = max(_CHUNKED_PROGRAMS_PER_SM * sms // programs, l // _CHUNK)
        chunks = max(1, min(chunks, l // _MIN_CHUNK))
    chunks = max(1, min(_PINNED.get("chunks", chunks), l))
    return Plan(bd, num_warps, chunks, _PINNED.get("prefetch", 2))


# ---------------------------------------------------------------------------------------------
# host side


def _flags(D, z, bias, softplus):
    return dict(HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=bias is not None, SOFTPLUS=bool(softplus))


def _pairs(B: Tensor, C: Tensor, n: int, lead: int) -> bool:
    """Read B and C two 16-bit states per 32-bit word (see `_load_bc`): every word must start on 4 bytes."""
    strides = [_token_stride(B, lead), *([B.stride(lead)] if B.shape[lead] > 1 else [])]
    return (B.element_size() == 2 and n % 2 == 0 and all(s % 2 == 0 for s in strides)
            and B.data_ptr() % 4 == 0 and C.data_ptr() % 4 == 0)


def _c(t: Optional[Tensor]) -> Optional[Tensor]:
    return t.contiguous() if t is not None else None


def _tokens(t: Optional[Tensor], lead: int) -> Optional[Tensor]:
    """t as the kernel can address it without a copy where possible: unit last stride, and its `lead`
    leading dims (b, l) of a scan or (b,) of a step flattening to one token index with one stride.
    The projections' outputs (z in in_proj's, B and C in x_proj's) pass as views."""
    if t is None:
        return None
    if t.stride(-1) != 1:
        return t.contiguous()
    if lead == 2 and t.shape[0] > 1 and t.shape[1] > 1 and t.stride(0) != t.shape[1] * t.stride(1):
        return t.contiguous()
    return t


def _token_stride(t: Tensor, lead: int) -> int:
    """The stride of the flat token index row = batch * l + position (see `_tokens`)."""
    return t.stride(1) if lead == 2 and t.shape[1] > 1 else t.stride(0)


def _strides(u, z, dt, B, C, lead: int, pairs: bool) -> tuple:
    """Token strides of u, z, dt, B/C and stream strides of dt and B/C, as `_ssm_kernel` takes them
    (B's and C's in 32-bit words when they are read in pairs)."""
    w = 2 if pairs else 1
    return (_token_stride(u, lead), _token_stride(z, lead) if z is not None else 0, _token_stride(dt, lead),
            dt.stride(lead), _token_stride(B, lead) // w, B.stride(lead) // w)


def _same_layout(B: Tensor, C: Tensor, lead: int) -> tuple[Tensor, Tensor]:
    """B and C share one set of strides in the kernel."""
    B, C = _tokens(B, lead), _tokens(C, lead)
    if B.stride() != C.stride():
        B, C = B.contiguous(), C.contiguous()
    return B, C


def _args(u, *ts):
    """Absent tensors become u: the kernel never reads them (their HAS_ flag is off), any pointer will do."""
    return [t if t is not None else u for t in ts]


def _align(*ints: int) -> int:
    """The largest of 16, 8, 4, 2, 1 dividing every row stride: told to the compiler (tl.multiple_of), it
    lets rows of a width Triton does not see as a multiple of 16 (d_inner 4088) load and store in
    16-byte vectors."""
    return next(a for a in (16, 8, 4, 2, 1) if all(i % a == 0 for i in ints))


def _const(u, S, n, p: Plan, pairs, mix, gated, D, z, bias, softplus, strides=()) -> dict:
    return dict(AL=_align(u.shape[-1], *strides[:4]), N=n, S=S, SP=triton.next_power_of_2(S) if mix else 1,
                NP=triton.next_power_of_2(n), BD=p.block_d,
                EVEN_D=u.shape[-1] % p.block_d == 0, PAIRS=pairs, MIX=mix, GATED=gated,
                **_flags(D, z, bias, softplus), PF=p.prefetch, num_warps=p.num_warps)


def ssm_scan(u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, gates: Optional[Tensor],
             idx: Optional[Tensor], D: Optional[Tensor], z: Optional[Tensor], bias: Optional[Tensor],
             softplus: bool, return_last_state: bool, mix: bool) -> tuple[Tensor, Optional[Tensor]]:
    """The scan of every design over token-major tensors.

    u, z (b, l, d); dt (b, l, S, d); B, C (b, l, S, n); gates, idx (b, l, S) or None;
    A (G, d, n) with G = S if gates and not mix else 1; D (G, d), bias (G, d), or (E, d) with mix.
    u, z, dt, B and C may be views (unit last stride): they are read in place.
    Returns y (b, l, d) in u's dtype and, if asked, the final state (b, G, d, n) fp32.
    """
    b, l, d = u.shape
    S, n = dt.shape[2], A.shape[-1]
    G = A.shape[0]
    gated = gates is not None and not mix
    A, gates, idx, D, bias = map(_c, (A, gates, idx, D, bias))
    u, z, dt = (_tokens(t, 2) for t in (u, z, dt))
    B, C = _same_layout(B, C, 2)
    pairs = _pairs(B, C, n, 2)
    strides = _strides(u, z, dt, B, C, 2, pairs)
    y = torch.empty(b, l, d, device=u.device, dtype=u.dtype)
    last = torch.empty(b, G, d, n, device=u.device, dtype=torch.float32) if return_last_state else None
    if l == 0:
        return y, (last.zero_() if last is not None else None)

    NP = triton.next_power_of_2(n)
    p = plan(b, l, d, NP, u.device)
    T = triton.cdiv(l, p.chunks)
    nc = triton.cdiv(l, T)
    nblk = triton.cdiv(d, p.block_d)
    const = _const(u, S, n, p, pairs, mix, gated, D, z, bias, softplus, strides)
    # the separated scan sums its trajectories' outputs here, in fp32, one trajectory after another
    acc = torch.empty(b, l, d, device=u.device, dtype=torch.float32) if gated and G > 1 else u
    D_, z_, b_, g_, i_, last_ = _args(u, D, z, bias, gates, idx, last)
    state = G * d * n
    if nc == 1:
        _ssm_kernel[(nblk, 1, b)](u, dt, A, B, C, D_, z_, b_, g_, i_, y, acc, u, last_, u,
                                  l, T, d, G, 0, 0, state, 0, 1, *strides, LOCAL=False, INIT=0,
                                  STORE_H=last is not None, **const)
        return y, last

    # chunk c's local state goes to ws[:, c]; after the combine ws[:, c] is the state at the end of chunk c,
    # the initial state of chunk c + 1. The last chunk needs none of this: pass 2 finishes it.
    ws = torch.empty(b, nc - 1, G, n, d, device=u.device, dtype=torch.float32)
    sd = torch.empty(b, nc - 1, G, d, device=u.device, dtype=torch.float32)
    _ssm_kernel[(nblk, nc - 1, b)](u, dt, A, B, C, D_, z_, b_, g_, i_, y, acc, u, ws, sd,
                                   l, T, d, G, 0, 0, (nc - 1) * state, state, 1, *strides, LOCAL=True, INIT=0,
                                   STORE_H=False, **const)
    _combine_kernel[(nblk, G, b)](A, ws, sd, nc - 1, d, G, N=n, NP=const["NP"], BD=p.block_d, num_warps=p.num_warps)
    _ssm_kernel[(nblk, nc, b)](u, dt, A, B, C, D_, z_, b_, g_, i_, y, acc, ws, last_, u,
                               l, T, d, G, (nc - 1) * state, state, state, 0, 1, *strides, LOCAL=False, INIT=2,
                               STORE_H=last is not None, **const)
    return y, last


def ssm_step(state: Tensor, u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, gates: Optional[Tensor],
             idx: Optional[Tensor], D: Optional[Tensor], z: Optional[Tensor], bias: Optional[Tensor],
             softplus: bool, mix: bool) -> Tensor:
    """One decode step of every design, in place on `state` (b, G, d, n) fp32; returns y (b, d).

    u, z (b, d); dt (b, S, d); B, C (b, S, n); gates, idx (b, S); u, z, dt, B and C may be views (unit
    last stride). No host synchronisation and no allocation but y, so a CUDA graph can capture it.
    """
    b, d = u.shape
    S, n = dt.shape[1], A.shape[-1]
    G = A.shape[0]
    gated = gates is not None and not mix
    A, gates, idx, D, bias = map(_c, (A, gates, idx, D, bias))
    u, z, dt = (_tokens(t, 1) for t in (u, z, dt))
    B, C = _same_layout(B, C, 1)
    pairs = _pairs(B, C, n, 1)
    y = torch.empty(b, d, device=u.device, dtype=u.dtype)
    strides = _strides(u, z, dt, B, C, 1, pairs)
    # the kernel addresses each batch row's [G, d, n] block as contiguous; a strided cache goes through a copy
    work = state if state[0].is_contiguous() else state.contiguous()
    p = plan(b, 1, d, triton.next_power_of_2(n), u.device)
    D_, z_, b_, g_, i_ = _args(u, D, z, bias, gates, idx)
    _ssm_kernel[(triton.cdiv(d, p.block_d), 1, b)](
        u, dt, A, B, C, D_, z_, b_, g_, i_, y, u, work, work, u, 1, 1, d, G,
        work.stride(0), 0, work.stride(0), 0, 1, *strides, LOCAL=False, INIT=1,
        STORE_H=True, **_const(u, S, n, p, pairs, mix, gated, D, z, bias, softplus, strides))
    if work is not state:
        state.copy_(work)
    return y


__all__ = ["ssm_scan", "ssm_step", "plan", "tuned", "Plan"]
