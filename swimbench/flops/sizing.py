"""FLOP matching: the d_inner at which a variant costs what the dense reference costs per token."""
from __future__ import annotations

import math
from dataclasses import dataclass

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
