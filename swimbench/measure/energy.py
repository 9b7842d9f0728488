"""Energy and power from NVML (nvidia-ml-py): the total-energy counter and a power trace.

Two sources, recorded under their own names wherever a figure comes from them:

- `nvml_total_energy_counter`: nvmlDeviceGetTotalEnergyConsumption, millijoules since the driver
  loaded. On our H100 it advances about every 100 ms, so a window is opened and closed on a change
  of the counter (a "tick") while the GPU is kept busy, which removes the quantization at both ends.
  Joules per token = mean power over the window / tokens per second of the same back-to-back calls.
- `nvml_power_usage`: nvmlDeviceGetPowerUsage sampled by a background thread for the trace. On the
  H100 it is a one-second average that also updates about every 100 ms, so integrating it over a
  window lags the load and under-reads by several percent; it is kept for plots and as a check.
  Where the driver offers it, the instantaneous field (NVML_FI_DEV_POWER_INSTANT) is sampled beside it.
"""
from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Optional

import torch

COUNTER = "nvml_total_energy_counter"
POWER_USAGE = "nvml_power_usage"
POWER_INSTANT = "nvml_power_instant"


class NvmlUnavailable(RuntimeError):
    """NVML (or the part of it we need) cannot be used here; the message says why."""


def _field_value(v):
    # c_nvmlFieldValue_t.valueType: 0 double, 1 uint, 2 ulong, 3 ulonglong, 4 slonglong, 5 sint
    attr = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal"}.get(v.valueType, "uiVal")
    return getattr(v.value, attr)


class Nvml:
    """NVML for the GPU that backs one torch device."""

    def __init__(self, pynvml, handle):
        self._nv = pynvml
        self.handle = handle
        self.energy_supported = self._probe(lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(handle))
        self.instant_supported = self._probe(self._instant_mw)

    @classmethod
    def open(cls, device) -> "Nvml":
        try:
            import pynvml
        except ImportError as e:                          # nvidia-ml-py not installed
            raise NvmlUnavailable(f"nvidia-ml-py is not importable ({e})") from None
        try:
            pynvml.nvmlInit()
        except Exception as e:                            # no driver library, no GPU, ...
            raise NvmlUnavailable(f"NVML did not initialise ({e})") from None
        try:
            handle = cls._handle(pynvml, torch.device(device))
        except Exception as e:
            pynvml.nvmlShutdown()
            raise NvmlUnavailable(f"NVML has no handle for {device} ({e})") from None
        return cls(pynvml, handle)

    @staticmethod
    def _handle(pynvml, device: torch.device):
        index = device.index if device.index is not None else torch.cuda.current_device()
        uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
        if uuid is not None:                              # robust to CUDA_VISIBLE_DEVICES reordering
            try:
                return pynvml.nvmlDeviceGetHandleByUUID("GPU-" + str(uuid))
            except Exception:
                pass
        return pynvml.nvmlDeviceGetHandleByIndex(index)

    @staticmethod
    def _probe(call) -> bool:
        try:
            call()
            return True
        except Exception:
            return False

    def _instant_mw(self) -> int:
        v = self._nv.nvmlDeviceGetFieldValues(self.handle, [self._nv.NVML_FI_DEV_POWER_INSTANT])[0]
        if v.nvmlReturn != 0:
            raise NvmlUnavailable("NVML_FI_DEV_POWER_INSTANT is not supported")
        return _field_value(v)

    def close(self) -> None:
        try:
            self._nv.nvmlShutdown()
        except Exception:
            pass

    # --- readings --------------------------------------------------------------------------------
    def energy_mj(self) -> int:
        return int(self._nv.nvmlDeviceGetTotalEnergyConsumption(self.handle))

    def power_w(self) -> float:
        return self._nv.nvmlDeviceGetPowerUsage(self.handle) / 1000.0

    def instant_power_w(self) -> Optional[float]:
        return self._instant_mw() / 1000.0 if self.instant_supported else None

    def _get(self, fn, *args, scale=1.0):
        try:
            return fn(self.handle, *args) * scale
        except Exception:
            return None

    def sm_clock_mhz(self) -> Optional[int]:
        return self._get(self._nv.nvmlDeviceGetClockInfo, self._nv.NVML_CLOCK_SM)

    def info(self) -> dict:
        """What the environment capture records of this GPU."""
        nv = self._nv

        def text(x):
            return x.decode() if isinstance(x, bytes) else x
        try:
            driver = text(nv.nvmlSystemGetDriverVersion())
        except Exception:
            driver = None
        return {
            "gpu_name_nvml": text(_safe(lambda: nv.nvmlDeviceGetName(self.handle))),
            "driver": driver,
            "sm_clock_mhz": self.sm_clock_mhz(),
            "sm_clock_max_mhz": self._get(nv.nvmlDeviceGetMaxClockInfo, nv.NVML_CLOCK_SM),
            "mem_clock_mhz": self._get(nv.nvmlDeviceGetClockInfo, nv.NVML_CLOCK_MEM),
            "power_limit_w": self._get(nv.nvmlDeviceGetEnforcedPowerLimit, scale=1e-3),
            "temperature_c": self._get(nv.nvmlDeviceGetTemperature, nv.NVML_TEMPERATURE_GPU),
            "energy_counter": self.energy_supported,
            "power_instant_field": self.instant_supported,
        }


