"""What the gate and the run comparison look at: per-configuration metrics of a results row, and the
machine-independent ratios to dense on the same run (each MoE variant's time over dense's at the
same seq, batch and layers), which stay meaningful when the machine's speed drifts."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np
import pandas as pd

from ..results import schema
from ..stats import Estimate
from ..sweeps.spec import COMPARATOR

KINDS = ("timed", "ratio", "deterministic", "exact", "single")


@dataclass(frozen=True)
class Metric:
    """`kind`: timed, a median with its interval and raw samples; ratio, a timed metric over dense's
    on the same run; deterministic, one value that repeats from run to run (memory); exact, a count
    that must not change; single, one value with no interval (energy), compared but never gated.
    The gate flags now/baseline above `threshold` (any change, for exact)."""
    name: str
    label: str
    kind: str
    threshold: float = 1.0
    column: Optional[str] = None      # the results.csv column (ratio metrics have none)
    samples: Optional[str] = None     # the samples.jsonl field of the raw samples
    of: Optional[str] = None          # ratio: the metric it divides by dense's
    scales: Optional[str] = None      # a fixed multiple of this timed metric within a row: its
                                      # interval and samples, scaled, are this one's


def _timed(name, label, threshold):
    return Metric(name, label, "timed", threshold, column=name, samples=name)


def _ratio(of, threshold):
    return Metric(f"{of}/dense", f"{of.split('_')[0]} time / dense", "ratio", threshold, of=of)


def _over_floor(phase, time, threshold):
    """A phase's time over its floor (the floor is one number per row: the run's ceilings and the
    row's counts), so it is as noisy as the time and gated as a time is."""
    return Metric(f"{phase}_x_floor", f"{phase} time / floor", "timed", threshold,
                  column=f"{phase}_x_floor", scales=time)


PREFILL, DECODE = _timed("prefill_ms", "prefill (ms)", 1.10), _timed("decode_us", "decode (us)", 1.10)
PREFILL_RATIO, DECODE_RATIO = _ratio("prefill_ms", 1.10), _ratio("decode_us", 1.10)
X_FLOOR = (_over_floor("prefill", "prefill_ms", 1.10), _over_floor("decode", "decode_us", 1.10))
MEMORY = (Metric("prefill_peak_mib", "prefill peak (MiB)", "deterministic", 1.10, column="prefill_peak_mib"),
          Metric("decode_peak_mib", "decode peak (MiB)", "deterministic", 1.10, column="decode_peak_mib"))
LATENCY_EXACT = (Metric("flops_per_token", "FLOPs/token", "exact", column="flops_per_token"),
                 Metric("params_total", "parameters", "exact", column="params_total"))
ENERGY = (Metric("prefill_j_per_token", "prefill (J/token)", "single", column="prefill_j_per_token"),
          Metric("decode_j_per_token", "decode (J/token)", "single", column="decode_j_per_token"))

# A generate run's (whole models): time to first token, per-token latency, its ratio to dense, memory.
TTFT, TOKEN = _timed("ttft_ms", "time to first token (ms)", 1.10), _timed("token_ms", "per token (ms)", 1.10)
GENERATE = (TTFT, TOKEN, _ratio("token_ms", 1.10),
            Metric("gen_peak_mib", "generate peak (MiB)", "deterministic", 1.10, column="gen_peak_mib"))
GEN_ENERGY = (Metric("gen_j_per_token", "generate (J/token)", "single", column="gen_j_per_token"),)

# What `swimbench gate` checks on a latency or generate run, and what `swimbench report` compares
# between runs (a run has the columns of one of the two; the other's metrics are absent from its rows).
GATED = (PREFILL, DECODE, PREFILL_RATIO, DECODE_RATIO, *X_FLOOR, *MEMORY, *LATENCY_EXACT, *GENERATE)
COMPARED = (PREFILL, DECODE, PREFILL_RATIO, DECODE_RATIO, *ENERGY, *MEMORY, *GENERATE, *GEN_ENERGY)
# What the FLOP gate checks, exactly: the columns of `swimbench flops`.
FLOP_COLUMNS = ("d_inner", "params_total", "params_active", "flops_analytic", "flops_fvcore", "flops_torch")
FLOPS = tuple(Metric(c, c, "exact", column=c) for c in FLOP_COLUMNS)
BY_NAME = {m.name: m for m in (*GATED, *COMPARED, *FLOPS)}

