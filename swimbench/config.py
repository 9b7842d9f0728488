"""Shared configuration of the token mixers and of the dense reference they are matched to. Which variants
exist, and each one's own rules, is the design registry's (swimbench.designs)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Optional

from . import designs

ROUTINGS = ("learned", "balanced", "skewed")


@dataclass(frozen=True)
class LayerConfig:
    """One token mixer. Notation of docs/layers.md: D, Di, N, K, R, E, k."""
    variant: str = "dense"
    d_model: int = 2048          # D
    d_inner: int = 4096          # Di (expand * D for dense; solved by sizing for the others)
    d_state: int = 16            # N
    d_conv: int = 4              # K
    dt_rank: Optional[int] = None  # R; None means ceil(D / 16), as mamba-ssm's "auto"
    experts: int = 1             # E
    top_k: int = 1               # k
    routing: str = "learned"     # how experts are chosen: the router's top-k, or a forced pattern
    capacity_factor: float = 1.25  # MoE-Mamba's Switch FFN: slots per expert = cf * T k / E
    ffn_mult: int = 1            # MoE-Mamba's Switch FFN: expert width d_ff = ffn_mult * d_inner

    def __post_init__(self):
        design = designs.get(self.variant)          # ValueError naming the registered variants
        if self.dt_rank is None:
            object.__setattr__(self, "dt_rank", math.ceil(self.d_model / 16))
        if not 1 <= self.top_k <= self.experts:
            raise ValueError("top_k must be between 1 and experts")
        if self.routing not in ROUTINGS:
            raise ValueError(f"routing must be one of {', '.join(ROUTINGS)}")
        design.check(self)

    @property
    def d_ff(self) -> int:
        return self.ffn_mult * self.d_inner

    @property
    def routed(self) -> bool:
        """A router exists only when there is a choice to make."""
        return self.experts > 1

    def with_(self, **kw) -> "LayerConfig":
        return replace(self, **kw)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Reference:
    """The dense layer every variant is FLOP-matched to."""
    d_model: int = 2048
    expand: int = 2
    d_state: int = 16
    d_conv: int = 4

    def dense(self) -> LayerConfig:
        return LayerConfig("dense", self.d_model, self.expand * self.d_model, self.d_state, self.d_conv)
