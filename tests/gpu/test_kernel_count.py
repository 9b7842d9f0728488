"""Kernels per captured call (was scripts/gpu_count_check.py and tests/measure's GPU test): the count read
from a CUDA graph's kernel nodes equals a known number, and equals torch.profiler's count of the same
call run eagerly, for every design's decode step and forward at batch 1 and 16 (they agree unless a
library picks other kernels under capture). torch.profiler runs in a process of its own
(tests/gpu/profiler_counts.py): CUPTI, once started, slows every later launch of its process."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
DESIGNS = [("dense", 1, 1), ("swimba", 8, 1), ("swimba", 8, 2), ("separated", 8, 1), ("moe_mamba", 8, 1),
           ("rom", 8, 1), ("mamba_ssm", 1, 1)]
CASES = [f"{v}/{E}/{k}/{b}" for v, E, k in DESIGNS for b in (1, 16)]           # variant/E/k/batch
IDS = [f"{v}-E{E}-k{k}-b{b}" for v, E, k in DESIGNS for b in (1, 16)]


def test_a_known_number_of_kernels_is_counted():
    from swimbench.measure.graphs import capture
    x = torch.randn(256, 256, device="cuda")
    n = int(torch.randint(2, 20, ()))

    def call():
        y = x
        for _ in range(n):
            y = y * 1.0001                      # one elementwise kernel each
        y.zero_()                               # a fill kernel: counted, it is a kernel, not a memset
        x.clone()                               # a device copy: not counted
    assert capture(call).kernels == n + 1


@pytest.fixture(scope="module")
def profiled():
    """Every case's counts, from one process (mamba-ssm's row only where its CUDA extension loads)."""
    from swimbench import mamba_ref
    cases = ["toy"] + [c for c in CASES if not c.startswith("mamba_ssm") or mamba_ref.has_cuda_scan()]
    run = subprocess.run([sys.executable, str(HERE / "profiler_counts.py"), *cases], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_the_graph_count_equals_the_profilers_on_a_toy(profiled):
    graph, seen = profiled["toy"]["call"]
    assert graph == seen == 8


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("phase", ["decode", "prefill"])
def test_the_graph_count_equals_the_profilers(request, profiled, phase, case):
    if case.startswith("mamba_ssm"):
        request.getfixturevalue("mamba_cuda")
    graph, seen = profiled[case][phase]
    assert graph is not None and graph == seen, f"graph {graph} kernels, profiler {seen}"