# What identifies a latency row beyond its key: two rows that differ here are not comparable.
CONFIG = ("d_model", "d_state", "d_conv", "dtype", "matched", "prefill_mode", "decode_mode")
IDENTITY = ("variant", "experts", "top_k", "seq", "batch", "layers") + CONFIG


def differences(a: dict, b: dict) -> str:
    """What differs between two set-ups, e.g. "prefill_mode eager -> graph"; "" when nothing."""
    return "; ".join(f"{k} {a.get(k)} -> {b.get(k)}" for k in a if a.get(k) != b.get(k))


@dataclass
class Row:
    key: str
    identity: dict
    status: str
    values: dict                      # metric name -> Estimate

    def config(self) -> dict:
        """How the row was set up; a field the row lacks is what rows written before it did."""
        return {k: self.identity.get(k) if self.identity.get(k) is not None else schema.default(k)
                for k in CONFIG if k in self.identity or schema.default(k) is not None}


def plain(v):
    """A JSON-friendly scalar: NaN and empty cells become None, integral floats int."""
    if v is None or v is pd.NA or (isinstance(v, str) and v == ""):
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        if math.isnan(v):
            return None
        if v.is_integer():
            return int(v)
    return v


def run_rows(run, metrics: Iterable[Metric]) -> dict[str, Row]:
    """The rows of a `swimbench.results.reader.Run` with the metrics it has, ratios to dense included."""
    metrics = tuple(metrics)
    rows = {}
    for rec in run.rows.to_dict("records"):
        key, status = rec["key"], rec["status"]
        raw = run.samples.get(key, {})
        values = {}
        for m in metrics:
            v = plain(rec.get(m.column)) if m.column and status == "ok" else None
            if v is None:
                continue
            lo = hi = samples = None
            between = False
            if m.kind == "timed" and m.scales is None:
                ci = schema.interval(m.column)
                if ci is not None:
                    lo, hi = plain(rec.get(ci.lo)), plain(rec.get(ci.hi))
                repeats = raw.get(f"{m.samples}_repeats") or []
                if len(repeats) >= 2:       # latency --repeats: the rank test compares runs' medians
                    samples, between = np.asarray(repeats, dtype=float), True
                elif raw.get(m.samples):
                    samples = np.asarray(raw[m.samples], dtype=float)
            values[m.name] = Estimate(float(v), lo, hi, samples, between)
        rows[key] = Row(key, {f: plain(rec.get(f)) for f in IDENTITY}, status, values)
    return with_ratios(with_scaled(rows, metrics), metrics)


def with_scaled(rows: dict[str, Row], metrics: Iterable[Metric]) -> dict[str, Row]:
    """Gives each `scales` metric the interval and samples of the time it scales, times value / time;
    where that time is absent (skipped) the metric keeps what it has."""
    scaled = [m for m in metrics if m.scales is not None]
    for r in rows.values():
        for m in scaled:
            v, t = r.values.get(m.name), r.values.get(m.scales)
            if v is None or t is None or not t.value > 0:
                continue
            s = t.scaled(v.value / t.value)
            r.values[m.name] = Estimate(v.value, s.lo if s.lo is not None else v.lo,
                                        s.hi if s.hi is not None else v.hi,
                                        s.samples if s.samples is not None else v.samples, t.between_runs)
    return rows


def with_ratios(rows: dict[str, Row], metrics: Iterable[Metric]) -> dict[str, Row]:
    """Adds each ratio metric to every MoE row whose dense row (same seq, batch, layers) was measured.
    Its interval is the widest the two intervals allow (variant lo / dense hi to variant hi / dense
    lo), so that intervals apart is real evidence. It has no samples: a rank test on the variant's
    samples over dense's median would ignore dense's own noise and find differences that are not."""
    ratios = [m for m in metrics if m.kind == "ratio"]

    def group(r):
        return tuple(r.identity.get(f) for f in ("seq", "batch", "layers"))
    dense = {group(r): r for r in rows.values() if r.identity.get("variant") == "dense" and r.status == "ok"}
    for r in rows.values():
        d = dense.get(group(r))
        if d is None or r.identity.get("variant") in ("dense", COMPARATOR) or r.status != "ok":
            continue
        for m in ratios:
            num, den = r.values.get(m.of), d.values.get(m.of)
            if num is None or den is None or den.value <= 0:
                continue
            both = num.has_interval and den.has_interval and den.lo > 0
            r.values[m.name] = Estimate(num.value / den.value, num.lo / den.hi if both else None,
                                        num.hi / den.lo if both else None,
                                        between_runs=num.between_runs and den.between_runs)
    return rows
