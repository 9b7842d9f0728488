"""Analytic FLOPs and parameters per token, component by component, from a LayerConfig.

Counted in multiply-adds (MACs) under the convention of swimbench.kernels.flops (fvcore's);
FLOPs are 2 x MACs. Every component is affine in d_inner, which is what FLOP matching solves.
Prefill and decode run the same operations per token in these layers (the decode step is the
scan's step; the decode conv is one output of the same K taps), so `phase` changes nothing for
them today; it is kept so that layers whose two phases differ can say so.
"""
from __future__ import annotations

from ..config import LayerConfig
from ..kernels.flops import combine_macs, gate_macs, mixing_macs, recurrence_macs

COMPONENTS = ("in_proj", "conv", "router", "x_proj", "dt_proj", "mixing", "scan", "gate", "out_proj")
PHASES = ("prefill", "decode")


def macs_per_token(cfg: LayerConfig, phase: str = "prefill") -> dict[str, int]:
    """Multiply-adds per token for each component of COMPONENTS."""
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}")
    D, Di, N, K, R = cfg.d_model, cfg.d_inner, cfg.d_state, cfg.d_conv, cfg.dt_rank
    E, k = cfg.experts, cfg.top_k
    # How many expert producers run per token, and how many state trajectories advance.
    producers = {"dense": 1, "swimba": k, "separated": E}[cfg.variant]
    trajectories = E if cfg.variant == "separated" else 1
    mixing = {"dense": 0, "swimba": mixing_macs(1, k, Di, N), "separated": combine_macs(1, E, Di)}
    return {
        "in_proj": D * 2 * Di,
        "conv": K * Di,
        "router": Di * E if cfg.routed else 0,
        "x_proj": producers * Di * (R + 2 * N),
        "dt_proj": producers * R * Di,
        "mixing": mixing[cfg.variant],
        "scan": recurrence_macs(1, trajectories, Di, N, skip=True),
        "gate": gate_macs(1, Di, gated=True),
        "out_proj": Di * D,
    }


def flops_per_token(cfg: LayerConfig, phase: str = "prefill") -> int:
    return 2 * sum(macs_per_token(cfg, phase).values())


def params(cfg: LayerConfig) -> tuple[int, int]:
    """(total, active per token) parameter counts."""
    D, Di, N, K, R = cfg.d_model, cfg.d_inner, cfg.d_state, cfg.d_conv, cfg.dt_rank
    E, k = cfg.experts, cfg.top_k
    shared = D * 2 * Di + Di * K + Di + Di * D                     # in_proj, conv (+bias), out_proj
    producer = Di * (R + 2 * N) + R * Di + Di                     # x_proj, dt_proj (+bias)
    router = Di * E if cfg.routed else 0
    if cfg.variant == "dense":
        total = shared + producer + Di * N + Di                   # + A_log, D
        return total, total
    if cfg.variant == "swimba":
        core = Di * N + Di
        return shared + router + E * producer + core, shared + router + k * producer + core
    # Separated: every expert's core runs on every token, so all of it is active.
    total = shared + router + E * (producer + Di * N + Di)
    return total, total
