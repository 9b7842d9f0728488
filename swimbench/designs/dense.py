"""Dense Mamba-1: the reference every other design is FLOP-matched to."""
from __future__ import annotations

from . import parts
from .registry import Design, register


def macs(cfg) -> dict:
    return parts.block_macs(cfg)


def params(cfg) -> tuple[int, int]:
    total = parts.projection_params(cfg) + parts.conv_params(cfg) + parts.producer_params(cfg) + parts.core_params(cfg)
    return total, total


DESIGN = register(Design("dense", "dense", "black", "swimbench.layers.dense:DenseMamba", macs, params,
                         summary="Mamba-1, no experts", experts=False))
