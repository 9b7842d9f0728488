"""How long a run will take, before it runs: each call's work (FLOPs from swimbench.flops, the bytes of
the weights it reads, its layers' host time) against a kind of device's rough rates, and the calls the
timing loops make of it (`time_fn`'s rule for latency and ep, `GenerationMeasurer`'s for generate).

An estimate, not a measurement: the rates are round figures (ROUGH), right to within a few times, so
that a run of hours is told from a run of minutes before it starts (docs/generate.md, "Estimates").
"""
from __future__ import annotations

from dataclasses import dataclass

from ..flops.model import SizedModel
from ..sweeps.spec import MeasureSettings

DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}


@dataclass(frozen=True)
class Rates:
    """Round figures of one kind of device. `flops_per_s` and `bytes_per_s`, per dtype: what its dense
    GEMMs and its memory sustain (on the CPU one thread: the commands time the CPU on one); `block_s`:
    the host's time to launch one block's ops eagerly, `graph_block_s` replayed from a CUDA graph;
    `scan_position_s`: one block's reference scan per position (a Python loop over time on the CPU; 0
    where the scan is one fused kernel), all three for a dense block; `routed`: how many times that
    a routed design's block takes (its router, dispatch and combine are many more small ops);
    `param_s`: building the model, per parameter."""
    flops_per_s: dict
    bytes_per_s: dict
    block_s: float
    graph_block_s: float
    scan_position_s: float
    routed: float
    param_s: float


# CPU: one thread of this project's 2-core CI machine, shared (2026-12-07): a 1024x2048x2048 GEMM ran
# at 19 GFLOP/s in fp32 and 46 in bf16, a bf16 GEMV read 2.4 GB/s (fp32 9.9), a small op took 7 us;
# `generate` of the tiny preset (3 blocks): dense 4.9 ms to its first token at prompt 24 (0.07 ms per
# block and position: the reference scan's loop) and 1.8 ms per decode step (0.6 ms per block,
# eager); Swimba at batch 3, prompt 100: 150 ms (0.5 ms per block and position), 23 ms per step
# (7.6 ms per block); the 130m dense model 55 ms per step (its 0.26 GB of bf16 weights at 4.7 GB/s),
# the 1.4b one 3.1 s (2.7 GB: 0.9 GB/s, with other processes busy), 7.3 s to its first token at prompt
# 24 and 50 s to build (36 ns per parameter). Under load from other processes dense took 4x as long:
# the figures below sit between the quiet and the busy machine.
# GPU: an H100-class card, bf16 GEMMs at ~600 TFLOP/s, ~3 TB/s, ~5 us per eager launch of ~20 ops a
# block, a replayed graph ~1 us per kernel (docs/performance.md).
ROUGH = {
    "cpu": Rates(flops_per_s={"bf16": 2e10, "fp16": 3e9, "fp32": 2e10},
                 bytes_per_s={"bf16": 2e9, "fp16": 2e9, "fp32": 5e9}, block_s=6e-4, graph_block_s=6e-4,
                 scan_position_s=7e-5, routed=10.0, param_s=3e-8),
    "cuda": Rates(flops_per_s={"bf16": 6e14, "fp16": 6e14, "fp32": 5e13},
                  bytes_per_s={"bf16": 3e12, "fp16": 3e12, "fp32": 3e12}, block_s=1e-4, graph_block_s=1e-5,
                  scan_position_s=0.0, routed=3.0, param_s=1e-10),
}
BUILD_S = 1.0           # per row: building the layer or model, its inputs, the FLOP matching


def rates_of(device_type: str) -> Rates:
    return ROUGH["cuda" if device_type == "cuda" else "cpu"]


def call_s(flops: float, nbytes: float, blocks: int, positions: int, rates: Rates, dtype: str,
           graph: bool = False, routed: bool = False) -> float:
    """One call: the longer of its FLOPs and its bytes at the device's rates, plus its blocks' host time
    (and the reference scan's per-position loop over `positions`)."""
    device = max(flops / rates.flops_per_s[dtype], nbytes / rates.bytes_per_s[dtype])
    host = blocks * ((rates.graph_block_s if graph else rates.block_s) + positions * rates.scan_position_s)
    return device + host * (rates.routed if routed else 1.0)


def _routed(variant: str) -> bool:
    from .. import designs
    return variant in designs.names() and designs.get(variant).experts


# --- generate: whole models --------------------------------------------------------------------------
def generation_s(model: SizedModel, prompt: int, batch: int, new_tokens: int, dtype: str, rates: Rates,
                 graph: bool) -> float:
    """One greedy generation: the prompt's prefill (every weight read once, the head on the last
    position), then new_tokens - 1 decode steps (each reads the weights its sequences' experts use)."""
    size = DTYPE_BYTES[dtype]
    blocks = model.dims.n_layer
    mixer_flops = model.flops_per_token - model.head_flops_per_token
    routed = _routed(model.config.mixer.variant)
    prefill = call_s(batch * prompt * mixer_flops + batch * model.head_flops_per_token,
                     model.params_total * size, blocks, prompt, rates, dtype, routed=routed)
    step = call_s(batch * model.flops_per_token, min(model.params_total, batch * model.params_active) * size,
                  blocks, 1, rates, dtype, graph, routed)
    return prefill + (new_tokens - 1) * step


