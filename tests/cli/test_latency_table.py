"""The summary table `swimbench latency` prints at the end: each phase's time over its floor beside
its median, the decode step's kernel count, and columns no row has left out."""
from swimbench.cli.latency import summary_table
from swimbench.results import RunDir
from swimbench.sweeps.spec import Sweep

from ..synthetic import lognormal, make_run, rng_for

SWEEP = Sweep(d_model=128, variants=("dense", "swimba", "separated"), experts=(2, 4), top_k=(1,), seq=(512,),
              batch=(1,))


def _frame(tmp_path, name, **kw):
    """What the command hands the table: the results of a finished run, as Results.frame() gives them."""
    rng = rng_for(f"table-{name}")
    made = make_run(tmp_path, lognormal(rng), rng=rng, sweep=SWEEP, name=name, **kw)
    return RunDir.existing(made.path).results(order=[p.key for p in SWEEP.points()]).frame(), rng


def _columns(table) -> dict:
    return {c.header: list(c.cells) for c in table.columns}


def test_decode_time_over_its_floor_and_kernel_count_sit_beside_the_decode_median(tmp_path):
    frame, rng = _frame(tmp_path, "gpu")
    kernels = rng.integers(5, 200, len(frame))
    frame["decode_kernels"] = kernels
    table = summary_table(frame, "cuda")
    cols = _columns(table)
    headers = list(cols)
    at = headers.index("decode us")
    assert headers[at + 1:at + 3] == ["dec x floor", "kern"] and "x floor" in headers
    for i, r in enumerate(frame.itertuples()):
        assert cols["dec x floor"][i] == f"{float(r.decode_x_floor):.2f} {r.decode_floor_bound[0]}"
        assert cols["x floor"][i] == f"{float(r.prefill_x_floor):.2f} {r.prefill_floor_bound[0]}"
        assert cols["kern"][i] == str(kernels[i])
    assert "x floor: median over the least time" in table.caption and "kern: CUDA kernels" in table.caption


def test_decode_floor_alone_is_shown_and_explained(tmp_path):
    frame, _ = _frame(tmp_path, "decode-only")
    for c in ("prefill_floor_ms", "prefill_x_floor", "prefill_floor_bound"):
        frame[c] = None
    table = summary_table(frame, "cuda")
    headers = list(_columns(table))
    assert "dec x floor" in headers and "x floor" not in headers and "kern" not in headers
    assert "x floor: median over the least time" in table.caption and "kern:" not in table.caption


def test_a_cpu_run_has_neither_floors_nor_kernel_counts_in_its_table(tmp_path):
    frame, _ = _frame(tmp_path, "cpu", gpu=None)
    table = summary_table(frame, "cpu")
    headers = list(_columns(table))
    assert "decode us" in headers and not {"x floor", "dec x floor", "kern"} & set(headers)
    assert "x floor" not in table.caption and "kern" not in table.caption
