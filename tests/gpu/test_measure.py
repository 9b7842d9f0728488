"""The measurement engine on the GPU (docs/latency.md; was `scripts/gpu_latency.py checks`): one kernel
timed by our engine and by triton.testing.do_bench agrees within 5%; energy per token from NVML's energy
counter agrees with the integrated power trace within 10% on long windows. Last in the suite's order:
after the compiling tests the GPU's clocks are up."""
import pytest
import torch

DEV = "cuda"


def scan_inputs(b=1, l=8192, d=4096, n=16, dtype=torch.bfloat16):
    """The dense selective scan at the issue's timing shape, with D, z, delta bias and softplus."""
    r = lambda *s, dt=dtype: torch.randn(*s, device=DEV, dtype=dt)
    A = -torch.rand(d, n, device=DEV) - 0.5
    return (r(b, l, d), r(b, l, d) * 0.5, A, r(b, l, n), r(b, l, n), r(d, dt=torch.float32), r(b, l, d),
            r(d, dt=torch.float32), True, False)


def test_the_engine_times_a_kernel_as_do_bench_does():
    """Both flush L2 between calls; the median of each."""
    import triton.testing

    import swimbench.kernels  # noqa: F401  (registers torch.ops.swimbench)
    from swimbench.measure.timing import TimingOptions, time_fn
    from swimbench.measure.workload import scan_impl
    assert scan_impl("dense", DEV) == "triton"
    args = scan_inputs()
    fn = lambda: torch.ops.swimbench.selective_scan(*args)
    opts = TimingOptions(budget_s=1.0, min_reps=20, warmup_reps=3, warmup_s=0.25, flush_l2=True)
    ours = float(torch.tensor(time_fn(fn, opts, DEV).samples_ms).median())
    theirs = triton.testing.do_bench(fn, warmup=100, rep=1000, return_mode="median")
    assert abs(ours / theirs - 1) <= 0.05, f"engine {ours:.4f} ms, do_bench {theirs:.4f} ms"


@pytest.fixture
def nvml():
    from swimbench.measure.energy import Nvml, NvmlUnavailable
    try:
        handle = Nvml.open(DEV)
    except NvmlUnavailable as e:
        pytest.skip(f"needs NVML: {e}")
    if not handle.energy_supported:
        handle.close()
        pytest.skip("needs NVML's total-energy counter (this GPU has none)")
    yield handle
    handle.close()


# (variant, E, k, seq, batch, phase, window s): dense prefill, and Swimba's decode under a CUDA graph
WINDOWS = [("dense", 1, 1, 8192, 1, "prefill", 10.0), ("swimba", 8, 2, 8192, 8, "decode", 5.0)]


@pytest.mark.parametrize("variant, E, k, seq, batch, phase, window", WINDOWS,
                         ids=[f"{v}-{phase}" for v, _, _, _, _, phase, _ in WINDOWS])
@torch.no_grad()
def test_energy_counter_agrees_with_the_power_trace(nvml, variant, E, k, seq, batch, phase, window):
    from swimbench.measure import workload
    from swimbench.measure.energy import PowerSampler, measure_energy
    from swimbench.measure.graphs import capture
    from swimbench.measure.timing import TimingOptions, time_fn
    from swimbench.sweeps.spec import Point, Sweep
    point, sweep = Point(variant, E, k, seq, batch, 1), Sweep()
    model, _ = workload.build(point, sweep, DEV, 0)
    if phase == "prefill":
        x = torch.randn(batch, seq, sweep.d_model, device=DEV, dtype=torch.bfloat16)
        fn, tokens = (lambda: model(x)), batch * seq
    else:
        x1 = torch.randn(batch, 1, sweep.d_model, device=DEV, dtype=torch.bfloat16)
        cache = workload.random_cache(model, batch)
        fn, tokens = capture(lambda: model.step(x1, cache)), batch
    sampler = PowerSampler(nvml, 0.02).start()
    try:
        call_s = float(torch.tensor(time_fn(fn, TimingOptions(budget_s=0.5), DEV).samples_ms).median()) / 1e3
        e = measure_energy(fn, tokens, nvml, DEV, window, call_s=call_s, sampler=sampler)
    finally:
        sampler.stop()
    assert e.trace_joules_per_token is not None, "the power trace does not cover the window"
    ratio = e.trace_joules_per_token / e.joules_per_token
    assert abs(ratio - 1) <= 0.10, f"trace {e.trace_joules_per_token:.4g} J/token, counter {e.joules_per_token:.4g}"
