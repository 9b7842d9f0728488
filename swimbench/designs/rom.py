"""Routing Mamba (RoM): experts on the in and out projections, one shared recurrence."""
from __future__ import annotations

from . import parts
from .registry import Design, register


def macs(cfg) -> dict:
    m = parts.block_macs(cfg, projections=cfg.top_k)                     # k expert in_proj and out_proj
    m["router"] = parts.router_macs(cfg, cfg.d_model)
    m["mixing"] = cfg.top_k * (2 * cfg.d_inner + cfg.d_model)            # in_proj and out_proj outputs
    return m


def params(cfg) -> tuple[int, int]:
    shared = parts.conv_params(cfg) + parts.producer_params(cfg) + parts.core_params(cfg) \
        + parts.router_params(cfg, cfg.d_model)
    return shared + cfg.experts * parts.projection_params(cfg), shared + cfg.top_k * parts.projection_params(cfg)


DESIGN = register(Design("rom", "Routing Mamba", "tab:brown", "swimbench.layers.rom:RoutingMamba", macs, params,
                         summary="experts on the in and out projections"))
