"""What the GPU tests share: outputs poisoned before a kernel writes them, so that an element it leaves
unwritten reads NaN (or an impossible index) instead of whatever the allocator held."""
from __future__ import annotations

from contextlib import contextmanager

import torch


def poison_(t: torch.Tensor) -> torch.Tensor:
    """Fill `t` in place with a value no kernel writes: NaN for floats, the largest value for integers."""
    if t.is_floating_point():
        return t.fill_(float("nan"))
    return t.fill_(True if t.dtype == torch.bool else torch.iinfo(t.dtype).max)


@contextmanager
def poisoned():
    """While open, torch.empty and torch.empty_like hand out poisoned tensors (the buffers the ops
    allocate for their outputs and workspaces)."""
    empty, empty_like = torch.empty, torch.empty_like
    torch.empty = lambda *a, **k: poison_(empty(*a, **k))
    torch.empty_like = lambda *a, **k: poison_(empty_like(*a, **k))
    try:
        yield
    finally:
        torch.empty, torch.empty_like = empty, empty_like
