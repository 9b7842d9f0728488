"""The token mixers swimbench compares, all sharing one LayerConfig (definitions: docs/layers.md)."""
from __future__ import annotations

from ..config import LayerConfig
from .base import Cache, TokenMixer
from .dense import DenseMamba
from .separated import Separated
from .swimba import Swimba

LAYERS = {"dense": DenseMamba, "swimba": Swimba, "separated": Separated}


def build_layer(cfg: LayerConfig, device=None, dtype=None) -> TokenMixer:
    return LAYERS[cfg.variant](cfg, device=device, dtype=dtype)


__all__ = ["Cache", "TokenMixer", "DenseMamba", "Swimba", "Separated", "LAYERS", "build_layer"]
