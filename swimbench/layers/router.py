"""Top-k router on the conv output: softmax over E logits, top k kept and renormalised."""
from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor


class Router(nn.Module):
    def __init__(self, d_inner: int, experts: int, top_k: int, **factory):
        super().__init__()
        self.experts, self.top_k = experts, top_k
        self.proj = nn.Linear(d_inner, experts, bias=False, **factory) if experts > 1 else None

    def forward(self, xc: Tensor) -> tuple[Tensor, Tensor]:
        """xc (..., Di) -> gates (..., k) fp32 summing to 1, idx (..., k) int64."""
        lead = xc.shape[:-1]
        if self.proj is None:
            return xc.new_ones(*lead, 1, dtype=torch.float32), torch.zeros(*lead, 1, dtype=torch.long,
                                                                          device=xc.device)
        probs = torch.softmax(self.proj(xc).float(), dim=-1)
        gates, idx = probs.topk(self.top_k, dim=-1)
        return gates / gates.sum(-1, keepdim=True), idx

    def dense_gates(self, xc: Tensor) -> Tensor:
        """The same choice as a dense (..., E) weight vector, zero for the experts not chosen."""
        gates, idx = self(xc)
        return torch.zeros(*gates.shape[:-1], self.experts, dtype=gates.dtype,
                           device=gates.device).scatter(-1, idx, gates)
