"""The GPU suite: the acceptance checks of the kernels, layers, models and measurements on a CUDA GPU,
with the compiled Triton kernels (`python3 -m pytest tests/gpu`; tests/conftest.py's `compiled_kernels`
says when a run takes them). Without a GPU every test here is collected and skipped; on a GPU in a run
that interprets the kernels (the CPU suite's, e.g. `pytest` over all of tests/) they are skipped too,
since they would compare the references with themselves."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
NO_GPU = "needs a CUDA GPU"
INTERPRETED = ("needs the compiled Triton kernels: this run interprets them (TRITON_INTERPRET or "
               "SWIMBENCH_KERNELS=reference); run the GPU suite on its own: python3 -m pytest tests/gpu")


def why_not_here() -> str | None:
    if not torch.cuda.is_available():
        return NO_GPU
    from swimbench.kernels import _dispatch
    if _dispatch.interpreting() or _dispatch.reference_forced():
        return INTERPRETED
    return None


def pytest_collection_modifyitems(config, items):
    mine = [item for item in items if HERE in Path(str(item.path)).parents]
    reason = why_not_here() if mine else None
    if reason:
        for item in mine:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def mamba_cuda():
    """mamba-ssm with its CUDA extension (selective_scan_cuda), which its Mamba layer and language model
    need on a GPU; skipped where it did not load (swimbench/mamba_ref.py)."""
    from swimbench import mamba_ref
    if mamba_ref.mamba_ssm() is None:
        pytest.skip("needs mamba-ssm (not installed: carry its wheel in .whl/)")
    if not mamba_ref.has_cuda_scan():
        pytest.skip("needs mamba-ssm's CUDA extension (selective_scan_cuda did not load)")
    return mamba_ref
