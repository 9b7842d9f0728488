"""Shared test helpers: relative error as METHOD.md defines it, and per-dtype bounds."""
import torch

# ||out - ref|| / ||ref|| bounds per input dtype (fp32 arithmetic lands far under 1e-3).
REL_TOL = {torch.float64: 1e-10, torch.float32: 1e-5, torch.float16: 3e-3, torch.bfloat16: 1e-2}


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    assert not torch.isnan(out).any(), "NaN in output"
    out, ref = out.double(), ref.double()
    return ((out - ref).norm() / ref.norm().clamp_min(1e-30)).item()
