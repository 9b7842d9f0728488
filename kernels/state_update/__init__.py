"""Decode ops: one token's state update, in place on the cache (usable inside a CUDA graph)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from .._dispatch import pick
from .naive import (separated_state_update_naive, selective_state_update_naive,
                    swimba_state_update_naive)


@torch.library.custom_op("swimbench::selective_state_update", mutates_args=("state",))
def selective_state_update(state: Tensor, u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor,
                           D: Optional[Tensor] = None, z: Optional[Tensor] = None,
                           dt_bias: Optional[Tensor] = None, dt_softplus: bool = True) -> Tensor:
    """Dense decode step.

    state (b, d, n) fp32, updated in place; u, dt, z (b, d); A (d, n) fp32; B, C (b, n);
    D, dt_bias (d,) fp32. Returns y (b, d) in u's dtype.
    """
    impl = pick(selective_state_update_naive, ".state_update.fused", "selective_state_update_fused", u)
    return impl(state, u, dt, A, B, C, D, z, dt_bias, dt_softplus)


@torch.library.custom_op("swimbench::swimba_state_update", mutates_args=("state",))
def swimba_state_update(state: Tensor, u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor,
                        gates: Tensor, idx: Tensor, D: Optional[Tensor] = None,
                        z: Optional[Tensor] = None, dt_bias: Optional[Tensor] = None,
                        dt_softplus: bool = True) -> Tensor:
    """Swimba decode step: mixes the k selected streams, then one state update.

    state (b, d, n) fp32, in place; u, z (b, d); dt (b, k, d); B, C (b, k, n); gates (b, k) fp32;
    idx (b, k) int64; A (d, n); D (d,); dt_bias (E, d). Returns y (b, d).
    """
    impl = pick(swimba_state_update_naive, ".state_update.fused", "swimba_state_update_fused", u)
    return impl(state, u, dt, A, B, C, gates, idx, D, z, dt_bias, dt_softplus)


@torch.library.custom_op("swimbench::separated_state_update", mutates_args=("state",))
def separated_state_update(state: Tensor, u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor,
                           gates: Tensor, D: Optional[Tensor] = None, z: Optional[Tensor] = None,
                           dt_bias: Optional[Tensor] = None, dt_softplus: bool = True) -> Tensor:
    """Separated decode step: every expert's state advances.

    state (b, E, d, n) fp32, in place; u, z (b, d); dt (b, E, d); B, C (b, E, n); gates (b, E) fp32;
    A (E, d, n); D, dt_bias (E, d). Returns y (b, d).
    """
    impl = pick(separated_state_update_naive, ".state_update.fused", "separated_state_update_fused", u)
    return impl(state, u, dt, A, B, C, gates, D, z, dt_bias, dt_softplus)


for _op in (selective_state_update, swimba_state_update, separated_state_update):
    _op.register_fake(lambda state, u, *args, **kwargs: torch.empty_like(u))
