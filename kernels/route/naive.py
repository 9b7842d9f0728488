"""Reference of swimbench::route: softmax over E logits, then top-k (learned) or a forced choice
(balanced, skewed), the chosen gates renormalised."""
from __future__ import annotations

import torch
from torch import Tensor

MODES = ("learned", "balanced", "skewed")
GOLDEN = 0.6180339887498949


def forced(tokens: int, experts: int, k: int, mode: str, device) -> Tensor:
    """(tokens, k) int64: `balanced` sends slot t k + j to expert (t k + j) mod E; `skewed` draws each
    token's first expert from a power law (expert 0 takes about E^(-1/3) of the tokens) over a
    low-discrepancy sequence, the others following it."""
    t = torch.arange(tokens, device=device).view(tokens, 1)
    j = torch.arange(k, device=device)
    if mode == "balanced":
        return (t * k + j) % experts
    u = torch.frac((t.double() + 0.5) * GOLDEN)
    first = (experts * (u * u * u)).long().clamp_(max=experts - 1)
    return (first + j) % experts


def route_naive(x: Tensor, weight: Tensor, k: int, mode: str) -> tuple[Tensor, Tensor]:
    """x (T, K), weight (E, K) -> gates (T, k) fp32 summing to 1, idx (T, k) int64."""
    probs = torch.softmax((x @ weight.t()).float(), dim=-1)
    if mode == "learned":
        gates, idx = probs.topk(k, dim=-1)
    else:
        idx = forced(x.shape[0], weight.shape[0], k, mode, x.device)
        gates = probs.gather(-1, idx)
    return gates / gates.sum(-1, keepdim=True), idx
