"""The columns of results.csv, declared once: each column's type, unit, meaning and what measured rows
written before it existed get; and the intervals, each a measured column with its low and high
columns. The writer (rundir.py) formats cells by these types, the reader (reader.py) parses them back
by the same types, and report and gate ask here for a column's interval instead of building names.
docs/latency.md's column table is `markdown()`'s (tests/results/test_schema.py checks it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NoReturn, Optional, Union

import numpy as np
import pandas as pd

STR, INT, FLOAT, BOOL = "str", "int", "float", "bool"
# pandas' nullable types, so that an empty cell is missing in every type and integers stay integers
PANDAS = {STR: "string", INT: "Int64", FLOAT: "float64", BOOL: "boolean"}
BOOLS = {"true": True, "false": False}      # as str(bool) writes them, in any case
INT64_MIN, INT64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)


class _Empty:
    def __repr__(self) -> str:
        return "EMPTY"


EMPTY = _Empty()        # rows written before the column existed leave it empty (the default)


@dataclass(frozen=True)
class Derived:
    """A value for rows written before the column existed, from the row's other columns."""
    how: str                                        # in words, for the docs
    fn: Callable[[pd.DataFrame], pd.Series]

    def __call__(self, rows: pd.DataFrame) -> pd.Series:
        return self.fn(rows)


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str                  # STR, INT, FLOAT or BOOL
    unit: Optional[str]         # None: a count, a name or a ratio
    description: str
    before: Union[object, Derived] = EMPTY      # what measured rows written before the column get
    required: bool = False      # every row has it (the key and the status)

    def text(self, value) -> str:
        """The cell results.csv holds for `value` ("" when missing)."""
        if _missing(value):
            return ""
        if self.dtype == INT:
            if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
                return str(int(value))
            if isinstance(value, (float, np.floating)) and float(value).is_integer():
                return str(int(value))
        elif self.dtype == FLOAT:
            if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
                return repr(float(value))
        elif self.dtype == BOOL:
            if isinstance(value, (bool, np.bool_)):
                return str(bool(value))
        elif isinstance(value, str):
            return value
        self._wrong(value)

    def parse(self, text: pd.Series) -> pd.Series:
        """Cells of results.csv as this column's type; empty cells missing.

        Built whole from one list per column, never by assigning through a mask: how a masked
        setitem casts a list into a nullable Series differs between pandas 2.x, 3.0 and 3.1. Each cell
        converted by Python, not by pd.to_numeric, whose float parsing is off by one unit in the last
        place on some pandas (3.0.6) and not others, where float() gives back what repr wrote."""
        text = text.astype(object)
        filled = (text.notna() & (text != "")).to_numpy(dtype=bool)
        convert = {STR: str, INT: self._int, FLOAT: self._float, BOOL: self._bool}[self.dtype]
        missing = math.nan if self.dtype == FLOAT else pd.NA
        values = [convert(v) if f else missing for v, f in zip(text.to_numpy(), filled)]
        return pd.Series(pd.array(values, dtype=PANDAS[self.dtype]), index=text.index)

    def value(self, v):
        """One value as this column's Python type (a baseline's identity, say, written as text)."""
        parsed = self.parse(pd.Series([v if isinstance(v, str) else self.text(v)], dtype=object)).iloc[0]
        if _missing(parsed):
            return None
        return parsed.item() if isinstance(parsed, np.generic) else parsed

    def _int(self, v: str) -> int:
        try:
            n = int(v)
        except ValueError:
            try:
                f = float(v)                        # writers before typed cells wrote 16.0
            except ValueError:
                f = math.nan
            if not f.is_integer():
                self._wrong(v)
            n = int(f)
        # Int64 holds no more; pandas would raise OverflowError, which is no ValueError
        if not INT64_MIN <= n <= INT64_MAX:
            self._wrong(v)
        return n

    def _float(self, v: str) -> float:
        try:
            return float(v)
        except ValueError:
            self._wrong(v)

    def _bool(self, v: str) -> bool:
        if v.lower() not in BOOLS:
            self._wrong(v)
        return BOOLS[v.lower()]

    def _wrong(self, v) -> NoReturn:
        raise ValueError(f"results column {self.name} holds {self.dtype} values, not {v!r}")


