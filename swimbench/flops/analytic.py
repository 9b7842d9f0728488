"""Analytic FLOPs and parameters per token, component by component, from a LayerConfig.

Counted in multiply-adds (MACs) under the convention of swimbench.kernels.flops (fvcore's);
FLOPs are 2 x MACs. Every component is affine in d_inner, which is what FLOP matching solves.
Prefill and decode run the same operations per token in these layers (the decode step is the
scan's step; the decode conv is one output of the same K taps), so `phase` changes nothing for
them today; it is kept so that layers whose two phases differ can say so.
"""
from __future__ import annotations

from .. import designs
from ..config import LayerConfig
from ..designs import COMPONENTS

PHASES = ("prefill", "decode")


def macs_per_token(cfg: LayerConfig, phase: str = "prefill") -> dict[str, int]:
    """Multiply-adds per token for each component of COMPONENTS, as the configuration's design counts
    them (swimbench.designs); components the design lacks are zero.

    Routed experts are counted at their routed load: k per token, no token dropped (the counters
    run with balanced routing, where a capacity factor >= 1 drops nothing)."""
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}")
    counted = designs.get(cfg.variant).macs(cfg)
    unknown = set(counted) - set(COMPONENTS)
    if unknown:
        raise ValueError(f"{cfg.variant} counts components outside COMPONENTS: {', '.join(sorted(unknown))}")
    return {c: int(counted.get(c, 0)) for c in COMPONENTS}


def flops_per_token(cfg: LayerConfig, phase: str = "prefill") -> int:
    return 2 * sum(macs_per_token(cfg, phase).values())


def params(cfg: LayerConfig) -> tuple[int, int]:
    """(total, active per token) parameter counts, as the configuration's design counts them."""
    total, active = designs.get(cfg.variant).params(cfg)
    return int(total), int(active)
