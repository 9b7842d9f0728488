"""A run directory and its results table.

    reports/<YYYYmmdd-HHMMSS>-<profile>/
        results.csv     one row per configuration, rewritten atomically after each row
        metadata.json   environment, command, profile, sweep, settings, status (atomic)
        samples.jsonl   the raw timing samples of each row (the gate's rank tests read them)
        power.csv       the power trace, appended after each row
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterable, Optional

import pandas as pd

from .atomic import append_line, atomic_write_text


def _count(rate: str, median: str, scale: float):
    """A call's count from its achieved rate and median (the rate was the count over the median)."""
    return lambda rows: (rows[rate] * rows[median] * scale).round()


# What measured rows written before a column existed did, for the columns added since: a value, or
# a function of the numeric frame (swimbench.report.runs.numeric) giving each row's. Prefill was
# eager; the bytes and FLOPs of a call were counted as now, and kept only as the achieved rates.
# Rows before the floor columns had no ceilings, and rows before the kernel counts were not profiled:
# those columns stay empty (no entry), as they are on the CPU.
COLUMNS_BEFORE = {
    "prefill_mode": "eager",
    "prefill_bytes": _count("prefill_gbps", "prefill_ms", 1e6),       # GB/s x ms
    "prefill_flops": _count("prefill_tflops", "prefill_ms", 1e9),     # TFLOP/s x ms
    "decode_bytes": _count("decode_gbps", "decode_us", 1e3),          # GB/s x us
    "decode_flops": _count("decode_tflops", "decode_us", 1e6),        # TFLOP/s x us
}
DONE = ("ok", "oom")        # rows --resume does not measure again ("error" rows are retried)

COLUMNS = [
    # identity and status
    "key", "status", "error", "device", "variant", "experts", "top_k", "seq", "batch", "layers",
    # the layer as built
    "d_model", "d_inner", "d_state", "d_conv", "dtype", "matched", "routing", "flops_per_token",
    "flops_mismatch_pct", "params_total", "params_active", "scan_impl",
    # prefill: one forward over (batch, seq)
    "prefill_mode", "prefill_ms", "prefill_ms_p10", "prefill_ms_p90", "prefill_ms_ci_lo",
    "prefill_ms_ci_hi", "prefill_samples", "prefill_launch_ms", "prefill_first_call_ms",
    "prefill_tokens_per_s", "prefill_tflops", "prefill_gbps",
    # ... its counted work (bytes: the fewest it must move; FLOPs: analytic) and the floor they put
    # under its time at the device's measured ceilings (swimbench.measure.ceilings)
    "prefill_bytes", "prefill_flops", "prefill_floor_ms", "prefill_x_floor", "prefill_floor_bound",
    # ... the CUDA kernels one eager call runs (swimbench.measure.kernel_count; empty on the CPU)
    "prefill_kernels", "prefill_peak_mib",
    # decode: one token's step with its cache
    "decode_mode", "decode_us", "decode_us_p10", "decode_us_p90", "decode_us_ci_lo", "decode_us_ci_hi",
    "decode_samples", "decode_calls_per_sample", "decode_tokens_per_s", "decode_tflops",
    "decode_gbps", "decode_bytes", "decode_flops", "decode_floor_us", "decode_x_floor",
    "decode_floor_bound", "decode_kernels", "decode_peak_mib",
    # energy
    "energy_source", "prefill_j_per_token", "prefill_mean_w", "prefill_energy_window_s",
    "decode_j_per_token", "decode_mean_w", "decode_energy_window_s",
    "trace_source", "prefill_j_per_token_trace", "decode_j_per_token_trace",
    # context
    "sm_clock_mhz", "timing_clock", "attempt", "measured_at", "wall_s",
]


class Results:
    """The rows of results.csv, in sweep order, written whole and atomically on every change."""

    def __init__(self, path: Path, order: Optional[Iterable[str]] = None):
        self.path = Path(path)
        self.order = {k: i for i, k in enumerate(order or [])}
        self.rows: dict[str, dict] = {}
        if self.path.exists():
            # Read back as text, so that rows kept by --resume are rewritten exactly as they were.
            for row in pd.read_csv(self.path, dtype=str, keep_default_na=False).to_dict("records"):
                self.rows[row["key"]] = row

    def done_keys(self) -> set[str]:
        return {k for k, r in self.rows.items() if r.get("status") in DONE}

    def put(self, row: dict) -> None:
        self.rows[row["key"]] = row
        self.write()

    def frame(self) -> pd.DataFrame:
        rows = sorted(self.rows.values(), key=lambda r: (self.order.get(r["key"], len(self.order)),))
        extra = [c for r in rows for c in r if c not in COLUMNS]
        cols = COLUMNS + list(dict.fromkeys(extra))
        # convert_dtypes: integer columns with empty cells (an oom row) stay integers, not 16.0
        return pd.DataFrame(rows, columns=cols).convert_dtypes()

    def write(self) -> None:
        atomic_write_text(self.path, self.frame().to_csv(index=False))


class RunDir:
    RESULTS, METADATA, SAMPLES, POWER = "results.csv", "metadata.json", "samples.jsonl", "power.csv"

    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def create(cls, parent: Path, name: str) -> "RunDir":
        """A new directory <parent>/<timestamp>-<name> (suffixed -2, -3, ... if it exists)."""
        base = f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"
        parent = Path(parent)
        parent.mkdir(parents=True, exist_ok=True)
        for i in range(1, 1000):
            path = parent / (base if i == 1 else f"{base}-{i}")
            try:
                path.mkdir()
                return cls(path)
            except FileExistsError:
                continue
        raise FileExistsError(f"cannot create a run directory under {parent}")

    @classmethod
    def existing(cls, path: Path) -> "RunDir":
        run = cls(path)
        if not (run.path / cls.METADATA).is_file():
            raise FileNotFoundError(f"{path} is not a run directory (no {cls.METADATA})")
        return run

    def file(self, name: str) -> Path:
        return self.path / name

    def results(self, order: Optional[Iterable[str]] = None) -> Results:
        return Results(self.file(self.RESULTS), order)

    def read_metadata(self) -> dict:
        return json.loads(self.file(self.METADATA).read_text())

    def write_metadata(self, meta: dict) -> None:
        atomic_write_text(self.file(self.METADATA), json.dumps(meta, indent=2, default=str) + "\n")

    def append_samples(self, key: str, attempt: int, samples: dict) -> None:
        append_line(self.file(self.SAMPLES), json.dumps({"key": key, "attempt": attempt, **samples}))

    def read_samples(self) -> dict[str, dict]:
        """The last recorded samples of each key."""
        out: dict[str, dict] = {}
        path = self.file(self.SAMPLES)
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    rec = json.loads(line)
                    out[rec["key"]] = rec
        return out

    def append_power(self, samples) -> None:
        """Append power samples (objects with unix, power_w, instant_w, label) to power.csv."""
        if not samples:
            return
        path = self.file(self.POWER)
        lines = [] if path.exists() else ["unix_time,power_w,instant_w,label"]
        lines += [f"{s.unix:.4f},{s.power_w:.3f},{'' if s.instant_w is None else f'{s.instant_w:.3f}'},"
                  f"{s.label}" for s in samples]
        append_line(path, "\n".join(lines))
