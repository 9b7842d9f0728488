"""Is a layer's eager prefill bound by the GPU or by the host that launches its kernels?

    python3 scripts/gpu_host_bound.py moe_mamba:8:1 dense:1:1 rom:8:1 [--seq 8192] [--json F]

For each variant:experts:top_k (sized as `swimbench latency` sizes it, balanced routing) it takes:
  eager    the latency engine's prefill median (back-to-back calls between CUDA events), twice;
  graph    the same forward captured in a CUDA graph and replayed: GPU work without launch gaps;
  enqueue  host time to launch one forward while the GPU is held busy by a sleep kernel, so no
           launch waits for the GPU: the host's own cost per forward;
  trace    torch.profiler over 5 back-to-back forwards: kernel time per forward, idle time between
           kernels per forward, the largest idle gaps and the kernels after them, top host ops.
eager ~ graph means GPU-bound; eager ~ enqueue > graph means the GPU waits for the host.
`--swap` adds MoE-Mamba rows with the gate-weighted sum as a torch bmm (before the combine op) and
without the capacity (one argsort instead of two), to see which piece moves the time.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from swimbench.config import Reference
from swimbench.flops.sizing import match
from swimbench.designs import build_layer
from swimbench.measure.graphs import capture
from swimbench.measure.timing import TimingOptions, time_fn

OPTS = TimingOptions(budget_s=1.0, min_reps=10, warmup_reps=3, warmup_s=0.25)


def enqueue_ms(fn, calls: int = 8, reps: int = 5) -> float:
    """Median host time per call with the GPU kept busy (a sleep kernel ahead of the calls)."""
    out = []
    for _ in range(reps):
        torch.cuda.synchronize()
        torch.cuda._sleep(2_000_000_000 // 1000 * 200)       # ~0.2 s of GPU time at ~2 GHz
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        out.append((time.perf_counter() - t) * 1e3 / calls)
        torch.cuda.synchronize()
    return statistics.median(out)


def trace(fn, calls: int = 5, top: int = 6) -> dict:
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            with record_function("forward"):
                fn()
        torch.cuda.synchronize()
    path = os.path.join(tempfile.mkdtemp(), "t.json")
    prof.export_chrome_trace(path)
    ev = json.load(open(path))["traceEvents"]
    kern = sorted((e for e in ev if e.get("cat") == "kernel"), key=lambda e: e["ts"])
    fwd = [e for e in ev if e.get("name") == "forward" and e.get("cat") == "user_annotation"]
    busy = sum(e["dur"] for e in kern)
    gaps = [(kern[i + 1]["ts"] - (kern[i]["ts"] + kern[i]["dur"]), kern[i + 1]["name"][:70])
            for i in range(len(kern) - 1)]
    idle = sum(max(0.0, g) for g, _ in gaps)
    host_ops = {}
    for e in ev:
        if e.get("cat") == "cpu_op":
            host_ops[e["name"]] = host_ops.get(e["name"], 0.0) + e["dur"]
    return {"kernels_per_forward": len(kern) / calls,
            "kernel_ms_per_forward": busy / calls / 1e3,
            "idle_ms_per_forward": idle / calls / 1e3,
            "host_ms_per_forward": statistics.median(e["dur"] for e in fwd) / 1e3 if fwd else None,
            "top_gaps_us": [(round(g, 1), n) for g, n in sorted(gaps, reverse=True)[:top]],
            "top_host_ops_us_per_forward": sorted(((round(v / calls, 1), k) for k, v in host_ops.items()),
                                                  reverse=True)[:12]}


def bmm_combine(gates, values):
    return torch.bmm(gates.unsqueeze(1).to(values.dtype), values).squeeze(1)


@torch.no_grad()
def one(spec: str, seq: int, swap: str = "") -> dict:
    variant, E, k = spec.split(":")
    cfg = match(variant, Reference(), int(E), int(k), routing="balanced").cfg
    layer = build_layer(cfg, device="cuda", dtype=torch.bfloat16).eval()
    if swap == "nocap":
        layer.ffn.capacity_factor = None          # one argsort instead of two
    import swimbench.layers.ffn as ffn
    saved = ffn.combine
    if swap == "bmm":
        ffn.combine = bmm_combine
    try:
        x = torch.randn(1, seq, cfg.d_model, device="cuda", dtype=torch.bfloat16)
        fn = lambda: layer(x)
        eager = [float(statistics.median(time_fn(fn, OPTS, "cuda").samples_ms)) for _ in range(2)]
        enq = enqueue_ms(fn)
        tr = trace(fn)
        replay = capture(fn)
        graph = float(statistics.median(time_fn(replay, OPTS, "cuda").samples_ms))
    finally:
        ffn.combine = saved
    r = {"layer": spec + (f"/{swap}" if swap else ""), "d_inner": cfg.d_inner, "eager_ms": eager,
         "graph_ms": graph, "enqueue_ms": enq, **tr}
    print(json.dumps(r, indent=1), flush=True)
    return r


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("layers", nargs="+")
    ap.add_argument("--seq", type=int, default=8192)
    ap.add_argument("--swap", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args()
    print(torch.cuda.get_device_name(), "torch", torch.__version__, flush=True)
    rows = [one(s, args.seq) for s in args.layers]
    if args.swap:
        rows += [one("moe_mamba:8:1", args.seq, "bmm"), one("moe_mamba:8:1", args.seq, "nocap")]
    print(f"\n{'layer':24s} {'eager ms':>16s} {'graph':>7s} {'enqueue':>8s} {'kernels':>8s} {'idle':>6s} {'n':>4s}")
    for r in rows:
        e = "/".join(f"{v:.3f}" for v in r["eager_ms"])
        print(f"{r['layer']:24s} {e:>16s} {r['graph_ms']:7.3f} {r['enqueue_ms']:8.3f} "
              f"{r['kernel_ms_per_forward']:8.3f} {r['idle_ms_per_forward']:6.3f} {r['kernels_per_forward']:4.0f}")
    if args.json:
        json.dump(rows, open(args.json, "w"), indent=1)
