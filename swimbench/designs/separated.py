"""A separated MoE-SSM: every expert runs its own recurrence on every token; the gates combine outputs."""
from __future__ import annotations

from . import parts
from .registry import Design, register


def macs(cfg) -> dict:
    from ..kernels.flops import combine_macs
    E = cfg.experts
    m = parts.block_macs(cfg, producers=E, trajectories=E)
    m["router"] = parts.router_macs(cfg, cfg.d_inner)
    m["mixing"] = combine_macs(1, E, cfg.d_inner)                       # outputs of every trajectory
    return m


def params(cfg) -> tuple[int, int]:
    # every expert's core runs on every token, so all of it is active
    total = parts.projection_params(cfg) + parts.conv_params(cfg) + parts.router_params(cfg, cfg.d_inner) \
        + cfg.experts * (parts.producer_params(cfg) + parts.core_params(cfg))
    return total, total


DESIGN = register(Design("separated", "separated MoE-SSM", "tab:orange", "swimbench.layers.separated:Separated",
                         macs, params, summary="one recurrence per expert", recurrence="separated"))
