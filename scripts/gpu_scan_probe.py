#!/usr/bin/env python3
"""Why the dense scan runs slower on Swimba's mixed inputs than on a dense layer's (no hardware counters):
time the same scan on inputs laid out each way, graph-replayed, d_inner 4096, d_state 16.

    python3 scripts/gpu_scan_probe.py

Variants: the dense layer's (dt with bias and softplus in the scan; B and C bf16 views of x_proj's
output); delta already mixed (no bias, no softplus) with B and C bf16 in a (T, 2, n) buffer; the same
with B and C in fp32 (what the mixing kernel wrote before). A difference between the last two is the
cost of reading fp32 B and C token by token (no 32-bit pairs).
"""
from __future__ import annotations

import torch
from triton.testing import do_bench, do_bench_cudagraph

from swimbench.measure import kernel_bench as kb
from swimbench.kernels.selective_scan.fused import selective_scan_fused

DEV, DT = "cuda", torch.bfloat16


def main():
    print(torch.cuda.get_device_name(), flush=True)
    d, n, R = 4096, 16, 128
    for b, l in [(1, 8192), (8, 8192), (1, 32768)]:
        x = kb.make_inputs(kb.Case("dense", b, l), DEV)
        dbl = torch.randn(b, l, R + 2 * n, device=DEV).to(DT)
        xz = torch.randn(b, l, 2 * d, device=DEV).to(DT)
        z = xz[..., d:]
        delta = torch.nn.functional.softplus(x["dt"].float() + x["bias"]).to(DT)
        bc16 = torch.randn(b, l, 2, n, device=DEV).to(DT)
        bc32 = bc16.float()
        variants = {
            "dense layer (views, bias+softplus)": lambda: selective_scan_fused(
                x["u"], x["dt"], x["A"], dbl[..., R:R + n], dbl[..., R + n:], x["D"], z, x["bias"], True),
            "mixed delta, B/C bf16 (T,2,n)": lambda: selective_scan_fused(
                x["u"], delta, x["A"], bc16[:, :, 0], bc16[:, :, 1], x["D"], z, None, False),
            "mixed delta, B/C fp32 (T,2,n)": lambda: selective_scan_fused(
                x["u"], delta, x["A"], bc32[:, :, 0], bc32[:, :, 1], x["D"], z, None, False),
        }
        base = None
        for name, fn in variants.items():
            do_bench(fn, warmup=100, rep=1)
            ms = do_bench_cudagraph(fn, rep=60, return_mode="median")
            base = base or ms
            print(f"b{b} l{l:<6d} {name:38s} {ms:7.4f} ms  x first {ms / base:5.3f}", flush=True)


if __name__ == "__main__":
    main()
