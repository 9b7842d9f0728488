"""The device's ceilings and the floor they put under a call: the arithmetic (memory- and compute-bound),
what a latency run records and keeps on --resume, the point measurer's floor columns, and the kernel
benchmark's FLOPs and table. No GPU: the measurements themselves are checked by scripts on one."""
import math
from io import StringIO

import pytest
from rich.console import Console

from swimbench.cli import latency as latency_cli
from swimbench.cli.kernels import table as kernels_table
from swimbench.measure import kernel_bench as kb
from swimbench.kernels.flops import MACS_PER_CHANNEL, MACS_PER_STATE
from swimbench.measure import ceilings as mc
from swimbench.measure.ceilings import DeviceCeilings, floor, floor_columns, measure
from swimbench.measure.point import PointMeasurer
from swimbench.report.ceilings import resolve
from swimbench.sweeps.spec import MeasureSettings, Sweep

from ..synthetic import rng_for


def drawn_ceilings(rng) -> DeviceCeilings:
    return DeviceCeilings(float(rng.uniform(500, 8000)), float(rng.uniform(50, 2000)), "drawn")


# --- the arithmetic ---------------------------------------------------------------------------------
def test_a_memory_bound_floor_is_the_bytes_at_the_copy_bandwidth():
    rng = rng_for("floor-memory")
    c = drawn_ceilings(rng)
    seconds = float(rng.uniform(1e-6, 1e-1))
    nbytes = seconds * c.gbps * 1e9
    flops = seconds * c.tflops * 1e12 * float(rng.uniform(0.01, 0.99))    # less time than the bytes
    f = floor(nbytes, flops, c)
    assert f.bound == "memory" and math.isclose(f.seconds, seconds)


def test_a_compute_bound_floor_is_the_flops_at_the_gemm_rate():
    rng = rng_for("floor-compute")
    c = drawn_ceilings(rng)
    seconds = float(rng.uniform(1e-6, 1e-1))
    flops = seconds * c.tflops * 1e12
    nbytes = seconds * c.gbps * 1e9 * float(rng.uniform(0.01, 0.99))
    f = floor(nbytes, flops, c)
    assert f.bound == "compute" and math.isclose(f.seconds, seconds)


def test_floor_columns_give_time_over_floor_in_each_phase_unit():
    rng = rng_for("floor-columns")
    c = drawn_ceilings(rng)
    nbytes, flops = float(rng.uniform(1e6, 1e10)), float(rng.uniform(1e9, 1e14))
    least = max(nbytes / (c.gbps * 1e9), flops / (c.tflops * 1e12))
    times = float(rng.uniform(1.0, 20.0))
    pre = floor_columns("prefill", least * times * 1e3, nbytes, flops, c)
    dec = floor_columns("decode", least * times * 1e6, nbytes, flops, c)
    assert math.isclose(pre["prefill_floor_ms"], least * 1e3) and math.isclose(dec["decode_floor_us"], least * 1e6)
    assert math.isclose(pre["prefill_x_floor"], times) and math.isclose(dec["decode_x_floor"], times)
    assert pre["prefill_floor_bound"] == dec["decode_floor_bound"] == floor(nbytes, flops, c).bound


def test_an_unknown_term_is_left_out_and_no_ceilings_give_empty_columns():
    rng = rng_for("floor-partial")
    c = drawn_ceilings(rng)
    nbytes, flops = float(rng.uniform(1e6, 1e10)), float(rng.uniform(1e9, 1e14))
    only_bytes = DeviceCeilings(c.gbps, None, "copy only")
    assert floor(nbytes, flops, only_bytes) == mc.Floor(nbytes / (c.gbps * 1e9), "memory")
    assert floor(None, flops, c) == mc.Floor(flops / (c.tflops * 1e12), "compute")
    assert floor(float("nan"), None, c) is None and floor(nbytes, flops, None) is None
    empty = floor_columns("decode", 12.5, nbytes, flops, None)
    assert empty == {"decode_floor_us": None, "decode_x_floor": None, "decode_floor_bound": None}


def test_recorded_ceilings_read_back_and_resolve_for_the_report():
    rng = rng_for("ceilings-meta")
    c = DeviceCeilings(float(rng.uniform(500, 8000)), float(rng.uniform(50, 2000)), mc.SOURCE,
                       device="some GPU", measured_at="now")
    meta = c.as_meta()
    assert DeviceCeilings.from_meta(meta) == c and DeviceCeilings.from_meta({}) is None
    resolved = resolve({"ceilings": meta})
    assert (resolved.gbps.value, resolved.tflops.value) == (c.gbps, c.tflops)
    assert "device copy" in resolved.gbps.source and "GEMM" in resolved.tflops.source


def test_no_ceilings_are_measured_off_a_gpu():
    assert measure("cpu") is None


# --- a latency run: measured at the start, kept on --resume ----------------------------------------
class _Cuda:
    type = "cuda"


def test_a_run_records_its_ceilings_and_a_resume_keeps_them(monkeypatch):
    rng = rng_for("ceilings-resume")
    first, later = drawn_ceilings(rng), drawn_ceilings(rng)
    calls = []
    monkeypatch.setattr(mc, "measure", lambda dev: calls.append(dev) or (first if len(calls) == 1 else later))
    console, meta, notes = Console(file=StringIO()), {}, []
    assert latency_cli._ceilings(console, _Cuda(), meta, 1, notes) == first
    assert meta["ceilings"]["gbps"] == first.gbps and meta["ceilings"]["attempt"] == 1
    # a resume (attempt 2) keeps the first attempt's ceilings: all rows of a run share one floor
    kept = latency_cli._ceilings(console, _Cuda(), meta, 2, notes)
    assert kept.gbps == first.gbps and kept.tflops == first.tflops and len(calls) == 1
    assert "kept from attempt 1" in console.file.getvalue() and not notes
    # a run recorded before ceilings were measured gets them at its resume
    old = {}
    assert latency_cli._ceilings(console, _Cuda(), old, 3, notes) == later and old["ceilings"]["attempt"] == 3


