"""Test setup. TRITON_INTERPRET must be set before any Triton kernel is defined, so it is set when pytest
is configured, before any test module (and so swimbench) is imported: on a machine without a GPU the
Triton kernels then run on the CPU.

The interpreter runs a kernel token by token in numpy, so the custom ops take their pure-PyTorch
references by default here (SWIMBENCH_KERNELS=reference); the tests whose subject is the kernels
call them directly (tests/kernels) or ask for them through the ops with the `triton_ops` fixture.

The GPU suite (tests/gpu) is the exception, and `compiled_kernels` is the one rule for it: a run whose
arguments select only tests under tests/gpu, on a machine with a CUDA GPU, sets neither variable, so
that the ops run the compiled Triton kernels. Every other run, on any machine, is the CPU suite as it
always was (and tests/gpu/conftest.py skips the GPU tests in it)."""
import os
import zlib
from pathlib import Path

import pytest
import torch

GPU_SUITE = Path(__file__).resolve().parent / "gpu"

# Fresh random inputs on every run; SWIMBENCH_SEED=<printed seed> reproduces a failing run. Exported, so
# that pytest-xdist's workers (tests/gpu runs under it on the GPU machine) draw the run's inputs too.
SEED = int(os.environ.get("SWIMBENCH_SEED") or int.from_bytes(os.urandom(3), "little"))
os.environ["SWIMBENCH_SEED"] = str(SEED)


def compiled_kernels(config) -> bool:
    """Whether this run takes the compiled kernels: it selects tests under tests/gpu only (paths, with or
    without ::test ids) and CUDA is available."""
    if not config.args or not torch.cuda.is_available():
        return False
    here = Path(config.invocation_params.dir)
    paths = [(here / arg.split("::", 1)[0]).resolve() for arg in config.args]
    return all(p == GPU_SUITE or GPU_SUITE in p.parents for p in paths)


def pytest_configure(config):
    if not compiled_kernels(config):
        os.environ.setdefault("TRITON_INTERPRET", "1")
        os.environ.setdefault("SWIMBENCH_KERNELS", "reference")


def pytest_report_header(config):
    return (f"swimbench: SWIMBENCH_SEED={SEED}  TRITON_INTERPRET={os.environ.get('TRITON_INTERPRET', 'unset')}  "
            f"SWIMBENCH_KERNELS={os.environ.get('SWIMBENCH_KERNELS', 'unset')}")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """The seed again at the end, which `pytest -q` (make test) shows although it hides the header."""
    terminalreporter.write_line(f"swimbench: SWIMBENCH_SEED={SEED} reproduces this run's random inputs")


@pytest.fixture
def triton_ops(monkeypatch):
    """The custom ops dispatch as in production: the Triton kernels (interpreted on the CPU)."""
    monkeypatch.setenv("SWIMBENCH_KERNELS", "auto")


@pytest.fixture(autouse=True)
def _seed(request):
    torch.manual_seed(SEED + zlib.crc32(request.node.nodeid.encode()))
    yield
