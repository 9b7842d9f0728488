"""FLOP matching: the d_inner at which a variant costs what the dense reference costs per token."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional

from ..config import LayerConfig, Reference
from .analytic import flops_per_token, params


@dataclass(frozen=True)
class Sized:
    cfg: LayerConfig
    phase: str
    flops_per_token: int        # analytic, at the rounded d_inner
    target: int                 # the dense reference's
    params_total: int
    params_active: int

    @property
    def mismatch_pct(self) -> float:
        return 100.0 * (self.flops_per_token - self.target) / self.target


def match(variant: str, ref: Reference, experts: int = 1, top_k: int = 1, phase: str = "prefill",
          align: int = 8, **options) -> Sized:
    """Solve d_inner so the variant's FLOPs per token equal the dense reference's in `phase`,
    rounded to a multiple of `align` (the kernels' vector width), picking the closer neighbour.
    `options` are further LayerConfig fields (routing, capacity_factor, ffn_mult)."""
    dense = ref.dense()
    target = flops_per_token(dense, phase)
    if variant == "dense":
        cfg = dense
    else:
        base = LayerConfig(variant, ref.d_model, align, ref.d_state, ref.d_conv, experts=experts, top_k=top_k,
                           **options)
        f1, f2 = flops_per_token(base, phase), flops_per_token(base.with_(d_inner=2 * align), phase)
        slope = (f2 - f1) / align                                     # FLOPs per unit of d_inner
        exact = align + (target - f1) / slope
        if exact < align:
            raise ValueError(f"{variant} with E={experts}, k={top_k} cannot cost as little as the dense "
                             f"reference at any d_inner")
        lo = max(align, math.floor(exact / align) * align)
        cands = [base.with_(d_inner=lo), base.with_(d_inner=lo + align)]
        cfg = min(cands, key=lambda c: abs(flops_per_token(c, phase) - target))
    total, active = params(cfg)
    return Sized(cfg, phase, flops_per_token(cfg, phase), target, total, active)


def matchable(variant: str, ref: Reference, experts: int = 1, top_k: int = 1, phase: str = "prefill",
              align: int = 8, **options) -> bool:
    """Whether `match` finds a d_inner: a routed variant's router and per-expert parts grow with E and k,
    and below some d_model the dense reference's budget is smaller than those alone."""
    try:
        match(variant, ref, experts, top_k, phase, align, **options)
    except ValueError:
        return False
    return True


def smallest_d_model(cases, ref: Reference, phase: str = "prefill", align: int = 8, limit: int = 65_536,
                     **options) -> Optional[int]:
    """The smallest d_model (ref's expand, d_state and d_conv kept) at which every (variant, experts,
    top_k) of `cases` can be matched, up to `limit`; None when none can. Found by doubling, then
    bisecting (matching only gets easier as d_model grows: the budget grows with d_model x d_inner,
    the routed parts with d_model or d_inner alone)."""
    def fits(d: int) -> bool:
        r = replace(ref, d_model=d)
        return all(matchable(v, r, E, k, phase, align, **options) for v, E, k in cases)
    hi = max(1, ref.d_model)
    while not fits(hi):
        if hi >= limit:
            return None
        hi = min(2 * hi, limit)
    lo = 0                                  # fits(lo) is False (or lo is 0)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fits(mid) else (mid, hi)
    return hi


def match_problem(cases, ref: Reference, phase: str = "prefill", align: int = 8, limit: int = 65_536,
                  **options) -> Optional[str]:
    """None when every (variant, experts, top_k) of `cases` can be matched at ref's d_model; else what
    d_model the cases need, in words (the allowed range of the flag or key that sets d_model)."""
    stuck = [(v, E, k) for v, E, k in cases if not matchable(v, ref, E, k, phase, align, **options)]
    if not stuck:
        return None
    need = smallest_d_model(cases, ref, phase, align, limit, **options)
    if need is None:
        v, E, k = stuck[0]
        return (f"no d_model up to {limit} FLOP-matches these variants, experts and top-k ({v} with E={E}, "
                f"k={k} cannot cost as little as the dense reference at any d_inner): fewer experts or top-k")
    below = replace(ref, d_model=need - 1)
    v, E, k = next((c for c in cases if not matchable(c[0], below, c[1], c[2], phase, align, **options)),
                   stuck[0])
    return (f"an integer from {need} to {limit} at these variants, experts and top-k (below it {v} with E={E}, "
            f"k={k} cannot cost as little as the dense reference at any d_inner)")
