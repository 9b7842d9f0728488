"""Reference of swimbench::gather_mm: each token slot through the matrix of the expert it chose."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def slot_rows(x: Tensor, idx: Tensor) -> Tensor:
    """The input row of every slot (T k, K): x holds one row per token (T) or one per slot (T k)."""
    T, k = idx.shape
    return x if x.shape[0] == T * k else x.repeat_interleave(k, dim=0)


def kept(idx: Tensor, experts: int, capacity: int) -> Tensor:
    """(T k,) bool: a slot is kept while fewer than `capacity` earlier slots (token order) chose its
    expert; capacity 0 keeps every slot."""
    flat = idx.reshape(-1)
    if capacity <= 0:
        return torch.ones_like(flat, dtype=torch.bool)
    onehot = F.one_hot(flat, experts)
    rank = (onehot.cumsum(0) * onehot).sum(-1) - 1
    return rank < capacity


def gather_mm_naive(x: Tensor, w: Tensor, idx: Tensor, capacity: int = 0, gelu: bool = False) -> Tensor:
    """x (T, K) or (T k, K), w (E, K, N), idx (T, k) -> (T k, N) in x's dtype, fp32 accumulation."""
    xs = slot_rows(x, idx).float()
    flat = idx.reshape(-1, 1)
    out = torch.zeros(flat.numel(), w.shape[-1], dtype=torch.float32, device=x.device)
    # every expert over every slot, masked: no host sync (capturable), and the slots are few
    for e in range(w.shape[0]):
        out = torch.where(flat == e, xs @ w[e].float(), out)
    if gelu:
        out = F.gelu(out)
    out = torch.where(kept(idx, w.shape[0], capacity).unsqueeze(-1), out, 0.0)
    return out.to(x.dtype)
