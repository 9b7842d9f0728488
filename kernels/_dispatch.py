"""Which implementation an op runs: the Triton kernel on CUDA tensors, the reference elsewhere.

Under TRITON_INTERPRET=1 (set before the kernels are defined) the Triton kernels also run on CPU
tensors through Triton's interpreter; that is how the CPU tests exercise them.
SWIMBENCH_KERNELS=reference forces the references everywhere (debugging, and tests whose subject is
not the kernels). It is a separate switch because Triton reads TRITON_INTERPRET once per process:
changing it after Triton is loaded breaks interpreted kernels.
"""
from __future__ import annotations

import importlib
import os
from functools import lru_cache
from typing import Callable, Optional

from torch import Tensor


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


@lru_cache(maxsize=None)
def load_fused(module: str, name: str) -> Optional[Callable]:
    """The Triton implementation `name` in `module`, or None when Triton or the module is missing."""
    try:
        return getattr(importlib.import_module(module, __package__), name)
    except (ImportError, AttributeError):
        return None


KERNELS_ENV, KERNEL_MODES = "SWIMBENCH_KERNELS", ("auto", "reference")


def kernel_mode() -> str:
    """SWIMBENCH_KERNELS: auto (unset) or reference; ValueError naming the variable for anything else,
    which would otherwise time the fused kernels while the user meant the references, or the reverse."""
    mode = os.environ.get(KERNELS_ENV, "auto")
    if mode not in KERNEL_MODES:
        raise ValueError(f"{KERNELS_ENV}={mode!r} is not allowed: expected one of {', '.join(KERNEL_MODES)} "
                         f"(or unset)")
    return mode


def reference_forced() -> bool:
    return kernel_mode() == "reference"


def pick(naive: Callable, module: str, name: str, like: Tensor) -> Callable:
    """The fused implementation if `like` lives where Triton runs and one exists, else the reference."""
    if (like.is_cuda or interpreting()) and not reference_forced():
        fused = load_fused(module, name)
        if fused is not None:
            return fused
    return naive
