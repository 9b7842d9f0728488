"""One generation configuration measured into one row: a whole model (swimbench.models) of a design, its
time to first token, its per-token decode latency over the generated tokens, tokens/s, energy per
generated token and peak memory; or mamba-ssm's MambaLMHeadModel of the same size through its own
generate(cg=True). Docs: docs/generate.md.

Our decode is the whole model's step, greedy choice and feedback included, captured in one CUDA graph:
each replay reads the last token from a device buffer, writes the next one there and into the output,
so that a generation is a prefill and new_tokens - 1 replays with no host round trip. Every decode step
is bracketed by a timestamp on the device's stream (CUDA events; perf_counter on the CPU, where the step
runs eagerly), and so is mamba-ssm's, whose captured step is wrapped where its decode() looks it up.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from .. import mamba_ref
from ..flops.model import ModelDims, SizedModel, size_model
from ..models.lm import LanguageModel
from ..stats import summarize
from ..sweeps.spec import COMPARATOR, GenerateSweep, GenPoint, MeasureSettings
from .energy import COUNTER, Nvml, NvmlUnavailable, PowerSampler, measure_energy
from .graphs import capture
from .point import MIB, Measured, identity
from .workload import DTYPES

MAX_GENERATIONS = 50            # timed generations per row, at most (each gives new_tokens - 1 steps)


def timed_enough(n: int, elapsed_s: float, settings: MeasureSettings) -> bool:
    """Whether a row's timed generations stop after `n` of them in `elapsed_s`: the budget and min_reps
    met, or MAX_GENERATIONS, or four budgets past (min_reps is a wish when a generation is long).
    swimbench.measure.estimate steps through it too."""
    return (n >= MAX_GENERATIONS or (n >= settings.min_reps and elapsed_s >= settings.budget_s)
            or (n >= 1 and elapsed_s > 4 * settings.budget_s))


def dims_of(sweep: GenerateSweep) -> ModelDims:
    return ModelDims.of(sweep.preset, sweep.d_model, sweep.n_layer, sweep.vocab_size)


def sized(point: GenPoint, sweep: GenerateSweep) -> SizedModel:
    """The model of a point, every block FLOP-matched to dense's (the comparator is dense's size)."""
    variant = "dense" if point.variant == COMPARATOR else point.variant
    return size_model(dims_of(sweep), variant, point.experts, point.top_k, sweep.expand, sweep.d_state,
                      sweep.d_conv, sweep.align, routing=sweep.routing, capacity_factor=sweep.capacity_factor,
                      ffn_mult=sweep.ffn_mult)


class _Stamps:
    """Timestamps on the device's stream: CUDA events recorded as work is queued (no host wait), or the
    host's clock after a synchronization on the CPU."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.marks: list = []

    def mark(self) -> None:
        if self.cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            self.marks.append(ev)
        else:
            self.marks.append(time.perf_counter())

    def intervals_ms(self) -> np.ndarray:
        if self.cuda:
            torch.cuda.synchronize()
            return np.array([a.elapsed_time(b) for a, b in zip(self.marks, self.marks[1:])])
        return np.diff(np.array(self.marks)) * 1e3


@dataclass
class Generation:
    ttft_ms: list[float]
    token_ms: list[float]
    total_ms: list[float]           # each whole generation, prefill included

    def add(self, stamps: _Stamps) -> None:
        """One generation's stamps: its start, its first token, and after each decode step."""
        d = stamps.intervals_ms()
        self.ttft_ms.append(float(d[0]))
        self.token_ms += d[1:].tolist()
        self.total_ms.append(float(d.sum()))


