"""One sweep point measured end to end: prefill, decode, energy and memory, into one results row."""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import Callable, Optional

import torch

from ..layers import dispatch
from ..stats import summarize
from ..sweeps.spec import MeasureSettings, Point, Sweep
from . import workload
from .ceilings import DeviceCeilings, floor_columns
from .energy import COUNTER, POWER_USAGE, Nvml, NvmlUnavailable, PowerSampler, measure_energy
from .graphs import capture
from .timing import TimingOptions, injected_slowdown, is_cuda, launch_ms, slowed, time_fn

MIB = 2 ** 20


def identity(point: Point) -> dict:
    return {"key": point.key, "variant": point.variant, "experts": point.experts, "top_k": point.top_k,
            "seq": point.seq, "batch": point.batch, "layers": point.layers}


@dataclass
class Measured:
    row: dict
    samples: dict               # raw per-sample times, for samples.jsonl


def dispatch_path(model, slots: int) -> Optional[str]:
    """How the model's routed experts are reached for `slots` token slots (layers/dispatch.py's rule),
    None when no layer dispatches tokens to experts."""
    if not any(hasattr(layer, "expert_parameters") for layer in getattr(model, "layers", [])):
        return None
    return dispatch.path(slots)


PHASES = (("prefill", "prefill_ms"), ("decode", "decode_us"))


