"""The timing engine and the power sampler of `swimbench latency`, on the CPU (the statistics:
tests/test_stats.py)."""
import time

import numpy as np
import pytest

from swimbench.measure.energy import PowerSample, PowerSampler, integrate
from swimbench.measure.timing import TimingOptions, time_fn


def test_warmup_keeps_a_slow_first_call_out_and_budget_sets_the_count():
    calls = []

    def fn():                                   # the first call "compiles" for 60 ms, then 2 ms each
        time.sleep(0.06 if not calls else 0.002)
        calls.append(1)
    t = time_fn(fn, TimingOptions(budget_s=0.05, min_reps=5, warmup_reps=2, warmup_s=0.0), "cpu")
    assert t.clock == "perf_counter" and t.warmup_calls == 2
    assert t.first_call_ms >= 55
    assert t.samples_ms.max() < 50              # the compile never lands in a sample
    assert 1.9 <= np.median(t.samples_ms) < 15
    assert 5 <= t.samples_ms.size <= 26         # ~0.05 s / 2 ms, at least min_reps
    assert len(calls) == t.warmup_calls + t.calls


def test_warmup_time_counts_after_the_first_call():
    calls = []

    def fn():                                   # a 100 ms compile, longer than warmup_s itself
        time.sleep(0.1 if not calls else 0.002)
        calls.append(1)
    t = time_fn(fn, TimingOptions(budget_s=0.01, min_reps=3, warmup_reps=2, warmup_s=0.04), "cpu")
    assert t.warmup_calls >= 8                  # ~0.04 s of steady calls, not just the two required


def test_min_reps_wins_over_a_small_budget_and_grouping_reports_per_call_time():
    t = time_fn(lambda: time.sleep(0.003), TimingOptions(budget_s=1e-4, min_reps=4, warmup_reps=1,
                                                         warmup_s=0.0), "cpu")
    assert t.samples_ms.size == 4
    g = time_fn(lambda: time.sleep(0.001), TimingOptions(budget_s=0.03, min_reps=2, warmup_reps=2,
                                                         warmup_s=0.0, sample_target_s=0.01), "cpu")
    assert g.calls_per_sample >= 4
    assert 0.9 <= np.median(g.samples_ms) < 5   # per call, not per sample


def test_l2_flush_is_gpu_only():
    with pytest.raises(ValueError, match="CUDA"):
        time_fn(lambda: None, TimingOptions(flush_l2=True), "cpu")


def test_integrate_trapezoid_with_interpolated_ends():
    const = [(0.0, 100.0), (1.0, 100.0), (2.0, 100.0), (3.0, 100.0)]
    assert integrate(const, 0.5, 2.5) == pytest.approx(200.0)
    ramp = [(0.0, 0.0), (10.0, 100.0)]              # P = 10 t
    assert integrate(ramp, 2.0, 4.0) == pytest.approx(5 * (16 - 4))
    assert integrate(ramp, -1.0, 4.0) is None        # the trace must span the window
    assert integrate(ramp, 4.0, 4.0) is None


class _SteadyGpu:
    """A power source for the sampler thread: 250 W for the 1-s average, 260 W instantaneous."""
    def power_w(self):
        return 250.0

    def instant_power_w(self):
        return 260.0


def test_power_sampler_traces_in_the_background_and_integrates():
    s = PowerSampler(_SteadyGpu(), interval_s=0.005).start()
    s.label = "dense/prefill"
    t0 = time.perf_counter()
    time.sleep(0.12)
    t1 = time.perf_counter()
    time.sleep(0.03)
    s.stop()
    new = s.take_new()
    assert len(new) >= 10 and all(isinstance(p, PowerSample) for p in new)
    assert {p.label for p in new} <= {"idle", "dense/prefill"}
    assert s.take_new() == []                       # taken once
    assert s.integrate(t0, t1) == pytest.approx(250.0 * (t1 - t0))
    assert s.integrate(t0, t1, "instant_w") == pytest.approx(260.0 * (t1 - t0))
