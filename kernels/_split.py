"""Split-K with a deterministic fix-up, shared by the kernels whose outputs are too narrow to keep the
GPU busy (swimbench::gather_mm's x_proj, swimbench::route's E logits).

Each program of a split writes its fp32 partial; an atomic ticket per output block tells the last
program to arrive, which adds the partials in split order (so every call gives the same bits, graph
or eager) and resets the ticket, so the next call, or graph replay, finds it zero."""
from __future__ import annotations

import torch
from torch import Tensor

_TICKETS: dict = {}


def tickets(device: torch.device, n: int) -> Tensor:
    """n zeroed int32 tickets, kept between calls (every call leaves them zero). Grown outside any CUDA
    graph capture: the first call of a shape is a warm-up call."""
    buf = _TICKETS.get(device)
    if buf is None or buf.numel() < n:
        buf = torch.zeros(max(n, 4096), dtype=torch.int32, device=device)
        _TICKETS[device] = buf
    return buf


def all_zero() -> bool:
    """Whether every ticket is back at zero (tests)."""
    return all(int(t.abs().sum()) == 0 for t in _TICKETS.values())
