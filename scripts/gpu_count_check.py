#!/usr/bin/env python3
"""The kernel count of a captured decode step and forward (`swimbench.measure.kernel_count`, read from the
graph) beside torch.profiler's count of the same call run eagerly, in a process of its own (CUPTI, once
started, slows later launches; the sweep never profiles). The two agree unless a library picks other
kernels under capture.

    python3 scripts/gpu_count_check.py
"""
from __future__ import annotations

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from swimbench.measure import workload
from swimbench.measure.graphs import capture
from swimbench.sweeps.spec import Point, Sweep


def profiled(fn) -> int:
    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return sum(1 for e in prof.events() if e.device_type == DeviceType.CUDA
               and not e.name.startswith(("Memcpy", "Memset")) and not getattr(e, "is_user_annotation", False))


def main():
    x = torch.randn(256, 256, device="cuda")

    def toy():
        y = x
        for _ in range(7):
            y = y * 1.0001
        y.zero_()
        x.clone()
    print(f"toy: graph {capture(toy).kernels}, profiler {profiled(toy)}, expected 8", flush=True)
    sweep = Sweep()
    rows = []
    with torch.no_grad():
        for variant, E, k in [("dense", 1, 1), ("swimba", 8, 1), ("swimba", 8, 2), ("separated", 8, 1),
                              ("moe_mamba", 8, 1), ("rom", 8, 1), ("mamba_ssm", 1, 1)]:
            for batch in (1, 16):
                point = Point(variant, E, k, 2048, batch, 1)
                model, _ = workload.build(point, sweep, "cuda", 0)
                x1 = torch.randn(batch, 1, sweep.d_model, device="cuda", dtype=torch.bfloat16)
                cache = workload.random_cache(model, batch)
                step = lambda: model.step(x1, cache)
                xs = torch.randn(batch, 2048, sweep.d_model, device="cuda", dtype=torch.bfloat16)
                fwd = lambda: model(xs)
                rows.append((point.label(), capture(step).kernels, profiled(step), capture(fwd, warmup=1).kernels,
                             profiled(fwd)))
                print("%-28s decode graph %4s profiler %4s | prefill graph %4s profiler %4s" % rows[-1], flush=True)


if __name__ == "__main__":
    main()