def _safe(call):
    try:
        return call()
    except Exception:
        return None


# --- the power trace --------------------------------------------------------------------------------
@dataclass(frozen=True)
class PowerSample:
    t: float                    # time.perf_counter(), for integration against windows
    unix: float                 # time.time(), for the trace file
    power_w: float              # nvmlDeviceGetPowerUsage (one-second average on the H100)
    instant_w: Optional[float]  # NVML_FI_DEV_POWER_INSTANT where supported
    label: str                  # what was running: "<row key>/<phase>" or "idle"


class PowerSampler:
    """Samples power every `interval_s` in a daemon thread; `label` tags what the GPU is doing."""

    def __init__(self, nvml: Nvml, interval_s: float = 0.02):
        self.nvml, self.interval_s = nvml, interval_s
        self.samples: list[PowerSample] = []
        self.label = "idle"
        self._written = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="swimbench-power", daemon=True)
        self.errors = 0

    def start(self) -> "PowerSampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)

    def _run(self) -> None:
        nxt = time.perf_counter()
        while not self._stop.is_set():
            try:
                p = self.nvml.power_w()
                i = self.nvml.instant_power_w()
                self.samples.append(PowerSample(time.perf_counter(), time.time(), p, i, self.label))
            except Exception:
                self.errors += 1
            nxt += self.interval_s
            self._stop.wait(max(0.0, nxt - time.perf_counter()))

    def take_new(self) -> list[PowerSample]:
        """The samples not yet taken (for appending to the trace file after each row)."""
        n = len(self.samples)
        out, self._written = self.samples[self._written:n], n
        return out

    def integrate(self, t0: float, t1: float, field: str = "power_w") -> Optional[float]:
        """Joules between perf_counter times t0 and t1 by the trapezoid rule over the samples,
        interpolated at both ends; None without samples on both sides of the window."""
        pts = [(s.t, getattr(s, field)) for s in list(self.samples) if getattr(s, field) is not None]
        return integrate(pts, t0, t1)


def integrate(points: list[tuple[float, float]], t0: float, t1: float) -> Optional[float]:
    """Integral of a piecewise-linear signal given as sorted (t, value) points over [t0, t1]."""
    if t1 <= t0 or len(points) < 2 or points[0][0] > t0 or points[-1][0] < t1:
        return None

    def at(t):
        for (ta, va), (tb, vb) in zip(points, points[1:]):
            if ta <= t <= tb:
                return va if tb == ta else va + (vb - va) * (t - ta) / (tb - ta)
        raise AssertionError("unreachable: t lies inside the samples")
    inner = [(t, v) for t, v in points if t0 < t < t1]
    pts = [(t0, at(t0))] + inner + [(t1, at(t1))]
    return sum((tb - ta) * (va + vb) / 2 for (ta, va), (tb, vb) in zip(pts, pts[1:]))