def test_a_failed_measurement_is_a_note_and_no_floor(monkeypatch):
    def broken(dev):
        raise RuntimeError("CUDA out of memory")
    monkeypatch.setattr(mc, "measure", broken)
    meta, notes = {}, []
    assert latency_cli._ceilings(Console(file=StringIO()), _Cuda(), meta, 1, notes) is None
    assert "ceilings" not in meta and len(notes) == 1 and "floor columns empty" in notes[0]


def test_the_cpu_measures_no_ceilings(monkeypatch):
    monkeypatch.setattr(mc, "measure", lambda dev: pytest.fail("measured on the CPU"))
    meta = {}
    assert latency_cli._ceilings(Console(file=StringIO()), type("D", (), {"type": "cpu"})(), meta, 1, []) is None
    assert "ceilings" not in meta


def test_the_point_measurer_puts_each_row_on_its_floor():
    """Given ceilings (on a GPU, the run's measured ones), every row gets its counted work and the floor
    it gives; the row's rates agree with those counts."""
    rng = rng_for("point-floor")
    c = drawn_ceilings(rng)
    sweep = Sweep(d_model=16, d_state=4, variants=("dense", "swimba"), experts=(2,), top_k=(1,), seq=(8,),
                  batch=(2,), dtype="fp32")
    settings = MeasureSettings(budget_s=0.005, min_reps=3, warmup_reps=1, prefill="eager", decode="eager",
                               energy=False)
    for point in sweep.points():
        row = PointMeasurer(sweep, settings, "cpu", ceilings=c)(point).row
        for phase, (unit, per_s) in mc.PHASES.items():
            median = row[f"{phase}_{unit}"]
            nbytes, flops = row[f"{phase}_bytes"], row[f"{phase}_flops"]
            assert nbytes > 0 and flops > 0
            assert math.isclose(row[f"{phase}_gbps"], nbytes / (median / per_s) / 1e9)
            assert math.isclose(row[f"{phase}_tflops"], flops / (median / per_s) / 1e12)
            least = max(nbytes / (c.gbps * 1e9), flops / (c.tflops * 1e12))
            assert math.isclose(row[f"{phase}_floor_{unit}"], least * per_s)
            assert math.isclose(row[f"{phase}_x_floor"], median / (least * per_s))
            assert row[f"{phase}_floor_bound"] == ("memory" if nbytes / c.gbps / 1e9 >= flops / c.tflops / 1e12
                                                   else "compute")
        assert row["prefill_flops"] == row["flops_per_token"] * point.seq * point.batch


# --- swimbench kernels ------------------------------------------------------------------------------
def test_kernel_rows_count_flops_by_the_ops_formulas():
    """2 FLOPs per multiply-add: per token and channel, MACS_PER_STATE per state, delta*u, the D skip
    and the gate (the benchmark's inputs carry D and z); a step is one token per sequence."""
    rng = rng_for("kernel-flops")
    b, l, d, n, E, k = (int(rng.integers(1, 9)) for _ in range(6))
    E, k = E + 1, min(k, E + 1)
    per_token = d * (MACS_PER_STATE * n + MACS_PER_CHANNEL + 1) + d
    row = kb._row(kb.Case("dense", b, l, d, n), "ours", 1.0, 1, 1.0)
    assert row["flops"] == 2 * b * l * per_token
    step = kb._row(kb.Case("dense-step", b, l, d, n), "ours", 1.0, 1, 1.0)
    assert step["flops"] == 2 * b * per_token
    mixed = kb._row(kb.Case("swimba", b, l, d, n, E, k), "ours", 1.0, 1, 1.0)
    assert mixed["flops"] == 2 * b * l * (per_token + k * (d + 2 * n))
    separated = kb._row(kb.Case("separated", b, l, d, n, E, k), "ours", 1.0, 1, 1.0)
    assert separated["flops"] == 2 * b * l * (E * (per_token - d) + E * d + d)


def test_kernel_table_keeps_case_names_whole_at_80_columns():
    rng = rng_for("kernel-table")
    c = drawn_ceilings(rng)
    cases = [kb.Case("separated-step", 128, 1, experts=64), kb.Case("swimba", 8, 32768, experts=16, top_k=2),
             kb.Case("dense", 1, 8192)]
    rows = []
    for case in cases:
        ms = float(rng.uniform(0.01, 10))
        nbytes = int(rng.integers(10 ** 6, 10 ** 9))
        r = kb._row(case, "mamba-ssm 2.3.2.post1", ms, nbytes, c.gbps * 1e9, "bd256 w4 c16")
        f = floor(r["bytes"], r["flops"], c)
        rows.append(dict(r, label=case.label, x_floor=ms / (f.seconds * 1e3), floor_bound=f.bound))
    out = Console(file=StringIO(), width=80)
    out.print(kernels_table(rows, c, "some GPU"))
    lines = out.file.getvalue().splitlines()
    assert all(any(case.label in line for line in lines) for case in cases)
