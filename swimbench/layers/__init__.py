"""The token mixers swimbench compares, all sharing one LayerConfig (definitions: docs/layers.md)."""
from __future__ import annotations

from ..config import LayerConfig
from .base import Cache, TokenMixer
from .dense import DenseMamba
from .moe_mamba import MoEMamba
from .rom import RoutingMamba
from .separated import Separated
from .swimba import Swimba

LAYERS = {"dense": DenseMamba, "swimba": Swimba, "separated": Separated, "moe_mamba": MoEMamba,
          "rom": RoutingMamba}


def build_layer(cfg: LayerConfig, device=None, dtype=None):
    return LAYERS[cfg.variant](cfg, device=device, dtype=dtype)


__all__ = ["Cache", "TokenMixer", "DenseMamba", "Swimba", "Separated", "MoEMamba", "RoutingMamba",
           "LAYERS", "build_layer"]