def generations(one_s: float, settings: MeasureSettings) -> int:
    """How many timed generations a row makes when each takes `one_s`: GenerationMeasurer's rule,
    stepped through."""
    from .generation import timed_enough
    n = 0
    while not timed_enough(n, n * one_s, settings):
        n += 1
    return n


def generate_row_s(model: SizedModel, prompt: int, batch: int, new_tokens: int, dtype: str,
                   settings: MeasureSettings, device_type: str) -> float:
    """One generate row: building the model, the warm-up and timed generations, the energy window."""
    rates = rates_of(device_type)
    one = generation_s(model, prompt, batch, new_tokens, dtype, rates, graph=device_type == "cuda")
    energy = settings.energy_window_s if (device_type == "cuda" and settings.energy) else 0.0
    return (BUILD_S + model.params_total * rates.param_s
            + (settings.warmup_reps + generations(one, settings)) * one + energy)


# --- latency and ep: one layer, or a stack of them ------------------------------------------------------
def layer_calls_s(variant: str, flops_prefill: float, flops_step: float, params_total: int,
                  params_active: int, seq: int, batch: int, layers: int, dtype: str, device_type: str,
                  graph_prefill: bool, graph_decode: bool) -> tuple[float, float]:
    """(prefill, decode step) of `layers` layers: FLOPs per token of each phase, the layer's parameters."""
    rates, size, routed = rates_of(device_type), DTYPE_BYTES[dtype], _routed(variant)
    prefill = call_s(layers * batch * seq * flops_prefill, layers * params_total * size, layers, seq, rates,
                     dtype, graph_prefill, routed)
    step = call_s(layers * batch * flops_step, layers * min(params_total, batch * params_active) * size,
                  layers, 1, rates, dtype, graph_decode, routed)
    return prefill, step


def timed_phase_s(call: float, settings: MeasureSettings) -> float:
    """One phase of a latency row (measure.timing.time_fn): warm-up calls (at least two, and for
    warmup_s), then the timed calls (the budget, and at least min_reps)."""
    warm = max(max(2, settings.warmup_reps) * call, settings.warmup_s + call)
    return warm + max(settings.min_reps * call, settings.budget_s)


def latency_row_s(prefill: float, step: float, settings: MeasureSettings, device_type: str) -> float:
    """One latency row and repeat: building the layer, prefill and decode timed, their energy windows."""
    energy = 2 * settings.energy_window_s if (device_type == "cuda" and settings.energy) else 0.0
    return BUILD_S + timed_phase_s(prefill, settings) + timed_phase_s(step, settings) + energy


def fixed_calls_s(prefill: float, step: float, calls: int) -> float:
    """An ep row: `calls` (warm-up and timed) of each phase, and building the layer."""
    return BUILD_S + calls * (prefill + step)



def generate_s(sweep, points, settings: MeasureSettings, device_type: str) -> float:
    """A generate sweep: every row's model at its FLOP-matched size (a size that cannot be matched
    is an error row, quick)."""
    from .generation import sized
    total = 0.0
    for p in points:
        try:
            model = sized(p, sweep)
        except ValueError:
            total += BUILD_S
            continue
        total += generate_row_s(model, p.seq, p.batch, p.new_tokens, sweep.dtype, settings, device_type)
    return total


def layer_points_s(sweep, points, settings: MeasureSettings, device_type: str) -> tuple[list, float]:
    """Per point of a latency (or ep) sweep: (prefill, decode step) seconds of one call, and the
    sum of the latency rows (one repeat) they make."""
    from .workload import size
    calls, total = [], 0.0
    for p in points:
        try:
            s = size(p, sweep)
        except ValueError:
            calls.append((0.0, 0.0))
            total += BUILD_S
            continue
        pair = layer_calls_s(s.cfg.variant, s.flops_per_token, s.decode_flops_per_token, s.params_total,
                             s.params_active, p.seq, p.batch, p.layers, sweep.dtype, device_type,
                             settings.prefill == "graph" and device_type == "cuda",
                             settings.decode == "graph" and device_type == "cuda")
        calls.append(pair)
        total += latency_row_s(*pair, settings, device_type)
    return calls, total


def ep_s(sweep, ep_points, calls: int, device_type: str) -> float:
    """An ep run on one rank: each point's layer (its variant, E, k, seq and batch, one layer), `calls`
    prefills and decode steps, eager."""
    from ..sweeps.spec import Point
    from .workload import size
    total = 0.0
    for p in ep_points:
        try:
            s = size(Point(p.variant, p.experts, p.top_k, p.seq, p.batch, 1), sweep)
        except ValueError:
            total += BUILD_S
            continue
        total += fixed_calls_s(*layer_calls_s(p.variant, s.flops_per_token, s.decode_flops_per_token,
                                              s.params_total, s.params_active, p.seq, p.batch, 1, sweep.dtype,
                                              device_type, False, False), calls)
    return total
