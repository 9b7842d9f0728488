"""Decode at its best (issue 11), checked and timed on the GPU in one call:

    python3 scripts/gpu_decode.py checks     # ops vs references at real sizes; graph step == eager step, bit for bit
    python3 scripts/gpu_decode.py tune       # gather_mm tiles and K splits, route's split, at the layers' shapes
    python3 scripts/gpu_decode.py paths      # gathered vs sorted dispatch per (design, E, k, batch): the threshold
    python3 scripts/gpu_decode.py steps      # each design's graph-replayed step, kernels per step, b 1/16/128
    python3 scripts/gpu_decode.py profile    # per-step kernel list with times (torch.profiler, eager step)

bf16, D = 2048, FLOP-matched as `swimbench latency` sizes layers, balanced routing unless said. Step
times: one step captured in a CUDA graph, replayed 200 times between two CUDA events, the median of
15 such samples (us per step). Prints one line per result.
"""
from __future__ import annotations

import argparse
import statistics
import sys

import torch

from swimbench.config import Reference
from swimbench.designs import build_layer
from swimbench.flops.sizing import match
from swimbench.kernels.gather_mm.fused import gather_mm_fused
from swimbench.kernels.gather_mm.naive import gather_mm_naive
from swimbench.kernels.route.fused import route_fused
from swimbench.kernels.route.naive import MODES, route_naive
from swimbench.layers import dispatch
from swimbench.measure.graphs import capture
from swimbench.measure.workload import MambaSsmLayer

DEV, DT = "cuda", torch.bfloat16
REF = Reference(d_model=2048, expand=2, d_state=16, d_conv=4)
results: list[bool] = []


def rel(a, b):
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(f"{'PASS' if ok else 'FAIL'}  {name:70s} {detail}", flush=True)


def layer_of(variant, E, k, routing="balanced", dtype=DT):
    if variant == "mamba_ssm":
        return MambaSsmLayer(REF.dense(), device=DEV, dtype=dtype).eval(), REF.dense()
    cfg = match(variant, REF, E, k, routing=routing).cfg
    torch.manual_seed(0)
    return build_layer(cfg, device=DEV, dtype=dtype).eval(), cfg


def random_cache(layer, b):
    cache = layer.allocate_cache(b)
    for t in (cache if isinstance(cache, tuple) else (cache.conv, cache.ssm)):
        t.normal_()
    return cache


def time_replay(fn, reps=200, samples=15):
    g = capture(fn)
    for _ in range(20):
        g()
    times = []
    for _ in range(samples):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(reps):
            g()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) * 1e3 / reps)
    return statistics.median(times), g.kernels