def _missing(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, (float, np.floating)) and math.isnan(v))


def _count(rate: str, median: str, scale: float, words: str) -> Derived:
    """A call's count from its achieved rate and median (the rate was the count over the median)."""
    return Derived(f"{rate} x {median} ({words})", lambda rows: (rows[rate] * rows[median] * scale).round())


@dataclass(frozen=True)
class Interval:
    """A measured column and the two columns that bound it."""
    of: str
    lo: str
    hi: str
    kind: str                   # CI or SPREAD


CI, SPREAD = "95% bootstrap interval of the median", "10th to 90th percentile of the samples"

C = Column
DECLARED: tuple[Column, ...] = (
    # identity and status
    C("key", STR, None, "the configuration: variant/E{experts}/k{top_k}/seq{seq}/b{batch}/L{layers}",
      required=True),
    C("status", STR, None, "ok, oom (out of memory) or error", required=True),
    C("error", STR, None, "why an oom or error row has no measurement, in one line"),
    C("device", STR, None, "cuda or cpu"),
    C("device_index", INT, None, "the CUDA device (cuda:N, as this process numbered them) that measured the row"),
    C("rank", INT, None, "the torch.distributed rank that measured the row (docs/distributed.md)", before=0),
    C("world_size", INT, None, "the ranks that shared the run's sweep in the attempt that measured the row",
      before=1),
    C("variant", STR, None, "the design (docs/layers.md); mamba_ssm for mamba-ssm's own Mamba layer"),
    C("experts", INT, None, "experts E (1 for dense)"),
    C("top_k", INT, None, "experts per token"),
    C("seq", INT, "tokens", "sequence length of a forward"),
    C("batch", INT, "sequences", "sequences per call"),
    C("layers", INT, None, "layers in the stack (1: the layer alone)"),
    # the layer as built
    C("d_model", INT, None, "model width"),
    C("d_inner", INT, None, "inner width (FLOP-matched to dense unless matched is False)"),
    C("d_state", INT, None, "SSM state size"),
    C("d_conv", INT, None, "causal convolution width"),
    C("dtype", STR, None, "bf16, fp16 or fp32"),
    C("matched", BOOL, None, "d_inner sized to dense's prefill FLOPs (False: --no-match)"),
    C("routing", STR, None, "expert choice of routed variants: balanced, skewed or learned"),
    C("flops_per_token", INT, "FLOP/token", "analytic prefill FLOPs per token, all layers, 2 per multiply-add"),
    C("flops_mismatch_pct", FLOAT, "%", "flops_per_token against dense's"),
    C("params_total", INT, None, "parameters, all layers"),
    C("params_active", INT, None, "parameters one token uses (its experts), all layers"),
    C("scan_impl", STR, None, "the scan that ran (our Triton kernels, the reference, mamba-ssm's)"),
    # prefill: one forward over (batch, seq)
    C("prefill_mode", STR, None, "graph (CUDA-graph replays) or eager (calls)", before="eager"),
    C("prefill_ms", FLOAT, "ms", "median time of one forward"),
    C("prefill_ms_p10", FLOAT, "ms", "10th percentile of the forward's samples"),
    C("prefill_ms_p90", FLOAT, "ms", "90th percentile of the forward's samples"),
    C("prefill_ms_ci_lo", FLOAT, "ms", "95% bootstrap interval of the median: low end"),
    C("prefill_ms_ci_hi", FLOAT, "ms", "95% bootstrap interval of the median: high end"),
    C("prefill_samples", INT, None, "timed forwards"),
    C("prefill_launch_ms", FLOAT, "ms", "host time to launch one eager forward (GPU only)"),
    C("prefill_first_call_ms", FLOAT, "ms", "the first forward, compilation and autotuning included"),
    C("prefill_tokens_per_s", FLOAT, "tokens/s", "batch x seq over the median"),
    C("prefill_tflops", FLOAT, "TFLOP/s", "prefill_flops over the median"),
    C("prefill_gbps", FLOAT, "GB/s", "prefill_bytes over the median"),
    # ... its counted work (bytes: the fewest it must move; FLOPs: analytic) and the floor they put
    # under its time at the device's measured ceilings (swimbench.measure.ceilings)
    C("prefill_bytes", INT, "B", "the fewest bytes a forward moves: weights, input and output once",
      before=_count("prefill_gbps", "prefill_ms", 1e6, "GB/s x ms")),
    C("prefill_flops", INT, "FLOP", "analytic FLOPs of one forward",
      before=_count("prefill_tflops", "prefill_ms", 1e9, "TFLOP/s x ms")),
    C("prefill_floor_ms", FLOAT, "ms", "the least time the device's measured ceilings allow (GPU only)"),
    C("prefill_x_floor", FLOAT, None, "prefill_ms over prefill_floor_ms"),
    C("prefill_floor_bound", STR, None, "memory or compute: the floor's larger term"),
    C("prefill_kernels", INT, None, "CUDA kernels in the forward's graph (graph mode only)"),
    C("prefill_dispatch", STR, None, "routed experts' path: sorted (grouped GEMM) or gathered (by index); "
      "empty for designs that dispatch nothing"),
    C("prefill_peak_mib", FLOAT, "MiB", "peak allocated memory over prefill, weights included (GPU only)"),
    # decode: one token's step with its cache
    C("decode_mode", STR, None, "graph (CUDA-graph replays) or eager (calls)"),
    C("decode_us", FLOAT, "us", "median time of one decode step (one token per sequence)"),
    C("decode_us_p10", FLOAT, "us", "10th percentile of the step's samples"),
    C("decode_us_p90", FLOAT, "us", "90th percentile of the step's samples"),
    C("decode_us_ci_lo", FLOAT, "us", "95% bootstrap interval of the median: low end"),
    C("decode_us_ci_hi", FLOAT, "us", "95% bootstrap interval of the median: high end"),
    C("decode_samples", INT, None, "timed samples"),
    C("decode_calls_per_sample", INT, None, "back-to-back steps per sample"),
    C("decode_tokens_per_s", FLOAT, "tokens/s", "batch over the median"),
    C("decode_tflops", FLOAT, "TFLOP/s", "decode_flops over the median"),
    C("decode_gbps", FLOAT, "GB/s", "decode_bytes over the median"),
    C("decode_bytes", INT, "B", "the fewest bytes a step moves: weights, input, output and the cache read "
      "and written once", before=_count("decode_gbps", "decode_us", 1e3, "GB/s x us")),
    C("decode_flops", INT, "FLOP", "analytic FLOPs of one step",
      before=_count("decode_tflops", "decode_us", 1e6, "TFLOP/s x us")),
    C("decode_floor_us", FLOAT, "us", "the least time the device's measured ceilings allow (GPU only)"),
    C("decode_x_floor", FLOAT, None, "decode_us over decode_floor_us"),
    C("decode_floor_bound", STR, None, "memory or compute: the floor's larger term"),
    C("decode_kernels", INT, None, "CUDA kernels in the step's graph (graph mode only)"),
    C("decode_dispatch", STR, None, "routed experts' path in the step, as prefill_dispatch"),
    C("decode_peak_mib", FLOAT, "MiB", "peak allocated memory over decode, cache and graph pool included "
      "(GPU only)"),
    # energy (GPU with NVML only)
    C("energy_source", STR, None, "nvml_total_energy_counter where energy was measured"),
    C("prefill_j_per_token", FLOAT, "J/token", "energy counter over a window of forwards, per token"),
    C("prefill_mean_w", FLOAT, "W", "mean power over that window"),
    C("prefill_energy_window_s", FLOAT, "s", "the window's length"),
    C("decode_j_per_token", FLOAT, "J/token", "energy counter over a window of steps, per token"),
    C("decode_mean_w", FLOAT, "W", "mean power over that window"),
    C("decode_energy_window_s", FLOAT, "s", "the window's length"),
    C("trace_source", STR, None, "nvml_power_usage where the power trace was sampled"),
    C("prefill_j_per_token_trace", FLOAT, "J/token", "the power trace integrated over the window (a check)"),
    C("decode_j_per_token_trace", FLOAT, "J/token", "the power trace integrated over the window (a check)"),
    # generate: a whole model's prefill of the prompt, then greedy generation (swimbench generate)
    C("model", STR, None, "generate: the model's preset (custom: sizes given)"),
    C("vocab_size", INT, None, "generate: rows of the embedding and the tied head (padded)"),
    C("new_tokens", INT, "tokens", "generate: tokens generated per sequence (the prompt's first one included)"),
    C("ttft_ms", FLOAT, "ms", "generate: median time to first token (prefill of the prompt, its greedy token)"),
    C("ttft_ms_p10", FLOAT, "ms", "generate: 10th percentile of the time to first token"),
    C("ttft_ms_p90", FLOAT, "ms", "generate: 90th percentile of the time to first token"),
    C("ttft_ms_ci_lo", FLOAT, "ms", "generate: 95% bootstrap interval of the median: low end"),
    C("ttft_ms_ci_hi", FLOAT, "ms", "generate: 95% bootstrap interval of the median: high end"),
    C("ttft_samples", INT, None, "generate: timed generations"),
    C("token_ms", FLOAT, "ms", "generate: median per-token decode latency over the generated tokens"),
    C("token_ms_p10", FLOAT, "ms", "generate: 10th percentile of the per-token latency"),
    C("token_ms_p90", FLOAT, "ms", "generate: 90th percentile of the per-token latency"),
    C("token_ms_ci_lo", FLOAT, "ms", "generate: 95% bootstrap interval of the median: low end"),
    C("token_ms_ci_hi", FLOAT, "ms", "generate: 95% bootstrap interval of the median: high end"),
    C("token_samples", INT, None, "generate: timed decode steps (new_tokens - 1 per generation)"),
    C("gen_tokens_per_s", FLOAT, "tokens/s", "generate: batch over the median per-token latency"),
    C("e2e_tokens_per_s", FLOAT, "tokens/s", "generate: batch x new_tokens over a whole generation, prefill "
      "included (median)"),
    C("gen_j_per_token", FLOAT, "J/token", "generate: energy counter over a window of decode steps, per token"),
    C("gen_mean_w", FLOAT, "W", "generate: mean power over that window"),
    C("gen_energy_window_s", FLOAT, "s", "generate: the window's length"),
    C("gen_peak_mib", FLOAT, "MiB", "generate: peak allocated memory over prefill and generation, weights "
      "included (GPU only)"),
    # context
    C("sm_clock_mhz", FLOAT, "MHz", "SM clock when the row finished (NVML)"),
    C("timing_clock", STR, None, "cuda_events or perf_counter"),
    C("attempt", INT, None, "the attempt of the run that measured the row (a resume is the next)"),
    C("measured_at", STR, None, "when the row was recorded (ISO 8601)"),
    C("wall_s", FLOAT, "s", "wall time of the row's measurement"),
    C("repeats", INT, None, "times the row was measured (latency --repeats), each in another order of "
                            "the sweep; the medians' interval spans the repeats' medians", before=1),
)
del C

