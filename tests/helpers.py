"""Shared test helpers: relative error as METHOD.md defines it, and the per-dtype bounds the package
declares (swimbench.kernels.accuracy)."""
import torch

from swimbench.kernels.accuracy import REL_TOL, STATE_TOL  # noqa: F401  (the tests read them from here)


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    assert not torch.isnan(out).any(), "NaN in output"
    out, ref = out.double(), ref.double()
    return ((out - ref).norm() / ref.norm().clamp_min(1e-30)).item()
