"""Swimba: k of E experts produce the SSM parameters, the router's gates mix them in parameter space,
and the recurrence runs once."""
from __future__ import annotations

from . import parts
from .registry import Design, register


def macs(cfg) -> dict:
    from ..kernels.flops import mixing_macs
    m = parts.block_macs(cfg, producers=cfg.top_k)
    m["router"] = parts.router_macs(cfg, cfg.d_inner)
    m["mixing"] = mixing_macs(1, cfg.top_k, cfg.d_inner, cfg.d_state)     # delta, B and C mixed once
    return m


def params(cfg) -> tuple[int, int]:
    shared = parts.projection_params(cfg) + parts.conv_params(cfg) + parts.core_params(cfg) \
        + parts.router_params(cfg, cfg.d_inner)
    return shared + cfg.experts * parts.producer_params(cfg), shared + cfg.top_k * parts.producer_params(cfg)


DESIGN = register(Design("swimba", "Swimba", "tab:blue", "swimbench.layers.swimba:Swimba", macs, params,
                         summary="experts mixed in parameter space, one recurrence", recurrence="swimba"))
