"""Which kernels a run takes (tests/conftest.py's `compiled_kernels`): the GPU suite alone on a machine with
CUDA runs the compiled Triton kernels; every other run, or any run without CUDA, is the CPU suite with the
interpreter and the references. And the GPU suite skips, saying why, wherever it cannot run."""
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from .conftest import GPU_SUITE, compiled_kernels
from .gpu import conftest as gpu

ROOT = GPU_SUITE.parents[1]


def config(*args, cwd=ROOT):
    return SimpleNamespace(args=list(args), invocation_params=SimpleNamespace(dir=Path(cwd)))


@pytest.mark.parametrize("cuda", [True, False], ids=["cuda", "no-cuda"])
def test_only_the_gpu_suite_alone_on_a_gpu_takes_the_compiled_kernels(monkeypatch, cuda):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    alone = [config("tests/gpu"), config("tests/gpu/test_matrix.py::test_option_matches_the_reference_ops[x]"),
             config("tests/gpu/test_layers.py", "tests/gpu/test_decode.py"), config("test_kernels.py", cwd=GPU_SUITE),
             config(str(GPU_SUITE)), config(".", cwd=GPU_SUITE)]
    mixed = [config(), config("tests"), config("tests/gpu", "tests/kernels/test_conv.py"), config("."),
             config("tests/test_architecture.py"), config("../kernels", cwd=GPU_SUITE)]
    assert [compiled_kernels(c) for c in alone] == [cuda] * len(alone)
    assert not any(compiled_kernels(c) for c in mixed)


def test_the_gpu_suite_says_why_it_skips(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu.why_not_here() == "needs a CUDA GPU"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for env in ({"TRITON_INTERPRET": "1"}, {"TRITON_INTERPRET": "0", "SWIMBENCH_KERNELS": "reference"}):
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        assert gpu.why_not_here() == gpu.INTERPRETED
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    monkeypatch.delenv("SWIMBENCH_KERNELS")
    assert gpu.why_not_here() is None