def combine_repeats(parts: list[Measured]) -> Measured:
    """One row of a point measured once per repeat (`latency --repeats`): each phase's columns from the
    repeat whose median is the median of the repeats' (the lower middle one for an even count), its
    95% interval widened to span every repeat's median, so that it holds the spread between runs,
    which a single run's interval does not see; the samples pooled, each repeat's median kept."""
    if len(parts) == 1:
        return parts[0]
    row = dict(parts[0].row)
    samples = {"decode_calls_per_sample": parts[0].samples.get("decode_calls_per_sample")}
    for phase, col in PHASES:
        medians = [p.row[col] for p in parts]
        middle = parts[sorted(range(len(parts)), key=medians.__getitem__)[(len(parts) - 1) // 2]]
        row.update({k: v for k, v in middle.row.items() if k.startswith(phase + "_")})
        row[f"{col}_ci_lo"] = min(medians + [middle.row[f"{col}_ci_lo"]])
        row[f"{col}_ci_hi"] = max(medians + [middle.row[f"{col}_ci_hi"]])
        row[f"{phase}_samples"] = sum(p.row[f"{phase}_samples"] for p in parts)
        samples[col] = [v for p in parts for v in p.samples[col]]
        samples[f"{col}_repeats"] = medians
    row["repeats"] = len(parts)
    row["wall_s"] = sum(p.row.get("wall_s") or 0.0 for p in parts)
    return Measured(row, samples)


def kernels_of(call) -> Optional[int]:
    """Kernels a timed call launches, read from its CUDA graph; None for eager calls (and the CPU)."""
    return getattr(call, "kernels", None)


class PointMeasurer:
    """Measures points on one device with one run's settings; `nvml`, `sampler` and `ceilings` (the
    device's, measured at the start of the run: they give each row its floor) may be None."""

    def __init__(self, sweep: Sweep, settings: MeasureSettings, device, nvml: Optional[Nvml] = None,
                 sampler: Optional[PowerSampler] = None, note: Callable[[str], None] = lambda s: None,
                 ceilings: Optional[DeviceCeilings] = None):
        self.sweep, self.settings, self.device = sweep, settings, torch.device(device)
        self.cuda = is_cuda(self.device)
        self.nvml, self.sampler, self.note, self.ceilings = nvml, sampler, note, ceilings
        self._energy_failed: Optional[str] = None

    # --- pieces ------------------------------------------------------------------------------------
    def _options(self, flush_l2: bool, sample_target_s: float) -> TimingOptions:
        s = self.settings
        return TimingOptions(budget_s=s.budget_s, min_reps=s.min_reps, warmup_reps=s.warmup_reps,
                             warmup_s=s.warmup_s, flush_l2=flush_l2, sample_target_s=sample_target_s)

    def _label(self, text: str) -> None:
        if self.sampler is not None:
            self.sampler.label = text

    def _reset_peak(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)

    def _peak_mib(self) -> Optional[float]:
        return torch.cuda.max_memory_allocated(self.device) / MIB if self.cuda else None

    def _energy(self, fn, tokens: int, call_ms: float, phase: str) -> dict:
        """Energy columns of one phase; empty when NVML cannot give them (said once per run)."""
        out = {f"{phase}_j_per_token": None, f"{phase}_mean_w": None, f"{phase}_energy_window_s": None,
               f"{phase}_j_per_token_trace": None}
        if not (self.settings.energy and self.nvml is not None and self._energy_failed is None):
            return out
        try:
            e = measure_energy(fn, tokens, self.nvml, self.device, self.settings.energy_window_s,
                               call_s=call_ms / 1e3, sampler=self.sampler)
        except NvmlUnavailable as err:
            self._energy_failed = str(err)
            self.note(f"energy columns empty from here on: {err}")
            return out
        out.update({f"{phase}_j_per_token": e.joules_per_token, f"{phase}_mean_w": e.mean_w,
                    f"{phase}_energy_window_s": e.window_s,
                    f"{phase}_j_per_token_trace": e.trace_joules_per_token})
        return out

    # --- the point ---------------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(self, point: Point) -> Measured:
        s, dev = self.settings, self.device
        t_start = time.perf_counter()
        model, sizing = workload.build(point, self.sweep, dev, s.seed)
        cfg = sizing.cfg
        flops_prefill = sizing.flops_per_token * point.layers
        flops_decode = sizing.decode_flops_per_token * point.layers
        row = {**identity(point), "status": "ok", "device": dev.type, "d_model": cfg.d_model,
               "d_inner": cfg.d_inner, "d_state": cfg.d_state, "d_conv": cfg.d_conv,
               "dtype": self.sweep.dtype, "matched": self.sweep.match, "routing": self.sweep.routing,
               "flops_per_token": flops_prefill, "flops_mismatch_pct": sizing.mismatch_pct,
               "params_total": sizing.params_total * point.layers,
               "params_active": sizing.params_active * point.layers,
               "scan_impl": workload.scan_impl(point.variant, dev)}
        dtype = workload.DTYPES[self.sweep.dtype]
        gen = torch.Generator(device=dev).manual_seed(s.seed + 1)

        # prefill: one forward over (batch, seq), replayed from a CUDA graph unless eager is asked
        x = torch.randn(point.batch, point.seq, cfg.d_model, device=dev, dtype=dtype, generator=gen)
        eager = partial(model, x)               # not a lambda, which pyflakes reads after `del x` below
        pre_mode = s.prefill if self.cuda else "eager"
        self._reset_peak()
        self._label(f"{point.key}/prefill")
        first_ms, launch, forward = None, None, eager
        if self.cuda:                           # the first call compiles; then the host's launch cost
            t = time.perf_counter()
            eager()
            torch.cuda.synchronize(dev)
            first_ms = (time.perf_counter() - t) * 1e3
            launch = launch_ms(eager, dev)
        if pre_mode == "graph":
            self._reset_peak()
            forward = capture(eager, warmup=1)
        slow = injected_slowdown(point.variant)
        if slow:
            self.note(f"{point.variant} slowed by {slow:.0%} on purpose (SWIMBENCH_INJECT_SLOWDOWN): a check "
                      f"of the gate, not a measurement")
            forward = slowed(forward, slow, dev)
        pre = time_fn(forward, self._options(s.flush_l2, 0.0), dev)
        ps = summarize(pre.samples_ms, seed=s.seed)
        tokens = point.batch * point.seq
        pre_bytes, pre_flops = workload.min_bytes(model, x), flops_prefill * tokens
        row.update({"prefill_mode": pre_mode, "prefill_ms": ps.median, "prefill_ms_p10": ps.p10,
                    "prefill_ms_p90": ps.p90, "prefill_ms_ci_lo": ps.ci_lo, "prefill_ms_ci_hi": ps.ci_hi,
                    "prefill_samples": ps.n, "prefill_launch_ms": launch,
                    "prefill_first_call_ms": first_ms if first_ms is not None else pre.first_call_ms,
                    "prefill_tokens_per_s": tokens / (ps.median / 1e3),
                    "prefill_tflops": pre_flops / (ps.median / 1e3) / 1e12,
                    "prefill_gbps": pre_bytes / (ps.median / 1e3) / 1e9,
                    "prefill_bytes": pre_bytes, "prefill_flops": pre_flops,
                    **floor_columns("prefill", ps.median, pre_bytes, pre_flops, self.ceilings),
                    "prefill_peak_mib": self._peak_mib(), "timing_clock": pre.clock})
        self._label(f"{point.key}/prefill-energy")
        row.update(self._energy(forward, tokens, ps.median, "prefill"))
        row["prefill_kernels"] = kernels_of(forward)
        row["prefill_dispatch"] = dispatch_path(model, tokens * cfg.top_k)
        del x, eager, forward
        if self.cuda:
            torch.cuda.empty_cache()            # the prefill graph's pool goes before decode

        # decode: one token's step with its cache, replayed from a CUDA graph unless eager is asked
        self._reset_peak()
        x1 = torch.randn(point.batch, 1, cfg.d_model, device=dev, dtype=dtype, generator=gen)
        cache = workload.random_cache(model, point.batch)
        mode = s.decode if self.cuda else "eager"
        self._label(f"{point.key}/decode")
        step = capture(lambda: model.step(x1, cache)) if mode == "graph" else (lambda: model.step(x1, cache))
        step = slowed(step, slow, dev)
        dec = time_fn(step, self._options(False, s.decode_sample_s), dev)
        us = dec.samples_ms * 1e3
        ds = summarize(us, seed=s.seed)
        dec_bytes, dec_flops = workload.min_bytes(model, x1, cache), flops_decode * point.batch
        row.update({"decode_mode": mode, "decode_us": ds.median, "decode_us_p10": ds.p10,
                    "decode_us_p90": ds.p90, "decode_us_ci_lo": ds.ci_lo, "decode_us_ci_hi": ds.ci_hi,
                    "decode_samples": ds.n, "decode_calls_per_sample": dec.calls_per_sample,
                    "decode_tokens_per_s": point.batch / (ds.median / 1e6),
                    "decode_tflops": dec_flops / (ds.median / 1e6) / 1e12,
                    "decode_gbps": dec_bytes / (ds.median / 1e6) / 1e9,
                    "decode_bytes": dec_bytes, "decode_flops": dec_flops,
                    **floor_columns("decode", ds.median, dec_bytes, dec_flops, self.ceilings),
                    "decode_peak_mib": self._peak_mib()})
        self._label(f"{point.key}/decode-energy")
        row.update(self._energy(step, point.batch, ds.median / 1e3, "decode"))
        row["decode_kernels"] = kernels_of(step)
        row["decode_dispatch"] = dispatch_path(model, point.batch * cfg.top_k)
        self._label("idle")

        if self.nvml is not None:
            row["energy_source"] = COUNTER if row["prefill_j_per_token"] is not None else None
            row["trace_source"] = POWER_USAGE if row["prefill_j_per_token_trace"] is not None else None
            row["sm_clock_mhz"] = self.nvml.sm_clock_mhz()
        row["wall_s"] = time.perf_counter() - t_start
        row["repeats"] = 1
        return Measured(row, {"prefill_ms": pre.samples_ms.tolist(), "decode_us": us.tolist(),
                              "decode_calls_per_sample": dec.calls_per_sample})
