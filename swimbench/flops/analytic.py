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

COMPONENTS = ("in_proj", "conv", "router", "x_proj", "dt_proj", "mixing", "scan", "gate", "out_proj",
              "ffn")
PHASES = ("prefill", "decode")


def macs_per_token(cfg: LayerConfig, phase: str = "prefill") -> dict[str, int]:
    """Multiply-adds per token for each component of COMPONENTS.

    Routed experts are counted at their routed load: k per token, no token dropped (the counters
    run with balanced routing, where a capacity factor >= 1 drops nothing)."""
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}")
    D, Di, N, K, R = cfg.d_model, cfg.d_inner, cfg.d_state, cfg.d_conv, cfg.dt_rank
    E, k, v = cfg.experts, cfg.top_k, cfg.variant
    # How many SSM-parameter producers run per token, and how many state trajectories advance.
    producers = {"swimba": k, "separated": E}.get(v, 1)
    trajectories = E if v == "separated" else 1
    projections = k if v == "rom" else 1          # RoM: k expert in_proj and out_proj per token
    routed = cfg.routed
    mixing = {"swimba": mixing_macs(1, k, Di, N),                  # delta, B, C mixed in the scan
              "separated": combine_macs(1, E, Di),                 # outputs of every trajectory
              "rom": k * (2 * Di + D),                             # in_proj and out_proj outputs
              "moe_mamba": k * D}.get(v, 0)                        # expert FFN outputs
    return {
        "in_proj": projections * D * 2 * Di,
        "conv": K * Di,
        "router": (D if v in ("rom", "moe_mamba") else Di) * E if routed else 0,
        "x_proj": producers * Di * (R + 2 * N),
        "dt_proj": producers * R * Di,
        "mixing": mixing,
        "scan": recurrence_macs(1, trajectories, Di, N, skip=True),
        "gate": gate_macs(1, Di, gated=True),
        "out_proj": projections * Di * D,
        "ffn": k * 2 * D * cfg.d_ff if v == "moe_mamba" else 0,
    }


def flops_per_token(cfg: LayerConfig, phase: str = "prefill") -> int:
    return 2 * sum(macs_per_token(cfg, phase).values())


def params(cfg: LayerConfig) -> tuple[int, int]:
    """(total, active per token) parameter counts."""
    D, Di, N, K, R = cfg.d_model, cfg.d_inner, cfg.d_state, cfg.d_conv, cfg.dt_rank
    E, k, v = cfg.experts, cfg.top_k, cfg.variant
    proj = D * 2 * Di + Di * D                                     # in_proj, out_proj
    conv = Di * K + Di                                             # weights and bias
    producer = Di * (R + 2 * N) + R * Di + Di                     # x_proj, dt_proj (+bias)
    core = Di * N + Di                                             # A_log, D
    router = (D if v in ("rom", "moe_mamba") else Di) * E if cfg.routed else 0
    if v == "dense":
        total = proj + conv + producer + core
        return total, total
    if v == "swimba":
        shared = proj + conv + core + router
        return shared + E * producer, shared + k * producer
    if v == "separated":
        # Every expert's core runs on every token, so all of it is active.
        total = proj + conv + router + E * (producer + core)
        return total, total
    if v == "rom":
        shared = conv + producer + core + router
        return shared + E * proj, shared + k * proj
    expert_ffn = 2 * D * cfg.d_ff                                  # moe_mamba
    shared = proj + conv + producer + core + router
    return shared + E * expert_ffn, shared + k * expert_ffn
