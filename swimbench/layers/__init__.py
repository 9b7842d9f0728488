"""The token mixers swimbench compares, all sharing one LayerConfig (definitions: docs/layers.md). Which
class a variant builds is its design's (swimbench.designs.build_layer)."""
from __future__ import annotations

from .base import Cache, TokenMixer
from .dense import DenseMamba
from .moe_mamba import MoEMamba
from .rom import RoutingMamba
from .separated import Separated
from .swimba import Swimba

__all__ = ["Cache", "TokenMixer", "DenseMamba", "Swimba", "Separated", "MoEMamba", "RoutingMamba"]