# --- energy over a window of back-to-back calls ---------------------------------------------------
@dataclass(frozen=True)
class EnergyResult:
    joules_per_token: float
    mean_w: float
    window_s: float             # between the two counter ticks
    calls: int
    tokens_per_s: float         # of the back-to-back calls in the window (CUDA events)
    source: str
    trace_joules_per_token: Optional[float]   # the same window integrated from nvml_power_usage
    trace_mean_w: Optional[float]
    instant_joules_per_token: Optional[float]  # ... and from the instantaneous field, if any
    t0: float                   # the window, perf_counter and unix time, to find it in the trace
    t1: float
    unix0: float


def measure_energy(fn: Callable[[], object], tokens_per_call: int, nvml: Nvml, device,
                   window_s: float = 1.0, call_s: float = 1e-3,
                   sampler: Optional[PowerSampler] = None, lead_in_s: float = 0.2,
                   poll_s: float = 1e-3, tick_timeout_s: float = 2.0) -> EnergyResult:
    """Run `fn` back to back for at least `window_s` between two ticks of the energy counter.

    `call_s` (a timing estimate of one call) sets how many calls stay in flight: enough for ~5 ms of
    work, so the GPU never idles while the host reads NVML.
    """
    if not nvml.energy_supported:
        raise NvmlUnavailable("this GPU has no total-energy counter")
    depth = max(2, math.ceil(5e-3 / max(call_s, 1e-7)))
    ring: deque = deque()

    def enqueue():
        fn()
        ev = torch.cuda.Event()
        ev.record()
        ring.append(ev)
        if len(ring) > depth:
            ring.popleft().synchronize()

    def run_until_tick(ref: int, count: bool) -> tuple[float, int, int]:
        deadline = time.perf_counter() + tick_timeout_s
        last, calls = 0.0, 0
        while True:
            enqueue()
            calls += count
            now = time.perf_counter()
            if now - last >= poll_s:
                last = now
                e = nvml.energy_mj()
                if e != ref:
                    return time.perf_counter(), e, calls
                if now > deadline:
                    raise NvmlUnavailable(f"the energy counter did not change within {tick_timeout_s} s")

    torch.cuda.synchronize(device)
    t = time.perf_counter()
    while time.perf_counter() - t < lead_in_s:
        enqueue()
    t0, e0, _ = run_until_tick(nvml.energy_mj(), count=False)
    unix0 = time.time()
    start = torch.cuda.Event(enable_timing=True)
    start.record()
    calls = 0
    while time.perf_counter() - t0 < window_s:
        enqueue()
        calls += 1
    t1, e1, more = run_until_tick(nvml.energy_mj(), count=True)
    end = torch.cuda.Event(enable_timing=True)
    end.record()
    calls += more
    torch.cuda.synchronize(device)

    if sampler is not None:                       # let the trace reach past the window's end
        deadline = time.perf_counter() + 10 * sampler.interval_s + 0.1
        while (not sampler.samples or sampler.samples[-1].t < t1) and time.perf_counter() < deadline:
            time.sleep(sampler.interval_s / 4)
    window = t1 - t0
    gpu_s = start.elapsed_time(end) / 1e3
    tok_s = calls * tokens_per_call / gpu_s
    mean_w = (e1 - e0) / 1e3 / window
    trace_j = sampler.integrate(t0, t1) if sampler is not None else None
    inst_j = sampler.integrate(t0, t1, "instant_w") if sampler is not None else None
    return EnergyResult(
        joules_per_token=mean_w / tok_s, mean_w=mean_w, window_s=window, calls=calls, tokens_per_s=tok_s,
        source=COUNTER,
        trace_joules_per_token=None if trace_j is None else trace_j / window / tok_s,
        trace_mean_w=None if trace_j is None else trace_j / window,
        instant_joules_per_token=None if inst_j is None else inst_j / window / tok_s,
        t0=t0, t1=t1, unix0=unix0)
