"""The device's ceilings, measured, and the floor they put under a call's time.

Two rates bound any call on a GPU: how fast it can move bytes (a large device-to-device copy) and
how fast it can do FLOPs (a large bf16 dense GEMM, tensor cores). A call that must move B bytes and
do F FLOPs cannot take less than max(B / copy rate, F / GEMM rate): its floor. Measured here rather
than taken from a datasheet, because datasheet peaks are not reached (an H200's 989 dense bf16
TFLOP/s run at ~680 under sustained load) and because every GPU model, clock and driver differs.

torch and triton are imported where measured, so that reading rows and floors needs neither.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

COPY_BYTES = 1 << 30            # 1 GiB: far past any L2, long enough for CUDA events to resolve
GEMM = (8192, 8192, 8192)       # M, N, K: large enough that the GEMM runs at its sustained rate
# A GEMM from idle runs at boost clocks until the power cap bites, ~125 ms in: on an H200 (2026-12-01)
# 785 TFLOP/s at ~1.8 GHz for the first 100 ms, then ~680 at 1.5 GHz. The warm-up runs past that, so
# that the rate is the one a busy sweep sees, and the same whether the GPU was idle or busy before
# (five measurements there, some after 15 s idle: 668 to 679 TFLOP/s, 4227 to 4250 GB/s; 2.4 s each).
WARMUP_MS = 1000
REP_MS = 200

# phase -> (time unit of its columns, units per second): prefill_ms, decode_us
PHASES = {"prefill": ("ms", 1e3), "decode": ("us", 1e6)}
SOURCE = (f"{COPY_BYTES >> 30} GiB device copy, {GEMM[0]}x{GEMM[1]}x{GEMM[2]} bf16 GEMM, medians")


@dataclass(frozen=True)
class DeviceCeilings:
    """What one device sustained: `gbps` copy bandwidth (GB/s, bytes read plus written) and
    `tflops` bf16 dense GEMM rate (TFLOP/s); `source` says how, in words."""
    gbps: Optional[float]
    tflops: Optional[float]
    source: str
    copy_bytes: int = COPY_BYTES
    gemm: tuple = GEMM
    device: Optional[str] = None
    measured_at: Optional[str] = None

    def as_meta(self) -> dict:
        """The shape metadata.json keeps (`swimbench.report.ceilings.resolve` reads it)."""
        return {"gbps": self.gbps, "tflops": self.tflops, "source": self.source,
                "copy_bytes": self.copy_bytes, "gemm_mnk": list(self.gemm), "device": self.device,
                "measured_at": self.measured_at}

    @classmethod
    def from_meta(cls, meta: Optional[dict]) -> Optional["DeviceCeilings"]:
        if not meta or (meta.get("gbps") is None and meta.get("tflops") is None):
            return None
        return cls(meta.get("gbps"), meta.get("tflops"), meta.get("source", "run metadata"),
                   meta.get("copy_bytes", COPY_BYTES), tuple(meta.get("gemm_mnk", GEMM)),
                   meta.get("device"), meta.get("measured_at"))


def _median_ms(fn, device) -> float:
    import torch
    from triton.testing import do_bench
    with torch.cuda.device(device):
        return do_bench(fn, warmup=WARMUP_MS, rep=REP_MS, return_mode="median")


def copy_gbps(device, nbytes: int = COPY_BYTES) -> float:
    """GB/s of a device-to-device copy of `nbytes` (bytes read plus written), median of CUDA-event
    timings; random data, since some memory systems compress zeros."""
    import torch
    src = torch.empty(nbytes // 4, device=device, dtype=torch.float32).normal_()
    dst = torch.empty_like(src)
    ms = _median_ms(lambda: dst.copy_(src), device)
    src = dst = None                          # freed before the next measurement allocates
    return 2 * nbytes / (ms * 1e-3) / 1e9


def gemm_tflops(device, mnk: tuple = GEMM) -> float:
    """TFLOP/s (2 M N K per product) of a bf16 dense GEMM on random data, median of CUDA-event
    timings; random data, since tensor cores draw less power (and clock higher) on zeros."""
    import torch
    m, n, k = mnk
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(m, k, device=device, dtype=torch.bfloat16, generator=gen)
    b = torch.randn(k, n, device=device, dtype=torch.bfloat16, generator=gen)
    c = torch.empty(m, n, device=device, dtype=torch.bfloat16)
    ms = _median_ms(lambda: torch.mm(a, b, out=c), device)
    a = b = c = None
    return 2 * m * n * k / (ms * 1e-3) / 1e12


def measure(device) -> Optional[DeviceCeilings]:
    """Both ceilings of a CUDA device; None elsewhere (a CPU has no ceilings worth its time here)."""
    import torch
    device = torch.device(device)
    if device.type != "cuda":
        return None
    gbps = copy_gbps(device)
    tflops = gemm_tflops(device)
    torch.cuda.empty_cache()
    return DeviceCeilings(gbps, tflops, SOURCE, device=torch.cuda.get_device_name(device),
                          measured_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))


# --- the floor ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Floor:
    seconds: float
    bound: str                  # "memory" or "compute": the larger term


def floor(nbytes: Optional[float], flops: Optional[float],
          ceilings: Optional[DeviceCeilings]) -> Optional[Floor]:
    """The least time a call moving `nbytes` and doing `flops` can take on a device with these
    ceilings; a term whose count or ceiling is unknown is left out, None when both are."""
    if ceilings is None:
        return None
    terms = {}
    if _known(nbytes) and _known(ceilings.gbps):
        terms["memory"] = nbytes / (ceilings.gbps * 1e9)
    if _known(flops) and _known(ceilings.tflops):
        terms["compute"] = flops / (ceilings.tflops * 1e12)
    if not terms:
        return None
    bound = max(terms, key=terms.get)
    return Floor(terms[bound], bound)


def floor_columns(phase: str, median: Optional[float], nbytes, flops,
                  ceilings: Optional[DeviceCeilings]) -> dict:
    """The floor columns of one phase of a results row, `median` in the phase's unit (PHASES):
    {phase}_floor_{unit}, {phase}_x_floor (median / floor) and {phase}_floor_bound; empty without
    ceilings or counts."""
    unit, per_s = PHASES[phase]
    f = floor(nbytes, flops, ceilings)
    ok = f is not None and f.seconds > 0 and _known(median)
    at = f.seconds * per_s if ok else None
    return {f"{phase}_floor_{unit}": at, f"{phase}_x_floor": median / at if ok else None,
            f"{phase}_floor_bound": f.bound if ok else None}


def _known(v) -> bool:
    return v is not None and v == v and v > 0           # v == v: not NaN