INTERVALS: tuple[Interval, ...] = (
    Interval("prefill_ms", "prefill_ms_ci_lo", "prefill_ms_ci_hi", CI),
    Interval("prefill_ms", "prefill_ms_p10", "prefill_ms_p90", SPREAD),
    Interval("decode_us", "decode_us_ci_lo", "decode_us_ci_hi", CI),
    Interval("decode_us", "decode_us_p10", "decode_us_p90", SPREAD),
    Interval("ttft_ms", "ttft_ms_ci_lo", "ttft_ms_ci_hi", CI),
    Interval("ttft_ms", "ttft_ms_p10", "ttft_ms_p90", SPREAD),
    Interval("token_ms", "token_ms_ci_lo", "token_ms_ci_hi", CI),
    Interval("token_ms", "token_ms_p10", "token_ms_p90", SPREAD),
)

BY_NAME: dict[str, Column] = {c.name: c for c in DECLARED}
# Derived: the order of results.csv's columns, and what rows written before a column did, by column
# (a value, or a function of the typed frame).
COLUMNS: list[str] = [c.name for c in DECLARED]
COLUMNS_BEFORE: dict = {c.name: c.before for c in DECLARED if c.before is not EMPTY}


def column(name: str) -> Column:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"{name!r} is not a results column (swimbench/results/schema.py)") from None


