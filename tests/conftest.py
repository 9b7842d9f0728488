"""Test setup. TRITON_INTERPRET must be set before any Triton kernel is defined, so it is set here,
before swimbench is imported: on a machine without a GPU the Triton kernels then run on the CPU."""
import os
import zlib

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

# Fresh random inputs on every run; SWIMBENCH_SEED=<printed seed> reproduces a failing run.
SEED = int(os.environ.get("SWIMBENCH_SEED") or int.from_bytes(os.urandom(3), "little"))


def pytest_report_header(config):
    return f"swimbench: SWIMBENCH_SEED={SEED}  TRITON_INTERPRET={os.environ['TRITON_INTERPRET']}"


@pytest.fixture(autouse=True)
def _seed(request):
    torch.manual_seed(SEED + zlib.crc32(request.node.nodeid.encode()))
    yield
