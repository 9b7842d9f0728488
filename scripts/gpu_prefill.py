#!/usr/bin/env python3
"""GPU checks and kernel timings behind prefill at its best (issue 10), in one process.

    python3 scripts/gpu_prefill.py --out DIR [--rep MS] [--no-check]

1. checks, bf16 at real sizes (d_inner 4096, d_state 16): the causal conv and its decode step against
   their references and against the F.conv1d path mamba-ssm's Mamba takes without causal-conv1d; the
   dense scan on the layer's views against mamba-ssm's CUDA scan; Swimba's mixing kernel and the
   mix-then-scan path against the hand-mixed reference and against mamba-ssm's scan on the mixed inputs;
   then every case of `swimbench/measure/kernel_bench.py`'s checks.
2. timings (triton.testing.do_bench medians, L2 flushed): the dense scan beside mamba-ssm's; Swimba k = 1
   and 2 both ways (mix-then-scan, in-register) and the mixing kernel alone; the conv beside the
   transpose + pad + conv + SiLU + transpose it replaces. Ratios to dense are within this one run.
Writes checks.csv and kernels.csv under --out; prints a short table last.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from swimbench import mamba_ref
from swimbench.measure import kernel_bench as kb
from swimbench.kernels.causal_conv1d.fused import causal_conv1d_fused, causal_conv1d_update_fused
from swimbench.kernels.causal_conv1d.naive import causal_conv1d_naive, causal_conv1d_update_naive
from swimbench.kernels.selective_scan.fused import selective_scan_fused
from swimbench.kernels.swimba_mix.fused import swimba_mix_fused
from swimbench.kernels.swimba_scan.fused import swimba_scan_fused
from swimbench.kernels.swimba_scan.naive import mix_streams
from swimbench.measure.ceilings import copy_gbps, gemm_tflops

DEV, DT = "cuda", torch.bfloat16
rel = kb.rel_err


def log(*a):
    print(*a, flush=True)


def torch_conv(x, w, bias):
    """The conv as the layer ran it before, and as mamba-ssm's Mamba runs it without causal-conv1d."""
    K = w.shape[-1]
    return F.silu(F.conv1d(F.pad(x.transpose(1, 2), (K - 1, 0)), w.unsqueeze(1), bias,
                           groups=w.shape[0])).transpose(1, 2)


def checks() -> list[dict]:
    rows = []
    g = torch.Generator(device=DEV).manual_seed(int(time.time()))
    rn = lambda *s: torch.randn(*s, device=DEV, generator=g)

    for b, l, d in [(1, 8192, 4096), (3, 2047, 4093)]:
        xz = rn(b, l, 2 * d).to(DT)
        x = xz[..., :d]
        w, bias = (rn(d, 4) * 0.5).to(DT), rn(d).to(DT)
        y = causal_conv1d_fused(x, w, bias, True)
        rows.append(dict(check=f"conv b{b} l{l} d{d}", vs_naive=rel(y, causal_conv1d_naive(x, w, bias, True)),
                         vs_torch_conv=rel(y, torch_conv(x, w, bias))))
        st = rn(b, d, 4).to(DT)
        st_ref = st.clone()
        y1 = causal_conv1d_update_fused(x[:, 0], st, w, bias, True)
        rows.append(dict(check=f"conv step b{b} d{d}",
                         vs_naive=rel(y1, causal_conv1d_update_naive(x[:, 0], st_ref, w, bias, True)),
                         state_equal=float(torch.equal(st, st_ref))))

    # the dense scan on the layer's views (z in in_proj's output, B and C in x_proj's) vs mamba-ssm
    for b, l in [(1, 8192), (2, 2047)]:
        d, n, R = 4096, 16, 128
        x = kb.make_inputs(kb.Case("dense", b, l), DEV)
        xz = rn(b, l, 2 * d).to(DT)
        dbl = rn(b, l, R + 2 * n).to(DT)
        x.update(z=xz[..., d:], B=dbl[..., R:R + n], C=dbl[..., R + n:])
        y, h = selective_scan_fused(x["u"], x["dt"], x["A"], x["B"], x["C"], x["D"], x["z"], x["bias"], True, True)
        row = dict(check=f"dense scan on views b{b} l{l}")
        fn = mamba_ref.selective_scan_fn()
        if fn is not None:
            cm = lambda t: t.transpose(1, 2).contiguous()
            y_m = fn(cm(x["u"]), cm(x["dt"]), x["A"], cm(x["B"]), cm(x["C"]), D=x["D"], z=cm(x["z"]),
                     delta_bias=x["bias"], delta_softplus=True).transpose(1, 2)
            row["vs_mamba"] = rel(y, y_m)
        rows.append(row)

    # Swimba: mixing kernel and mix-then-scan vs the hand-mixed reference, E64 k4 included
    for E, k, b, l in [(8, 2, 1, 8192), (64, 4, 2, 2047), (8, 1, 1, 4096)]:
        c = kb.Case("swimba", b, l, experts=E, top_k=k)
        x = kb.make_inputs(c, DEV)
        y, h = swimba_scan_fused(x["u"], x["dt"], x["A"], x["B"], x["C"], x["gates"], x["idx"], x["D"], x["z"],
                                 x["bias"], True, True, mode="mix-then-scan")
        y_ref, h_ref = kb.naive(c, x)
        row = dict(check=f"swimba mix-then-scan E{E} k{k} b{b} l{l}", vs_naive=rel(y, y_ref),
                   state_vs_naive=rel(h, h_ref))
        T = b * l
        perm = torch.randperm(T * k, device=DEV)              # slot i sits in row perm[i], as after a sort
        pos = perm.view(T, k)
        rows_dt = torch.empty(T * k, 4096, device=DEV, dtype=DT).index_copy_(0, perm, x["dt"].reshape(T * k, -1))
        rows_B = torch.empty(T * k, 16, device=DEV, dtype=DT).index_copy_(0, perm, x["B"].reshape(T * k, -1))
        rows_C = torch.empty(T * k, 16, device=DEV, dtype=DT).index_copy_(0, perm, x["C"].reshape(T * k, -1))
        delta, bc = swimba_mix_fused(rows_dt, rows_B, rows_C, pos, x["gates"].reshape(T, k), x["idx"].reshape(T, k),
                                     x["bias"], True)
        d_ref, B_ref, C_ref = mix_streams(x["dt"], x["B"], x["C"], x["gates"], x["idx"], x["bias"], True)
        row.update(mix_delta=rel(delta, d_ref.reshape(T, -1)), mix_B=rel(bc[:, 0], B_ref.reshape(T, -1)),
                   mix_C=rel(bc[:, 1], C_ref.reshape(T, -1)))
        y_m = kb.mamba_reference(c, x)
        if y_m is not None:
            row["vs_mamba"] = rel(y, y_m)
        rows.append(row)
        log(row)

    for c in [kb.Case("dense", 1, 8192), kb.Case("swimba", 1, 8192, experts=8, top_k=2),
              kb.Case("separated", 1, 2048, experts=4), kb.Case("dense-step", 128, 1),
              kb.Case("swimba-step", 128, 1, experts=8, top_k=2), kb.Case("separated-step", 128, 1, experts=8)]:
        rows.append(dict(check=f"bench {c.label}", **{k: v for k, v in kb.check(c, DEV).items() if k != "case"}))
    return rows


