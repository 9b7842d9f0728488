"""swimbench::swimba_mix: Swimba's parameter-space mixing of the k selected experts' streams into one
delta, B and C per token, which the dense scan then runs on (docs/kernels.md)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from .._dispatch import pick
from .naive import swimba_mix_naive


@torch.library.custom_op("swimbench::swimba_mix", mutates_args=())
def swimba_mix(dt: Tensor, B: Tensor, C: Tensor, pos: Tensor, gates: Tensor, idx: Tensor,
               delta_bias: Optional[Tensor] = None, delta_softplus: bool = True) -> tuple[Tensor, Tensor]:
    """Mix each token's k expert streams, read by row.

    delta_t = sum_j g_tj softplus(dt[pos_tj] + delta_bias[idx_tj]);  B_t = sum_j g_tj B[pos_tj];  C likewise.

    Args:
        dt:    (M, d) bf16, fp16 or fp32; expert dt_proj outputs before bias, one row per (token, expert)
               slot, in any order (the dispatch's expert order).
        B, C:  (M, n) same dtype; views with unit last stride are read in place.
        pos:   (T, k) integer; the row of token t's j-th stream.
        gates: (T, k) fp32 convex weights; idx: (T, k) expert ids (select the delta bias).
        delta_bias: (E, d) fp32 or None; delta_softplus: softplus after the bias.
    Returns:
        delta (T, d) and BC (T, 2, n) (B then C), mixed in fp32 and rounded once to dt's dtype, as a
        dense layer's delta, B and C are.
    """
    return pick(swimba_mix_naive, ".swimba_mix.fused", "swimba_mix_fused", dt)(
        dt, B, C, pos, gates, idx, delta_bias, delta_softplus)


@swimba_mix.register_fake
def _(dt, B, C, pos, gates, idx, delta_bias=None, delta_softplus=True):
    T = pos.shape[0]
    return dt.new_empty(T, dt.shape[-1]), dt.new_empty(T, 2, B.shape[-1])
