#!/usr/bin/env python3
"""Where Swimba's mixing kernel spends its time (no hardware counters): time variants that each leave
one stage out, graph-replayed, at b1 l8192 d_inner 3920 (the k = 2 layer's width) and 4096.

    python3 scripts/gpu_mix_probe.py

Variants: as the layer runs it; without the delta bias gather; without softplus; rows in token order
(no gather by position); k = 1. Bytes are dt's rows read once and delta written once (B and C are
n values a token); the floor is those bytes at the measured copy bandwidth.
"""
from __future__ import annotations

import torch
from triton.testing import do_bench, do_bench_cudagraph

from swimbench.kernels.swimba_mix import fused as mf
from swimbench.measure.ceilings import copy_gbps

DEV, DT = "cuda", torch.bfloat16


def main():
    gbps = copy_gbps(DEV)
    print(f"{torch.cuda.get_device_name()}: copy {gbps:,.0f} GB/s", flush=True)
    T, n, E = 8192, 16, 8
    for d in (3920, 4096):
        for k in (2, 1):
            dt = torch.randn(T * k, d, device=DEV, dtype=DT)
            dbl = torch.randn(T * k, 128 + 2 * n, device=DEV, dtype=DT)
            B, C = dbl[:, 128:128 + n], dbl[:, 128 + n:]
            perm = torch.randperm(T * k, device=DEV).view(T, k)
            ident = torch.arange(T * k, device=DEV).view(T, k)
            g = torch.softmax(torch.randn(T, k, device=DEV), -1)
            idx = torch.randint(0, E, (T, k), device=DEV)
            bias = torch.randn(E, d, device=DEV) * 0.1
            nbytes = T * k * d * 2 + T * d * 2
            variants = {"as in the layer": (perm, bias, True), "no bias": (perm, None, True),
                        "no softplus": (perm, bias, False), "rows in token order": (ident, bias, True)}
            for name, (pos, b, sp) in variants.items():
                fn = lambda pos=pos, b=b, sp=sp: mf.swimba_mix_fused(dt, B, C, pos, g, idx, b, sp)
                do_bench(fn, warmup=200, rep=1)
                ms = do_bench_cudagraph(fn, rep=60, return_mode="median")
                floor = nbytes / (gbps * 1e9) * 1e3
                print(f"d{d} k{k} {name:22s} {ms * 1e3:7.1f} us  {nbytes / ms / 1e6:7.0f} GB/s  "
                      f"x floor {ms / floor:4.2f}  config {mf._mix_kernel.best_config}", flush=True)


if __name__ == "__main__":
    main()
