"""Timing of one callable: warm-up, then repetitions until a time budget and a minimum count are met.

On a GPU every sample is bracketed by CUDA events and the host synchronizes once at the end, so the
host's own pace never enters the numbers. On the CPU the clock is `time.perf_counter`. The warm-up
runs (and synchronizes) each call on its own; its first calls absorb Triton's compilation and
autotuning, cuBLAS handle creation and the caching allocator's first allocations. Its last calls give
the estimate from which the number of timed repetitions is chosen.

A sample may group several calls (`sample_target_s`): decode steps under a CUDA graph take a few
microseconds, close to the resolution of an event pair, so each sample times enough back-to-back
calls to last at least that long and reports the time per call.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch


@dataclass(frozen=True)
class TimingOptions:
    budget_s: float = 1.0          # time spent on the timed repetitions of one measurement
    min_reps: int = 10             # ... and at least this many samples
    max_reps: int = 100_000
    warmup_reps: int = 2           # at least this many untimed calls (and never fewer than 2, so that
                                   # the first call, with its one-time costs, never sets the count) ...
    warmup_s: float = 0.25         # ... and calls for this long after the first one
    flush_l2: bool = False         # overwrite the L2 cache before every sample (GPU only)
    sample_target_s: float = 0.0   # group calls so that one sample lasts at least this long


@dataclass
class Timing:
    samples_ms: np.ndarray         # time per call, one value per sample
    calls_per_sample: int
    warmup_calls: int
    first_call_ms: float           # the first warm-up call: compilation and autotuning show here
    clock: str                     # "cuda_events" or "perf_counter"

    @property
    def calls(self) -> int:
        return int(self.samples_ms.size) * self.calls_per_sample


class _HostClock:
    name = "perf_counter"

    def stamp(self):
        return time.perf_counter()

    def sync(self):
        pass

    @staticmethod
    def elapsed_ms(a, b) -> float:
        return (b - a) * 1e3


class _CudaClock:
    name = "cuda_events"

    def __init__(self, device):
        self.device = device

    def stamp(self):
        ev = torch.cuda.Event(enable_timing=True)
        ev.record()
        return ev

    def sync(self):
        torch.cuda.synchronize(self.device)

    @staticmethod
    def elapsed_ms(a, b) -> float:
        return a.elapsed_time(b)


def is_cuda(device) -> bool:
    return torch.device(device).type == "cuda"


def synchronize(device) -> None:
    if is_cuda(device):
        torch.cuda.synchronize(device)


class L2Flusher:
    """Writes a buffer twice the size of the L2 cache, evicting whatever a previous call left there."""

    def __init__(self, device):
        props = torch.cuda.get_device_properties(device)
        size = 2 * max(int(getattr(props, "L2_cache_size", 0)), 64 << 20)
        self.buf = torch.empty(size, dtype=torch.uint8, device=device)

    def __call__(self) -> None:
        self.buf.zero_()


def time_fn(fn: Callable[[], object], opts: TimingOptions, device) -> Timing:
    """Time `fn` (which enqueues its work on the current stream) on `device`."""
    cuda = is_cuda(device)
    if opts.flush_l2 and not cuda:
        raise ValueError("the L2 flush needs a CUDA device")
    clock = _CudaClock(device) if cuda else _HostClock()
    flush: Optional[L2Flusher] = L2Flusher(device) if opts.flush_l2 else None

    warm: list[float] = []
    t0 = 0.0
    while len(warm) < max(2, opts.warmup_reps) or (time.perf_counter() - t0 < opts.warmup_s
                                                   and len(warm) < opts.max_reps):
        if flush is not None:
            flush()
        a = clock.stamp()
        fn()
        b = clock.stamp()
        clock.sync()
        warm.append(clock.elapsed_ms(a, b))
        if len(warm) == 1:
            t0 = time.perf_counter()    # warmup_s counts after the first call, whose compile may be long
    steady = warm[1:] if len(warm) > 1 else warm
    est_ms = max(float(np.median(steady[-5:])), 1e-6)

    group = max(1, math.ceil(opts.sample_target_s * 1e3 / est_ms)) if opts.sample_target_s > 0 else 1
    n = min(opts.max_reps, max(opts.min_reps, math.ceil(opts.budget_s * 1e3 / (est_ms * group))))
    stamps = []
    for _ in range(n):
        if flush is not None:
            flush()
        a = clock.stamp()
        for _ in range(group):
            fn()
        stamps.append((a, clock.stamp()))
    clock.sync()
    samples = np.array([clock.elapsed_ms(a, b) / group for a, b in stamps], dtype=np.float64)
    return Timing(samples, group, len(warm), warm[0], clock.name)


def launch_ms(fn: Callable[[], object], device, calls: int = 3) -> Optional[float]:
    """Host time to launch one call of `fn` (Python, the framework, the driver), taken while a sleep
    kernel keeps the GPU busy so that no launch waits for the GPU. When it reaches the GPU time of
    the call, eager calls leave the GPU waiting: timed eagerly, the row would measure the host.
    None on the CPU, or when the GPU ran out of sleep before the launches ended."""
    if not is_cuda(device):
        return None
    for hold_s in (0.05, 0.5):
        torch.cuda.synchronize(device)
        torch.cuda._sleep(int(hold_s * 2e9))         # cycles: hold_s or longer at <= 2 GHz
        held = torch.cuda.Event()
        held.record()
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        host_s = (time.perf_counter() - t) / calls
        still_held = not held.query()
        torch.cuda.synchronize(device)
        if still_held:
            return host_s * 1e3
    return None


SLOWDOWN_ENV = "SWIMBENCH_INJECT_SLOWDOWN"


def injected_slowdowns() -> dict[str, float]:
    """variant -> the share of its own time by which `SWIMBENCH_INJECT_SLOWDOWN=variant:fraction[,...]`
    slows its timed calls. It exists to check that the gate catches a real slowdown
    (scripts/gpu_gate_reruns.sh); this is the one place that reads it. A value that is not such a
    list is ValueError naming the variable, so that a command can refuse it before measuring."""
    spec = os.environ.get(SLOWDOWN_ENV, "")
    out = {}
    for item in spec.replace(" ", "").split(","):
        if not item:
            continue
        name, sep, frac = item.partition(":")
        try:
            value = float(frac)
        except ValueError:
            value = None
        if not name or not sep or value is None:
            raise ValueError(f"{SLOWDOWN_ENV}={spec!r}: expected variant:fraction, e.g. swimba:0.10")
        if not 0 <= value <= 10:                  # nan fails this too
            raise ValueError(f"{SLOWDOWN_ENV}={spec!r}: the fraction must be from 0 to 10")
        out[name] = value
    return out


def injected_slowdown(variant: str) -> float:
    """The share of its own time by which SWIMBENCH_INJECT_SLOWDOWN slows `variant`, 0.0 when it names
    none (injected_slowdowns)."""
    return injected_slowdowns().get(variant, 0.0)


def slowed(fn: Callable[[], object], fraction: float, device) -> Callable[[], object]:
    """`fn`, then as much extra work as `fraction` of fn's own median time (taken here over a few
    calls): on a GPU a sleep kernel of that many cycles, calibrated against CUDA events, queued on the
    same stream, so that CUDA events see it as part of the call; on the CPU a spin on the host clock."""
    if fraction <= 0:
        return fn
    cuda = is_cuda(device)
    clock = _CudaClock(device) if cuda else _HostClock()
    times = []
    for _ in range(7):
        a = clock.stamp()
        fn()
        b = clock.stamp()
        clock.sync()
        times.append(clock.elapsed_ms(a, b))
    extra_ms = fraction * float(np.median(times[2:]))
    if cuda:
        a = clock.stamp()
        torch.cuda._sleep(1_000_000)
        b = clock.stamp()
        clock.sync()
        cycles = max(1, int(extra_ms * 1_000_000 / max(clock.elapsed_ms(a, b), 1e-6)))

        def call():
            fn()
            torch.cuda._sleep(cycles)
    else:
        def call():
            fn()
            end = time.perf_counter() + extra_ms / 1e3
            while time.perf_counter() < end:
                pass
    call.kernels = getattr(fn, "kernels", None)       # what the graph runs, for kernels_of
    return call
