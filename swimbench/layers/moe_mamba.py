"""MoE-Mamba: a Mamba layer followed by a Switch MoE feed-forward layer, as one block.

forward returns the block's update to the residual stream, m + ffn(x + m) with m = mamba(x), so
that stacking adds x once as for every other layer. Its dense comparator in swimbench is the Mamba
layer alone at matched FLOPs (the reference every variant is sized against)."""
from __future__ import annotations

import torch.nn as nn
from torch import Tensor

from ..config import LayerConfig
from .base import Cache
from .dense import DenseMamba
from .ffn import SwitchFFN


class MoEMamba(nn.Module):
    def __init__(self, cfg: LayerConfig, device=None, dtype=None):
        super().__init__()
        self.cfg = cfg
        self.mamba = DenseMamba(cfg.with_(variant="dense", experts=1, top_k=1), device, dtype)
        self.ffn = SwitchFFN(cfg.d_model, cfg.d_ff, cfg.experts, cfg.top_k, cfg.capacity_factor,
                             cfg.routing, device=device, dtype=dtype)

    def expert_parameters(self):
        """The stacks indexed by expert that tokens are dispatched to."""
        return [self.ffn.w1, self.ffn.w2]

    def allocate_cache(self, batch: int) -> Cache:
        return self.mamba.allocate_cache(batch)

    def forward(self, x: Tensor, cache: Cache = None) -> Tensor:
        m = self.mamba(x, cache)
        return m + self.ffn(x + m)

    def step(self, x: Tensor, cache: Cache) -> Tensor:
        m = self.mamba.step(x, cache)
        return m + self.ffn(x + m)
