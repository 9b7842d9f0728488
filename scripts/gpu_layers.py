"""Layer-level checks on the GPU, at real sizes, in bf16 (run: python3 scripts/gpu_layers.py).

For every variant: decode steps reproduce prefill; a decode step captured in a CUDA graph and
replayed gives what the eager step gives; and our dense layer, loaded with the weights of
mamba-ssm's Mamba, gives the output of that module's CUDA path. Prints one line per check and a
final PASS/FAIL count; exits 1 on any failure.
"""
from __future__ import annotations

import sys

import torch

from swimbench import mamba_ref
from swimbench.config import Reference
from swimbench.flops.sizing import match
from swimbench.designs import build_layer
from swimbench.layers import DenseMamba

DEV, DT = "cuda", torch.bfloat16
REF = Reference(d_model=2048, expand=2, d_state=16, d_conv=4)
CASES = [("dense", 1, 1), ("swimba", 8, 2), ("separated", 4, 1), ("moe_mamba", 8, 1), ("rom", 8, 2)]
results = []


def rel(a, b):
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm()).item()


def check(name, err, tol):
    ok = err == err and err < tol           # NaN never passes
    results.append(ok)
    print(f"{'PASS' if ok else 'FAIL'}  {name:58s} rel err {err:.2e} (< {tol:g})", flush=True)


@torch.no_grad()
def variant_checks(variant, E, k, b=2, l=300, prefix=257):
    # Learned routing (a token's experts depend on the token alone, so decode must agree with
    # prefill) and a capacity no load can exceed (a dropped slot would differ between the two).
    cfg = match(variant, REF, E, k, capacity_factor=float(E)).cfg
    torch.manual_seed(0)
    layer = build_layer(cfg, device=DEV, dtype=DT).eval()
    x = torch.randn(b, l, cfg.d_model, device=DEV, dtype=DT)
    full = layer(x)
    cache = layer.allocate_cache(b)
    layer(x[:, :prefix], cache)
    tail = torch.cat([layer.step(x[:, t:t + 1], cache) for t in range(prefix, l)], dim=1)
    check(f"{variant} E={E} k={k} Di={cfg.d_inner}: decode reproduces prefill", rel(tail, full[:, prefix:]), 2e-2)

    # One step captured in a CUDA graph, replayed on the same cache state as an eager step.
    cache = layer.allocate_cache(b)
    layer(x[:, :prefix], cache)
    snap = (cache.conv.clone(), cache.ssm.clone())

    def restore():
        cache.conv.copy_(snap[0])
        cache.ssm.copy_(snap[1])

    x_t = x[:, prefix:prefix + 1].clone()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(2):
            layer.step(x_t, cache)          # warm-up: Triton compilation outside the capture
    torch.cuda.current_stream().wait_stream(s)
    restore()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        y_graph = layer.step(x_t, cache)
    restore()
    g.replay()
    graph_state = cache.ssm.clone()
    restore()
    y_eager = layer.step(x_t, cache)
    check(f"{variant} E={E} k={k}: graph-replayed step = eager step", rel(y_graph, y_eager), 1e-3)
    check(f"{variant} E={E} k={k}: graph-replayed state = eager state", rel(graph_state, cache.ssm), 1e-5)


@torch.no_grad()
def mamba_check(b=2, l=1000):
    if not mamba_ref.has_cuda_scan():
        print("SKIP  mamba-ssm CUDA scan not importable")
        return
    torch.manual_seed(0)
    m = mamba_ref.Mamba()(d_model=REF.d_model, d_state=REF.d_state, d_conv=REF.d_conv, expand=REF.expand,
                          use_fast_path=False, device=DEV, dtype=DT)
    ours = DenseMamba(REF.dense(), device=DEV, dtype=DT).load_mamba(m)
    x = torch.randn(b, l, REF.d_model, device=DEV, dtype=DT)
    check(f"dense vs mamba_ssm Mamba (CUDA selective_scan_fn), b={b} l={l}", rel(ours(x), m(x)), 2e-2)


if __name__ == "__main__":
    print(torch.cuda.get_device_name(), "torch", torch.__version__, "mamba_ssm", mamba_ref.version(), flush=True)
    mamba_check()
    for case in CASES:
        variant_checks(*case)
    print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
    sys.exit(0 if all(results) else 1)
