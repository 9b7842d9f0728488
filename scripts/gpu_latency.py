"""GPU checks of `swimbench latency`'s measurement engine (run by scripts/gpu_latency.sh on the H100).

    python scripts/gpu_latency.py checks --json OUT.json
        1. one kernel (the dense selective scan op, b=1, l=8192, d_inner=4096, N=16, bf16) timed by
           our engine and by triton.testing.do_bench (both flush L2 between calls): within 5%?
        2. energy per token from the NVML counter against the integrated power trace on a long window
           (10 s of dense prefill at seq 8192, 5 s of Swimba decode under a CUDA graph): within 10%?
    python scripts/gpu_latency.py compare RUN_A RUN_B --key KEY --json OUT.json
        the median prefill of one configuration in two separate runs: within 3%?
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch


def _scan_inputs(b=1, l=8192, d=4096, n=16, dtype=torch.bfloat16, dev="cuda"):
    g = torch.Generator(device=dev).manual_seed(0)

    def r(*s, dt=dtype):
        return torch.randn(*s, device=dev, dtype=dt, generator=g)
    A = -torch.rand(d, n, device=dev, generator=g) - 0.5
    return (r(b, l, d), r(b, l, d) * 0.5, A, r(b, l, n), r(b, l, n), r(d, dt=torch.float32),
            r(b, l, d), r(d, dt=torch.float32), True, False)


def check_kernel() -> dict:
    import triton.testing

    import swimbench.kernels  # noqa: F401  (registers torch.ops.swimbench)
    from swimbench.measure.timing import TimingOptions, time_fn
    from swimbench.measure.workload import scan_impl
    args = _scan_inputs()

    def fn():
        return torch.ops.swimbench.selective_scan(*args)
    ours = {}
    for flush in (True, False):
        t = time_fn(fn, TimingOptions(budget_s=1.0, min_reps=20, warmup_reps=3, warmup_s=0.25,
                                      flush_l2=flush), "cuda")
        ours[flush] = float(torch.tensor(t.samples_ms).median())
    ref = triton.testing.do_bench(fn, warmup=100, rep=1000, return_mode="median")
    again = float(torch.tensor(time_fn(fn, TimingOptions(budget_s=1.0, min_reps=20, flush_l2=True),
                                       "cuda").samples_ms).median())
    ratio = ours[True] / ref
    return {"kernel": "swimbench::selective_scan b=1 l=8192 d=4096 N=16 bf16, D, z, delta bias, softplus",
            "impl": scan_impl("dense", "cuda"),
            "engine_ms_flush_l2": ours[True], "engine_ms_flush_l2_again": again,
            "engine_ms_no_flush": ours[False], "do_bench_ms_median": ref,
            "engine_over_do_bench": ratio, "within_5pct": abs(ratio - 1) <= 0.05}


def check_energy() -> list[dict]:
    from swimbench.measure import workload
    from swimbench.measure.energy import Nvml, PowerSampler, measure_energy
    from swimbench.measure.graphs import capture
    from swimbench.measure.timing import TimingOptions, time_fn
    from swimbench.sweeps.spec import Point, Sweep
    nvml = Nvml.open("cuda")
    sampler = PowerSampler(nvml, 0.02).start()
    out = []
    try:
        with torch.no_grad():
            for point, phase, window in [(Point("dense", 1, 1, 8192, 1, 1), "prefill", 10.0),
                                         (Point("swimba", 8, 2, 8192, 8, 1), "decode", 5.0)]:
                model, _ = workload.build(point, Sweep(), "cuda", 0)
                if phase == "prefill":
                    x = torch.randn(point.batch, point.seq, 2048, device="cuda", dtype=torch.bfloat16)
                    fn, tokens = (lambda: model(x)), point.batch * point.seq
                else:
                    x1 = torch.randn(point.batch, 1, 2048, device="cuda", dtype=torch.bfloat16)
                    cache = workload.random_cache(model, point.batch)
                    fn, tokens = capture(lambda: model.step(x1, cache)), point.batch
                t = time_fn(fn, TimingOptions(budget_s=0.5), "cuda")
                call_s = float(torch.tensor(t.samples_ms).median()) / 1e3
                e = measure_energy(fn, tokens, nvml, "cuda", window, call_s=call_s, sampler=sampler)
                row = {"config": point.label(), "phase": phase, "window_s": e.window_s, "calls": e.calls,
                       "tokens_per_s": e.tokens_per_s, "timed_tokens_per_s": tokens / call_s,
                       "counter_mean_w": e.mean_w, "counter_j_per_token": e.joules_per_token,
                       "trace_mean_w": e.trace_mean_w, "trace_j_per_token": e.trace_joules_per_token,
                       "instant_j_per_token": e.instant_joules_per_token}
                for k in ("trace", "instant"):
                    v = row[f"{k}_j_per_token"]
                    row[f"{k}_over_counter"] = None if v is None else v / e.joules_per_token
                row["trace_within_10pct"] = (row["trace_over_counter"] is not None
                                             and abs(row["trace_over_counter"] - 1) <= 0.10)
                out.append(row)
                model = fn = None
                torch.cuda.empty_cache()
    finally:
        sampler.stop()
        nvml.close()
    return out


def compare(a: Path, b: Path, key: str) -> dict:
    from swimbench.results import RunDir
    ma = {r["key"]: r for r in RunDir.existing(a).results().rows.values()}[key]
    mb = {r["key"]: r for r in RunDir.existing(b).results().rows.values()}[key]
    pa, pb = float(ma["prefill_ms"]), float(mb["prefill_ms"])
    da, db = float(ma["decode_us"]), float(mb["decode_us"])
    return {"key": key, "run_a": str(a), "run_b": str(b), "prefill_ms_a": pa, "prefill_ms_b": pb,
            "prefill_diff_pct": 100 * (pb - pa) / pa, "prefill_within_3pct": abs(pb - pa) / pa <= 0.03,
            "decode_us_a": da, "decode_us_b": db, "decode_diff_pct": 100 * (db - da) / da}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("checks")
    c.add_argument("--json", type=Path, required=True)
    m = sub.add_parser("compare")
    m.add_argument("a", type=Path)
    m.add_argument("b", type=Path)
    m.add_argument("--key", default="dense/E1/k1/seq8192/b1/L1")
    m.add_argument("--json", type=Path, required=True)
    args = p.parse_args(argv)
    if args.cmd == "checks":
        result = {}
        for name, fn in (("kernel_vs_do_bench", check_kernel), ("energy_counter_vs_trace", check_energy)):
            try:
                result[name] = fn()
            except Exception as e:  # noqa: BLE001  (one failed check must not lose the other)
                result[name] = {"error": f"{type(e).__name__}: {e}"}
            print(name, json.dumps(result[name], indent=1), flush=True)
            args.json.write_text(json.dumps(result, indent=2))
    else:
        result = compare(args.a, args.b, args.key)
        print(json.dumps(result, indent=1))
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
