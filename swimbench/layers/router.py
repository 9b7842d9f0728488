"""Top-k router: softmax over E logits, top k kept and renormalised.

For benchmarks the choice can be forced (`routing`), because load balance changes the timing of
dispatched experts and an untrained router's choices are arbitrary: `balanced` sends token slot i
to expert i mod E (every expert gets the same load), `skewed` draws each token's first expert
from a power law (expert 0 takes about E^(-1/3) of the tokens: half of them at E = 8). The router's
logits are computed in every mode, so its cost is the same; the gates are the softmax weights of
the experts actually chosen. The whole decision is one op (swimbench::route: one kernel on the GPU,
capturable in graphs); its reference is kernels/route/naive.py.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from ..kernels import route


class Router(nn.Module):
    def __init__(self, d_in: int, experts: int, top_k: int, routing: str = "learned", **factory):
        super().__init__()
        self.experts, self.top_k, self.routing = experts, top_k, routing
        self.proj = nn.Linear(d_in, experts, bias=False, **factory) if experts > 1 else None

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (..., d_in) -> gates (..., k) fp32 summing to 1, idx (..., k) int64."""
        lead = x.shape[:-1]
        if self.proj is None:
            return x.new_ones(*lead, 1, dtype=torch.float32), torch.zeros(*lead, 1, dtype=torch.long,
                                                                         device=x.device)
        gates, idx = route(x.reshape(-1, x.shape[-1]), self.proj.weight, self.top_k, self.routing)
        return gates.view(*lead, -1), idx.view(*lead, -1)

    def dense_gates(self, x: Tensor) -> Tensor:
        """The same choice as a dense (..., E) weight vector, zero for the experts not chosen."""
        gates, idx = self(x)
        return torch.zeros(*gates.shape[:-1], self.experts, dtype=gates.dtype,
                           device=gates.device).scatter(-1, idx, gates)