@torch.no_grad()
def checks():
    torch.manual_seed(1)
    # gather_mm at the layers' shapes: Swimba x_proj (Di -> R + 2N) and dt_proj, RoM in/out, the FFN
    Di = match("swimba", REF, 8, 2).cfg.d_inner
    shapes = [("swimba x_proj", Di, 160), ("swimba dt_proj", 128, Di), ("rom in_proj", 2048, 8184),
              ("rom out_proj", 4092, 2048), ("ffn w1", 2048, 4096), ("ffn w2", 4096, 2048)]
    for name, K, N in shapes:
        for T, k in ((1, 1), (1, 2), (16, 2), (32, 2), (13, 3)):
            for per_slot in (False, True):
                x = torch.randn(T * k if per_slot else T, K, device=DEV, dtype=DT)
                w = torch.randn(8, K, N, device=DEV, dtype=DT) / K ** 0.5
                idx = torch.randint(0, 8, (T, k), device=DEV)
                cap = 2 if T == 13 else 0
                out = gather_mm_fused(x, w, idx, cap, name == "ffn w1")
                again = gather_mm_fused(x, w, idx, cap, name == "ffn w1")
                ref = gather_mm_naive(x, w, idx, cap, name == "ffn w1")
                e = rel(out, ref)
                same = torch.equal(out, again)
                check(f"gather_mm {name} T={T} k={k} slot-rows={per_slot} cap={cap}", e < 1e-2 and same,
                      f"rel err {e:.2e}, repeat bitwise {same}")
    for mode in MODES:
        for T, E, k in ((1, 8, 1), (16, 16, 2), (8192, 8, 2)):
            x = torch.randn(T, Di, device=DEV, dtype=DT)
            w = torch.randn(E, Di, device=DEV, dtype=DT) / Di ** 0.5
            g, i = route_fused(x, w, k, mode)
            gr, ir = route_naive(x, w, k, mode)
            same = (i == ir).all(-1)
            frac = same.float().mean().item()
            e = (g[same] - gr[same]).abs().max().item()
            check(f"route {mode} T={T} E={E} k={k}", frac >= (0.99 if mode == "learned" else 1.0) and e < 1e-2,
                  f"same choice {frac:.4f}, gate diff {e:.1e}")
    # every design: decode continues prefill; the graph-replayed step equals the eager one bit for bit
    for variant, E, k in (("dense", 1, 1), ("swimba", 8, 1), ("swimba", 8, 2), ("separated", 4, 2),
                          ("moe_mamba", 8, 1), ("moe_mamba", 16, 2), ("rom", 8, 1), ("rom", 2, 2)):
        for routing in ("balanced", "skewed", "learned"):
            if variant == "dense" and routing != "balanced":
                continue
            layer, cfg = layer_of(variant, E, k, routing)
            for b in (1, 16, 33):
                x = torch.randn(b, 1, cfg.d_model, device=DEV, dtype=DT)
                cache = random_cache(layer, b)
                snap = (cache.conv.clone(), cache.ssm.clone())
                out = {}
                g = capture(lambda: out.__setitem__("y", layer.step(x, cache)))
                cache.conv.copy_(snap[0]), cache.ssm.copy_(snap[1])
                g()
                torch.cuda.synchronize()
                graph = (out["y"].clone(), cache.conv.clone(), cache.ssm.clone())
                cache.conv.copy_(snap[0]), cache.ssm.copy_(snap[1])
                eager = (layer.step(x, cache), cache.conv, cache.ssm)
                same = all(torch.equal(a, b_) for a, b_ in zip(graph, eager))
                path = dispatch.path(b * k) if E > 1 else "-"
                check(f"{variant} E={E} k={k} {routing} b={b} ({path}): graph step == eager step, bitwise", same,
                      f"kernels {g.kernels}")
                del eager, g
        # decode reproduces prefill (learned routing: a token's experts depend on it alone)
        layer, cfg = layer_of(variant, E, k, "learned")
        if variant == "moe_mamba":
            layer.ffn.capacity_factor = float(E)
        x = torch.randn(2, 90, cfg.d_model, device=DEV, dtype=DT)
        full = layer(x)
        cache = layer.allocate_cache(2)
        layer(x[:, :70], cache)
        tail = torch.cat([layer.step(x[:, t:t + 1], cache) for t in range(70, 90)], dim=1)
        e = rel(tail, full[:, 70:])
        check(f"{variant} E={E} k={k}: decode (gathered) reproduces prefill (sorted)", e < 2e-2, f"rel err {e:.2e}")


@torch.no_grad()
def tune():
    """gather_mm tile and split choices at the layers' shapes, one and 16 slots, against config()'s pick;
    route's K split at one and 16 tokens."""
    from swimbench.kernels.gather_mm.fused import config
    Di = match("swimba", REF, 8, 1).cfg.d_inner
    for name, K, N in (("swimba x_proj", Di, 160), ("swimba dt_proj", 128, Di), ("rom in_proj", 2048, 8184),
                       ("rom out_proj", 4092, 2048), ("ffn w1", 2048, 4096)):
        for T in (1, 16):
            x = torch.randn(T, K, device=DEV, dtype=DT)
            w = torch.randn(8, K, N, device=DEV, dtype=DT) / K ** 0.5
            idx = (torch.arange(T, device=DEV) % 8).view(T, 1)
            auto = config(T, 8, K, N, x.device)
            best = []
            for BN in (32, 64, 128):
                for BK in (64, 128):
                    for split in (1, 2, 4, 8, 16):
                        for warps in (4, 8):
                            if split * 4 * BK > K * 2:
                                continue
                            pins = dict(BN=BN, BK=BK, SPLIT=split, num_warps=warps)
                            us, _ = time_replay(lambda: gather_mm_fused(x, w, idx, **pins), reps=100, samples=7)
                            best.append((us, pins))
            us_auto, _ = time_replay(lambda: gather_mm_fused(x, w, idx), reps=100, samples=7)
            best.sort(key=lambda r: r[0])
            print(f"TUNE {name} T={T} K={K} N={N}: auto {us_auto:.2f} us {auto}; best " +
                  "; ".join(f"{u:.2f} {p}" for u, p in best[:3]), flush=True)
    for E in (8, 16):
        for T in (1, 16):
            x = torch.randn(T, Di, device=DEV, dtype=DT)
            w = torch.randn(E, Di, device=DEV, dtype=DT)
            cells = []
            for split in (0, 1, 4, 8, 16, 32):
                us, _ = time_replay(lambda: route_fused(x, w, 2, "learned", split), reps=100, samples=7)
                cells.append(f"split {split or 'auto'} {us:.2f}")
            print(f"ROUTE E={E} T={T} K={Di}: " + ", ".join(cells), flush=True)