class GenerationMeasurer:
    """Measures generation points on one device with one run's settings; `nvml` and `sampler` may be None."""

    def __init__(self, sweep: GenerateSweep, settings: MeasureSettings, device, nvml: Optional[Nvml] = None,
                 sampler: Optional[PowerSampler] = None, note: Callable[[str], None] = lambda s: None):
        self.sweep, self.settings, self.device = sweep, settings, torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.nvml, self.sampler, self.note = nvml, sampler, note
        self._energy_failed: Optional[str] = None

    def _label(self, text: str) -> None:
        if self.sampler is not None:
            self.sampler.label = text

    def _sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def _generations(self, one: Callable[[_Stamps], None]) -> Generation:
        """Untimed warm-up generations, then timed ones until the budget and min_reps are met."""
        s = self.settings
        for _ in range(s.warmup_reps):
            one(_Stamps(self.device))
        self._sync()
        out, t0 = Generation([], [], []), time.perf_counter()
        while not timed_enough(len(out.ttft_ms), time.perf_counter() - t0, s):
            stamps = _Stamps(self.device)
            one(stamps)
            out.add(stamps)
        return out

    def _energy(self, step: Callable[[], object], tokens: int, call_ms: float) -> dict:
        out = {"gen_j_per_token": None, "gen_mean_w": None, "gen_energy_window_s": None}
        if not (self.settings.energy and self.nvml is not None and self._energy_failed is None):
            return out
        try:
            e = measure_energy(step, tokens, self.nvml, self.device, self.settings.energy_window_s,
                               call_s=call_ms / 1e3, sampler=self.sampler)
        except NvmlUnavailable as err:
            self._energy_failed = str(err)
            self.note(f"energy columns empty from here on: {err}")
            return out
        return {"gen_j_per_token": e.joules_per_token, "gen_mean_w": e.mean_w, "gen_energy_window_s": e.window_s,
                "energy_source": COUNTER}

    @torch.no_grad()
    def __call__(self, point: GenPoint) -> Measured:
        t_start = time.perf_counter()
        sweep, dev = self.sweep, self.device
        model_size = sized(point, sweep)
        cfg = model_size.config
        row = {**identity(point), "status": "ok", "device": dev.type, "model": point.model,
               "new_tokens": point.new_tokens, "vocab_size": cfg.vocab_size, "d_model": cfg.d_model,
               "d_inner": cfg.mixer.d_inner, "d_state": cfg.mixer.d_state, "d_conv": cfg.mixer.d_conv,
               "dtype": sweep.dtype, "matched": True, "routing": sweep.routing,
               "flops_per_token": model_size.flops_per_token, "flops_mismatch_pct": model_size.mismatch_pct,
               "params_total": model_size.params_total, "params_active": model_size.params_active}
        gen = torch.Generator(device=dev).manual_seed(self.settings.seed + 1)
        prompt = torch.randint(0, cfg.vocab_size, (point.batch, point.seq), device=dev, generator=gen)
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(dev)
        self._label(f"{point.variant}/{point.key}/generate")         # the trace reads the variant first
        if point.variant == COMPARATOR:
            timed, step, extra = self._mamba_ssm(point, cfg, prompt)
        else:
            timed, step, extra = self._ours(point, cfg, prompt)
        row.update(extra)
        ttft = summarize(np.asarray(timed.ttft_ms), seed=self.settings.seed)
        tok = summarize(np.asarray(timed.token_ms), seed=self.settings.seed)
        row.update({"ttft_ms": ttft.median, "ttft_ms_p10": ttft.p10, "ttft_ms_p90": ttft.p90,
                    "ttft_ms_ci_lo": ttft.ci_lo, "ttft_ms_ci_hi": ttft.ci_hi, "ttft_samples": ttft.n,
                    "token_ms": tok.median, "token_ms_p10": tok.p10, "token_ms_p90": tok.p90,
                    "token_ms_ci_lo": tok.ci_lo, "token_ms_ci_hi": tok.ci_hi, "token_samples": tok.n,
                    "gen_tokens_per_s": point.batch / (tok.median / 1e3),
                    "e2e_tokens_per_s": point.batch * point.new_tokens / (float(np.median(timed.total_ms)) / 1e3),
                    "timing_clock": "cuda_events" if self.cuda else "perf_counter"})
        if step is not None:
            self._label(f"{point.variant}/{point.key}/generate-energy")
            row.update(self._energy(step, point.batch, tok.median))
        row["gen_peak_mib"] = torch.cuda.max_memory_allocated(dev) / MIB if self.cuda else None
        if self.nvml is not None:
            row["sm_clock_mhz"] = self.nvml.sm_clock_mhz()
        self._label("idle")
        row["wall_s"] = time.perf_counter() - t_start
        return Measured(row, {"ttft_ms": timed.ttft_ms, "token_ms": timed.token_ms})

    # --- our model ---------------------------------------------------------------------------------
    def _ours(self, point: GenPoint, cfg, prompt):
        from .workload import scan_impl
        dev, b, n = self.device, point.batch, point.new_tokens
        torch.manual_seed(self.settings.seed)
        model = LanguageModel(cfg, device=dev, dtype=DTYPES[self.sweep.dtype]).eval()
        cache = model.allocate_cache(b)
        last = torch.zeros(b, dtype=torch.long, device=dev)             # the token each step reads
        out = torch.zeros(b, n, dtype=torch.long, device=dev)           # the generated tokens
        pos = torch.zeros(1, dtype=torch.long, device=dev)              # where the next one goes

        def emit(logits):
            nxt = logits.argmax(-1)
            last.copy_(nxt)
            out.index_copy_(1, pos, nxt.view(b, 1))
            pos.add_(1).remainder_(n)                                   # replays past n wrap around

        def prefill():
            emit(model(prompt, cache, last=1)[:, -1])

        def decode():
            emit(model.step(last, cache))

        graph = self.cuda
        if graph:
            prefill()                                                   # compile before the capture
            step = capture(decode, warmup=2)
        else:
            step = decode

        def one(stamps: _Stamps):
            pos.zero_()
            stamps.mark()
            prefill()
            stamps.mark()
            for _ in range(n - 1):
                step()
                stamps.mark()
        timed = self._generations(one)
        self.generated = out                                            # the last generation's tokens
        extra = {"prefill_mode": "eager", "decode_mode": "graph" if graph else "eager",
                 "scan_impl": scan_impl(point.variant, dev)}
        return timed, (step if self.cuda else None), extra

    # --- mamba-ssm's MambaLMHeadModel through its own generate ----------------------------------------
    def _mamba_ssm(self, point: GenPoint, cfg, prompt):
        if not self.cuda:
            raise RuntimeError("mamba-ssm's generate needs a CUDA GPU (it builds torch.cuda.Event objects)")
        from contextlib import nullcontext
        native = mamba_ref.has_cuda_scan()
        dims = dims_of(self.sweep)
        torch.manual_seed(self.settings.seed)
        conf = mamba_ref.lm_config(dims.d_model, dims.n_layer, dims.vocab_size, fused=native,
                                   d_state=self.sweep.d_state, d_conv=self.sweep.d_conv, expand=self.sweep.expand)
        paths = nullcontext() if native else mamba_ref.reference_paths()
        b, length = point.batch, point.seq + point.new_tokens
        with paths:
            model = mamba_ref.lm_head_model()(conf, device=self.device, dtype=DTYPES[self.sweep.dtype]).eval()
            model.generate(prompt, max_length=length, cg=True)         # captures its decode graph
            graphs = model._decoding_cache.callables
            captured = graphs[(b, 1)]
            current: list[_Stamps] = []

            def stamped(*args):
                current[-1].mark()                                      # a token is out: the next step
                return captured(*args)
            graphs[(b, 1)] = stamped

            def one(stamps: _Stamps):
                current.append(stamps)
                stamps.mark()
                model.generate(prompt, max_length=length, cg=True)
                stamps.mark()
            timed = self._generations(one)
            pos = torch.full((b, 1), point.seq, dtype=torch.long, device=self.device)
            ids = torch.zeros(b, 1, dtype=torch.long, device=self.device)

            def step():                                 # its graph's buffers are inference tensors
                with torch.inference_mode():
                    captured(ids, pos, point.seq)
        impl = "mamba_ssm generate(cg=True)" + ("" if native else
                                                 ": reference scan, CUDA extension missing")
        return timed, step, {"prefill_mode": "eager", "decode_mode": "graph", "scan_impl": impl}
