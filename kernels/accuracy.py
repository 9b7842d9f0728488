"""How close each op's Triton kernel must come to its pure-PyTorch reference, and how it is measured.

The reference is computed in fp32 from the same (low-precision) inputs, so the bound is the rounding
of the inputs and outputs to the op's dtype, not a property of the arithmetic. The kernel tests and
`swimbench doctor` both read these bounds from here.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

# ||out - ref|| / ||ref|| bounds per input dtype (fp32 arithmetic lands far under 1e-3).
REL_TOL = {torch.float64: 1e-10, torch.float32: 1e-5, torch.float16: 3e-3, torch.bfloat16: 1e-2}
# SSM states are fp32 in every dtype: only the inputs' rounding separates them from the reference.
STATE_TOL = 1e-4


def rel_err(out: Tensor, ref: Tensor) -> float:
    """||out - ref|| / ||ref|| in float64 (a zero reference counts as 1e-30); NaN or inf in out gives inf."""
    out, ref = out.double(), ref.double()
    if not torch.isfinite(out).all():
        return math.inf
    return ((out - ref).norm() / ref.norm().clamp_min(1e-30)).item()