@torch.no_grad()
def paths():
    print("design E k b | gathered us | sorted us | sorted/gathered")
    for variant in ("swimba", "rom", "moe_mamba"):
        for E in (2, 8, 16):
            for k in (1, 2):
                layer, cfg = layer_of(variant, E, k)
                for b in (1, 4, 16, 32, 64):
                    if b * k > dispatch.GATHER_SLOTS:
                        continue
                    x = torch.randn(b, 1, cfg.d_model, device=DEV, dtype=DT)
                    cache = random_cache(layer, b)
                    t = {}
                    for name, limit in (("gathered", dispatch.GATHER_SLOTS), ("sorted", 0)):
                        saved, dispatch.GATHER_SLOTS = dispatch.GATHER_SLOTS, limit
                        try:
                            t[name], _ = time_replay(lambda: layer.step(x, cache))
                        finally:
                            dispatch.GATHER_SLOTS = saved
                    print(f"PATH {variant} {E} {k} {b} | {t['gathered']:.1f} | {t['sorted']:.1f} | "
                          f"{t['sorted'] / t['gathered']:.2f}", flush=True)
                layer = None
                torch.cuda.empty_cache()


@torch.no_grad()
def steps():
    print("design E k | b1 us (kernels) | b16 | b128")
    for variant, E, k in (("mamba_ssm", 1, 1), ("dense", 1, 1), ("swimba", 2, 1), ("swimba", 8, 1),
                          ("swimba", 8, 2), ("swimba", 16, 2), ("separated", 2, 1), ("separated", 8, 1),
                          ("separated", 16, 2), ("moe_mamba", 8, 1), ("moe_mamba", 8, 2), ("moe_mamba", 16, 2),
                          ("rom", 8, 1), ("rom", 8, 2), ("rom", 16, 2)):
        layer, cfg = layer_of(variant, E, k)
        cells = []
        for b in (1, 16, 128):
            x = torch.randn(b, 1, cfg.d_model, device=DEV, dtype=DT)
            cache = random_cache(layer, b)
            us, n = time_replay(lambda: layer.step(x, cache))
            cells.append(f"{us:.1f} ({n})")
        print(f"STEP {variant} {E} {k} | " + " | ".join(cells), flush=True)
        layer = None
        torch.cuda.empty_cache()


@torch.no_grad()
def profile():
    from torch.profiler import ProfilerActivity, profile as prof_
    from swimbench import mamba_ref
    designs = (("dense", 1, 1), ("swimba", 8, 1), ("swimba", 8, 2), ("separated", 8, 1), ("moe_mamba", 8, 1),
               ("rom", 8, 1))
    if mamba_ref.has_cuda_scan():
        designs = (("mamba_ssm", 1, 1), *designs)
    for variant, E, k in designs:
        for b in (1, 16):
            layer, cfg = layer_of(variant, E, k)
            x = torch.randn(b, 1, cfg.d_model, device=DEV, dtype=DT)
            cache = random_cache(layer, b)
            for _ in range(5):
                layer.step(x, cache)
            torch.cuda.synchronize()
            with prof_(activities=[ProfilerActivity.CUDA]) as p:
                for _ in range(20):
                    layer.step(x, cache)
                torch.cuda.synchronize()
            evs = [e for e in p.events() if e.device_type.name == "CUDA"]
            total = sum(e.device_time for e in evs) / 20
            print(f"== {variant} E={E} k={k} b={b}: {len(evs) / 20:.0f} kernels, "
                  f"{total:.1f} us of kernel time per step")
            for e in sorted(p.key_averages(), key=lambda e: -e.device_time_total):
                if e.device_time_total > 0:
                    print(f"   {e.device_time_total / 20:7.2f} us  x{e.count // 20:<2d} {e.key[:100]}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("what", nargs="+", choices=["checks", "tune", "paths", "steps", "profile"])
    args = ap.parse_args()
    print(torch.cuda.get_device_name(), "torch", torch.__version__, flush=True)
    for w in args.what:
        print(f"==== {w}", flush=True)
        globals()[w]()
    if results:
        print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
    sys.exit(0 if all(results) else 1)
