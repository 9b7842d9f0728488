"""Where a layer's prefill time goes, kernel by kernel (torch.profiler, CUDA time).

    python3 scripts/gpu_profile_layer.py rom:8:1 rom:8:2 dense:1:1 [--seq 8192]

Each argument is variant:experts:top_k, sized at matched FLOPs as `swimbench latency` sizes it
(balanced routing). Prints the top kernels of one warmed-up forward per layer.
"""
from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from swimbench.config import Reference
from swimbench.flops.sizing import match
from swimbench.designs import build_layer


@torch.no_grad()
def one(spec: str, seq: int, top: int) -> None:
    variant, E, k = spec.split(":")
    cfg = match(variant, Reference(), int(E), int(k), routing="balanced").cfg
    layer = build_layer(cfg, device="cuda", dtype=torch.bfloat16).eval()
    x = torch.randn(1, seq, cfg.d_model, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        layer(x)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        layer(x)
        torch.cuda.synchronize()
    total = sum(e.self_device_time_total for e in prof.key_averages()) / 1e3
    print(f"== {spec} d_inner={cfg.d_inner} seq={seq}: {total:.3f} ms of kernels")
    rows = sorted(prof.key_averages(), key=lambda e: -e.self_device_time_total)[:top]
    for e in rows:
        print(f"  {e.self_device_time_total / 1e3:8.3f} ms  x{e.count:<3d} {e.key[:110]}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("layers", nargs="+")
    ap.add_argument("--seq", type=int, default=8192)
    ap.add_argument("--top", type=int, default=12)
    args = ap.parse_args()
    print(torch.cuda.get_device_name(), "torch", torch.__version__, flush=True)
    for spec in args.layers:
        one(spec, args.seq, args.top)
