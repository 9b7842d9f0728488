"""MoE-Mamba: a dense Mamba block followed by a Switch (top-k) mixture-of-experts feed-forward layer."""
from __future__ import annotations

from . import parts
from .registry import Design, register


def _expert_ffn(cfg) -> int:
    return 2 * cfg.d_model * cfg.d_ff


def macs(cfg) -> dict:
    m = parts.block_macs(cfg)
    m["router"] = parts.router_macs(cfg, cfg.d_model)
    m["mixing"] = cfg.top_k * cfg.d_model                                # expert FFN outputs combined
    m["ffn"] = cfg.top_k * _expert_ffn(cfg)
    return m


def params(cfg) -> tuple[int, int]:
    shared = parts.projection_params(cfg) + parts.conv_params(cfg) + parts.producer_params(cfg) \
        + parts.core_params(cfg) + parts.router_params(cfg, cfg.d_model)
    return shared + cfg.experts * _expert_ffn(cfg), shared + cfg.top_k * _expert_ffn(cfg)


DESIGN = register(Design("moe_mamba", "MoE-Mamba", "tab:purple", "swimbench.layers.moe_mamba:MoEMamba", macs,
                         params, summary="Mamba, then a Switch MoE feed-forward layer"))
