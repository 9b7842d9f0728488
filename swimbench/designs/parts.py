"""Multiply-adds and parameters of the pieces the designs share: the Mamba block around the recurrence, its
SSM-parameter producer and a router. Counted as in swimbench.kernels.flops (fvcore's convention). Every
count is affine in d_inner, which is what FLOP matching solves."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import LayerConfig


def _opf():
    # imported on first count, not with the registry: the CLI validates its input before torch loads
    from ..kernels import flops
    return flops


def block_macs(cfg: "LayerConfig", producers: int = 1, trajectories: int = 1, projections: int = 1) -> dict:
    """The Mamba block per token: `projections` in_proj and out_proj, the conv, `producers` x_proj and
    dt_proj, the recurrence of `trajectories` state trajectories, and the gate."""
    opf = _opf()
    D, Di, N, K, R = cfg.d_model, cfg.d_inner, cfg.d_state, cfg.d_conv, cfg.dt_rank
    return {"in_proj": projections * D * 2 * Di, "conv": K * Di, "x_proj": producers * Di * (R + 2 * N),
            "dt_proj": producers * R * Di, "scan": opf.recurrence_macs(1, trajectories, Di, N, skip=True),
            "gate": opf.gate_macs(1, Di, gated=True), "out_proj": projections * Di * D}


def router_macs(cfg: "LayerConfig", width: int) -> int:
    """A router of `width` inputs; only when there is a choice to make."""
    return width * cfg.experts if cfg.routed else 0


def projection_params(cfg: "LayerConfig") -> int:
    """in_proj and out_proj."""
    return cfg.d_model * 2 * cfg.d_inner + cfg.d_inner * cfg.d_model


def conv_params(cfg: "LayerConfig") -> int:
    return cfg.d_inner * cfg.d_conv + cfg.d_inner


def producer_params(cfg: "LayerConfig") -> int:
    """x_proj and dt_proj with its bias."""
    Di, N, R = cfg.d_inner, cfg.d_state, cfg.dt_rank
    return Di * (R + 2 * N) + R * Di + Di


def core_params(cfg: "LayerConfig") -> int:
    """A_log and D."""
    return cfg.d_inner * cfg.d_state + cfg.d_inner


def router_params(cfg: "LayerConfig", width: int) -> int:
    return width * cfg.experts if cfg.routed else 0
