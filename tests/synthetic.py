"""What the report and gate tests share: synthetic run directories, written with the latency run's
own writers (RunDir, Results, append_samples, append_power) so that the tests read what a real run
writes, with samples drawn from lognormal distributions around a simple cost model; and the CLI
runner."""
from __future__ import annotations

import math
import zlib
from typing import Callable, Optional

import numpy as np
import pytest

from swimbench.cli import main
from swimbench.measure.ceilings import DeviceCeilings, floor_columns
from swimbench.measure.energy import PowerSample
from swimbench.measure.env import capture
from swimbench.measure.point import identity
from swimbench.measure.workload import size
from swimbench.results import RunDir
from swimbench.stats import summarize
from swimbench.sweeps.runner import failure_row
from swimbench.sweeps.spec import COMPARATOR, MeasureSettings, Point, Sweep

from .conftest import SEED

H100 = "NVIDIA H100 80GB HBM3"
SWEEP = Sweep(d_model=256, variants=("dense", "swimba", "separated"), experts=(2, 4, 8), top_k=(1, 2),
              seq=(512, 2048), batch=(1, 4))
PHASES = ("prefill_ms", "decode_us")

Draw = Callable[[Point, str], np.ndarray]


def cli(args, capsys):
    """`swimbench ARGS` in-process: (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def rng_for(name: str) -> np.random.Generator:
    """A generator per test, from the session's SWIMBENCH_SEED (printed in the header)."""
    return np.random.default_rng(SEED + zlib.crc32(name.encode()))


def median_of(point: Point, phase: str) -> float:
    """The cost model: prefill grows with tokens, decode with batch; experts cost a little each."""
    lg = math.log2(point.experts)
    extra = {"dense": 1.0, "swimba": 1.05 + 0.02 * lg + 0.04 * (point.top_k - 1),
             "separated": 1.0 + 0.15 * lg, COMPARATOR: 0.97}.get(point.variant, 1.0 + 0.05 * lg)
    if phase == "prefill_ms":
        return 1e-4 * point.seq * point.batch * extra
    return 20.0 * (1 + 0.1 * math.log2(point.batch)) * extra


def lognormal(rng: np.random.Generator, sigma: float = 0.03, n: int = 40,
              slow: Optional[dict] = None) -> Draw:
    """Samples around the model's median, `slow[variant]` times slower."""
    slow = slow or {}
    return lambda p, phase: median_of(p, phase) * slow.get(p.variant, 1.0) * rng.lognormal(0, sigma, n)


def moved(sizing, tokens: int) -> int:
    """Bytes of a call in the cost model: bf16 weights once, fp32 input and output."""
    return 2 * sizing.params_total + 4 * tokens * sizing.cfg.d_model


def synthetic_ceilings(gpu: str) -> dict:
    """Ceilings as a latency run records them, drawn in the range of today's GPUs, one pair per GPU
    (its runs share them, as a GPU's measurements agree from run to run)."""
    rng = rng_for(f"ceilings of {gpu}")
    return DeviceCeilings(float(rng.uniform(1000, 5000)), float(rng.uniform(200, 1000)),
                          "synthetic: drawn by the test").as_meta()