def timings(rep: int) -> list[dict]:
    rows = []

    def add(shape, what, ms, **kw):
        rows.append(dict(shape=shape, what=what, ms=ms, **kw))
        log(f"{shape:14s} {what:34s} {ms:8.4f} ms")

    for b, l in [(1, 2048), (1, 8192), (8, 8192), (1, 32768)]:
        shape = f"b{b} l{l}"
        c = kb.Case("dense", b, l)
        x = kb.make_inputs(c, DEV)
        add(shape, "dense scan", kb.time_ms(c, x, lambda: kb.ours(c, x), rep), plan=kb.describe_plan(c, DEV))
        m = kb.mamba(c, x)
        if m is not None:
            add(shape, "mamba-ssm scan", kb.time_ms(c, x, m, rep))
        if (b, l) == (1, 2048):
            continue
        for k in (1, 2):
            cs = kb.Case("swimba", b, l, experts=8, top_k=k)
            xs = kb.make_inputs(cs, DEV)
            for mode in ("mix-then-scan", "in-register"):
                f = lambda mode=mode: swimba_scan_fused(xs["u"], xs["dt"], xs["A"], xs["B"], xs["C"], xs["gates"],
                                                        xs["idx"], xs["D"], xs["z"], xs["bias"], True, False, mode=mode)
                add(shape, f"swimba k{k} {mode}", kb.time_ms(cs, xs, f, rep))
            T = b * l
            pos = torch.arange(T * k, device=DEV, dtype=torch.int32).view(T, k)
            args = (xs["dt"].reshape(T * k, -1), xs["B"].reshape(T * k, -1), xs["C"].reshape(T * k, -1), pos,
                    xs["gates"].reshape(T, k), xs["idx"].reshape(T, k), xs["bias"], True)
            add(shape, f"swimba k{k} mixing kernel alone", kb.time_ms(cs, xs, lambda: swimba_mix_fused(*args), rep))
        if l == 8192:
            d = 4096
            xz = torch.randn(b, l, 2 * d, device=DEV, dtype=DT)
            w, bias = torch.randn(d, 4, device=DEV, dtype=DT), torch.randn(d, device=DEV, dtype=DT)
            ours = lambda: causal_conv1d_fused(xz[..., :d], w, bias)
            torch_path = lambda: torch_conv(xz[..., :d], w, bias).contiguous()
            add(shape, "conv+silu (ours, on the view)", kb.time_ms(c, x, ours, rep))
            add(shape, "conv+silu (torch path)", kb.time_ms(c, x, torch_path, rep))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--rep", type=int, default=100)
    ap.add_argument("--no-check", action="store_true")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    log(torch.cuda.get_device_name(), "torch", torch.__version__, "mamba-ssm", mamba_ref.version(),
        "cuda scan", mamba_ref.has_cuda_scan())
    log(f"ceilings: copy {copy_gbps(DEV):,.0f} GB/s, bf16 GEMM {gemm_tflops(DEV):,.0f} TFLOP/s")
    if not args.no_check:
        ck = pd.DataFrame(checks())
        ck.to_csv(args.out / "checks.csv", index=False)
    # seconds of CPU-bound checks leave the GPU at idle clocks: bring them up before the first timing
    a = torch.randn(8192, 8192, device=DEV, dtype=DT)
    t = time.time()
    while time.time() - t < 1.0:
        a @ a
    torch.cuda.synchronize()
    tm = pd.DataFrame(timings(args.rep))
    dense = tm[tm.what == "dense scan"].set_index("shape")["ms"]
    tm["x_dense"] = tm["ms"] / tm["shape"].map(dense)
    tm.to_csv(args.out / "kernels.csv", index=False)
    if not args.no_check:
        with pd.option_context("display.width", 200, "display.max_columns", 20, "display.precision", 3):
            print(ck.to_string(index=False))
    print(tm[["shape", "what", "ms", "x_dense"]].to_string(index=False, float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
