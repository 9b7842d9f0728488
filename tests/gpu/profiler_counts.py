"""Run by tests/gpu/test_kernel_count.py in a process of its own: for each case named on the command line,
the kernels of its captured call (`swimbench.measure.kernel_count`, read from the CUDA graph) and
torch.profiler's count of the same call run eagerly. CUPTI, once started, slows every later launch of its
process (pytorch#144455), so the profiler never runs in the test process. Prints one JSON object,
{case: {"decode": [graph, profiler], "prefill": [graph, profiler]}}, on its last line.

    python3 tests/gpu/profiler_counts.py toy dense/1/1/1 swimba/8/2/16 ...   (variant/E/k/batch)
"""
from __future__ import annotations

import json
import sys

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

SEQ = 2048


def profiled(fn) -> int:
    """CUDA kernels of one eager call (after one unprofiled call), copies and fills left out as the graph
    count leaves their nodes out."""
    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return sum(1 for e in prof.events() if e.device_type == DeviceType.CUDA
               and not e.name.startswith(("Memcpy", "Memset")) and not getattr(e, "is_user_annotation", False))


def toy() -> dict:
    """Seven multiplies and a fill (kernels), and a device copy (not one): 8."""
    from swimbench.measure.graphs import capture
    x = torch.randn(256, 256, device="cuda")

    def call():
        y = x
        for _ in range(7):
            y = y * 1.0001
        y.zero_()
        x.clone()
    return {"call": [capture(call).kernels, profiled(call)]}


@torch.no_grad()
def design(variant: str, E: int, k: int, batch: int) -> dict:
    from swimbench.measure import workload
    from swimbench.measure.graphs import capture
    from swimbench.sweeps.spec import Point, Sweep
    sweep = Sweep()
    model, _ = workload.build(Point(variant, E, k, SEQ, batch, 1), sweep, "cuda", 0)
    x1 = torch.randn(batch, 1, sweep.d_model, device="cuda", dtype=torch.bfloat16)
    cache = workload.random_cache(model, batch)
    xs = torch.randn(batch, SEQ, sweep.d_model, device="cuda", dtype=torch.bfloat16)
    step = lambda: model.step(x1, cache)
    fwd = lambda: model(xs)
    return {"decode": [capture(step).kernels, profiled(step)],
            "prefill": [capture(fwd, warmup=1).kernels, profiled(fwd)]}


def main(cases: list[str]) -> None:
    out = {}
    for case in cases:
        if case == "toy":
            out[case] = toy()
        else:
            variant, E, k, batch = case.split("/")
            out[case] = design(variant, int(E), int(k), int(batch))
        torch.cuda.empty_cache()
        print(case, out[case], file=sys.stderr, flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