def interval(of: str, kind: str = CI) -> Optional[Interval]:
    """The interval of `of` (its median's 95% interval; SPREAD: p10 to p90), None where it has none."""
    return next((i for i in INTERVALS if i.of == of and i.kind == kind), None)


def spread(of: str) -> Optional[Interval]:
    return interval(of, SPREAD)


def default(name: str):
    """The value rows written before `name` existed get, where it is one value (else None)."""
    value = BY_NAME[name].before if name in BY_NAME else EMPTY
    return None if value is EMPTY or isinstance(value, Derived) else value


def text(name: str, value) -> str:
    """A cell of results.csv; a column the schema does not declare is written as its value's text."""
    if name in BY_NAME:
        return BY_NAME[name].text(value)
    if _missing(value):
        return ""
    return repr(float(value)) if isinstance(value, (float, np.floating)) else str(value)


def typed(cells: pd.DataFrame) -> pd.DataFrame:
    """results.csv's cells (text) as a frame of the declared types, every declared column present, in
    the declared order; columns the schema does not know follow as text."""
    out = {}
    empty = pd.Series("", index=cells.index, dtype=object)
    for c in DECLARED:
        out[c.name] = c.parse(cells[c.name] if c.name in cells else empty)
    for name in cells.columns:
        if name not in BY_NAME:
            out[name] = cells[name].astype(object).where(cells[name] != "").astype("string")
    frame = pd.DataFrame(out, index=cells.index)
    for c in DECLARED:
        if c.required and frame[c.name].isna().any():
            raise ValueError(f"results column {c.name} is empty in row {int(frame[c.name].isna().argmax()) + 1}")
    return frame


def with_before(rows: pd.DataFrame) -> pd.DataFrame:
    """Measured rows with a column empty that was not there when they were written get what they did
    then (each column's `before`)."""
    rows = rows.copy()
    measured = rows["status"] == "ok"
    for c in DECLARED:
        if c.before is EMPTY:
            continue
        fill = rows[c.name].isna() & measured
        if not fill.any():
            continue
        value = c.before(rows) if isinstance(c.before, Derived) else c.before
        value = pd.Series(value, index=rows.index)
        if c.dtype == INT:
            value = value.astype("Float64").round()
        rows[c.name] = rows[c.name].where(~fill, value.astype(PANDAS[c.dtype]))
    return rows


def markdown() -> str:
    """The column table of docs/latency.md."""
    lines = ["| column | type | unit | what it holds | rows written before it |", "| --- | --- | --- | --- | --- |"]
    for c in DECLARED:
        before = ("" if c.before is EMPTY else c.before.how if isinstance(c.before, Derived)
                  else f"`{c.before}`")
        lines.append(f"| `{c.name}` | {c.dtype} | {c.unit or ''} | {c.description} | {before} |")
    return "\n".join(lines)