def make_run(parent, draw: Draw, *, rng: np.random.Generator, gpu: Optional[str] = H100,
             sweep: Sweep = SWEEP, name: str = "synthetic", drawn: Optional[dict] = None,
             comparator: bool = False, oom: tuple = (), prefill_mode: Optional[str] = "auto",
             ceilings="auto", counted: bool = True) -> RunDir:
    """A complete run directory; `drawn`, if given, receives the samples of each (key, phase).
    With a GPU name: energy columns and a power trace; without (device cpu): neither, as a CPU run.
    `comparator` adds mamba-ssm rows; the points whose keys are in `oom` ran out of memory.
    prefill_mode: graph on a GPU and eager on the CPU by default; None leaves the column out, as
    runs written before it existed did. ceilings: recorded in the metadata and giving every row its
    floor, drawn by default on a GPU (None on the CPU); None for none, as runs written before they were
    measured. counted=False leaves out the bytes and FLOPs columns, as those runs did too."""
    if ceilings == "auto":
        ceilings = synthetic_ceilings(gpu) if gpu else None
    measured = DeviceCeilings.from_meta(ceilings)
    run = RunDir.create(parent, name)
    points = sweep.points(comparator=comparator)
    env = capture("cpu", argv=["swimbench", "latency", "--synthetic"], profile={"name": name})
    notes = []
    if gpu:
        env["device"] = "cuda"
        env["gpu"] = {"name": gpu, "driver": "570.00", "sm_clock_mhz": 1980, "sm_clock_max_mhz": 1980,
                      "power_limit_w": 700.0}
    else:
        notes.append("energy columns empty: device=cpu has no NVML energy counter")
    run.write_metadata({"tool": "swimbench latency", "created": "2026-01-01T00:00:00+0000",
                        "status": "complete", "profile": {"name": name}, "sweep": sweep.as_dict(),
                        "settings": MeasureSettings().as_dict(), "points": [p.key for p in points],
                        "environment": env, "attempts": [{"attempt": 1, "notes": notes, "wall_s": 1.0}],
                        **({"ceilings": ceilings} if ceilings else {})})
    results = run.results(order=[p.key for p in points])
    clock = 1.7e9
    for p in points:
        if p.key in oom:
            results.put({**failure_row(p, "oom", MemoryError("CUDA out of memory")), "device": env["device"]})
            continue
        s = size(p, sweep)
        tokens = p.seq * p.batch
        row = {**identity(p), "status": "ok", "device": env["device"], "d_model": s.cfg.d_model,
               "d_inner": s.cfg.d_inner, "d_state": s.cfg.d_state, "d_conv": s.cfg.d_conv,
               "dtype": sweep.dtype, "matched": sweep.match, "flops_per_token": s.flops_per_token,
               "flops_mismatch_pct": s.mismatch_pct, "params_total": s.params_total,
               "params_active": s.params_active, "decode_mode": "graph" if gpu else "eager",
               "attempt": 1}
        if prefill_mode is not None:
            row["prefill_mode"] = ("graph" if gpu else "eager") if prefill_mode == "auto" else prefill_mode
        samples = {phase: draw(p, phase) for phase in PHASES}
        if drawn is not None:
            drawn.update({(p.key, phase): v for phase, v in samples.items()})
        for phase, per_s, n_tok in (("prefill_ms", 1e3, tokens), ("decode_us", 1e6, p.batch)):
            st = summarize(samples[phase])
            col = phase.split("_")[0]
            nbytes, flops = moved(s, n_tok), s.flops_per_token * n_tok
            if counted:
                row.update({f"{col}_bytes": nbytes, f"{col}_flops": flops,
                            **floor_columns(col, st.median, nbytes, flops, measured)})
            row.update({phase: st.median, f"{phase}_p10": st.p10, f"{phase}_p90": st.p90,
                        f"{phase}_ci_lo": st.ci_lo, f"{phase}_ci_hi": st.ci_hi, f"{col}_samples": st.n,
                        f"{col}_tokens_per_s": n_tok / (st.median / per_s),
                        f"{col}_tflops": flops / (st.median / per_s) / 1e12,
                        f"{col}_gbps": nbytes / (st.median / per_s) / 1e9,
                        f"{col}_peak_mib": (moved(s, n_tok) + 8 * n_tok * s.cfg.d_inner) / 2 ** 20
                        if gpu else None})
            if gpu:
                watts = rng.normal(350, 10)
                row.update({f"{col}_j_per_token": watts / row[f"{col}_tokens_per_s"], f"{col}_mean_w": watts,
                            f"{col}_energy_window_s": 1.0, "energy_source": "nvml_total_energy_counter"})
                trace = [PowerSample(0, clock + i * 0.02, watts + rng.normal(0, 5), None,
                                     f"{p.key}/{col}-energy") for i in range(20)]
                trace.append(PowerSample(0, clock + 0.4, 80.0, None, "idle"))
                run.append_power(trace)
                clock += 0.5
        run.append_samples(p.key, 1, {k: v.tolist() for k, v in samples.items()})
        results.put(row)
    return run
