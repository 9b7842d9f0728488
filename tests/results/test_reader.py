"""swimbench.results.reader: committed runs read as the schema's types (an H100 run written before
several columns existed, and an H200 run with all of them), the rows a run's points lack, the
writer's rewrite of kept rows, and cells of the wrong type as a one-line error."""
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from swimbench.results import Results, RunDir, schema
from swimbench.results.reader import RunError, load_run

from swimbench.sweeps.spec import Sweep

from ..synthetic import lognormal, make_run, rng_for

REPORTS = Path(__file__).resolve().parents[2] / "reports"
H100_OLD = REPORTS / "h100-2026-11-23-default"        # no prefill_mode, launch, bytes, floors or kernels
H200 = REPORTS / "h200-2026-12-01-final"
NOT_IN_THE_OLD_RUN = ("prefill_mode", "prefill_launch_ms", "prefill_bytes", "prefill_flops", "prefill_floor_ms",
                      "decode_x_floor", "prefill_kernels", "decode_kernels")


def _cells(path: Path) -> pd.DataFrame:
    return pd.read_csv(path / RunDir.RESULTS, dtype=str, keep_default_na=False)


def _assert_typed(rows: pd.DataFrame):
    assert list(rows.columns) == schema.COLUMNS
    for c in schema.DECLARED:
        assert rows[c.name].dtype == schema.PANDAS[c.dtype], c.name


def test_an_old_h100_run_reads_typed_with_what_its_rows_did():
    cells = _cells(H100_OLD)
    assert not set(NOT_IN_THE_OLD_RUN) & set(cells.columns)
    run = load_run(H100_OLD)
    _assert_typed(run.rows)
    assert run.missing == () and run.unplanned == () and len(run.rows) == len(run.meta["points"])
    assert list(run.rows["key"]) == run.meta["points"]
    ok = run.ok
    assert len(ok) == len(run.rows) and set(ok["prefill_mode"]) == {"eager"}
    # counts back from the achieved rates, as integers; nothing was measured of floors or kernels
    assert (ok["prefill_bytes"] == (ok["prefill_gbps"] * ok["prefill_ms"] * 1e6).round().astype("Int64")).all()
    assert (ok["decode_flops"] > 0).all()
    assert ok[["prefill_floor_ms", "decode_x_floor", "prefill_kernels", "prefill_launch_ms"]].isna().all().all()
    # the columns it did write are its cells, as numbers or text
    assert (ok["experts"].astype(int).astype(str) == cells["experts"]).all()
    assert (ok["prefill_ms"] == cells["prefill_ms"].astype(float)).all()
    assert ok["matched"].all() and set(ok["decode_mode"]) == set(cells["decode_mode"])


def test_a_new_h200_run_reads_typed_exactly_as_written():
    cells = _cells(H200)
    run = load_run(H200)
    _assert_typed(run.rows)
    assert run.missing == () and len(run.rows) == len(cells)
    rows = run.rows.set_index("key").loc[cells["key"]].reset_index()
    for c in schema.DECLARED:
        if c.name not in cells:
            continue
        text = cells[c.name]
        empty = text == ""
        assert (rows[c.name].isna() == empty).all(), c.name
        got, filled = rows.loc[~empty, c.name], text[~empty]
        want = {schema.STR: lambda: filled, schema.FLOAT: lambda: filled.astype(float),
                schema.INT: lambda: filled.map(int), schema.BOOL: lambda: filled == "True"}[c.dtype]()
        assert (got.to_numpy() == want.to_numpy()).all(), c.name
    assert rows["prefill_kernels"].notna().all() and rows["prefill_floor_bound"].isin(["memory", "compute"]).all()


def test_rows_missing_from_a_run_are_named_not_printed(tmp_path, capsys):
    rng = rng_for("reader-missing")
    run = tmp_path / "run"
    shutil.copytree(H200, run, ignore=shutil.ignore_patterns("report"))
    points = load_run(run).meta["points"]
    dropped = sorted(rng.choice(len(points), size=int(rng.integers(1, len(points) // 2)), replace=False))
    cells = _cells(run)
    stray = cells.iloc[[0]].assign(key="dense/E1/k1/seq4096/b3/L1")
    kept = pd.concat([cells[~cells["key"].isin([points[i] for i in dropped])], stray])
    kept.to_csv(run / RunDir.RESULTS, index=False)
    read = load_run(run)
    assert read.missing == tuple(points[i] for i in dropped)          # in the order of the points
    assert read.unplanned == ("dense/E1/k1/seq4096/b3/L1",)
    assert len(read.rows) == len(points) - len(dropped) + 1
    assert capsys.readouterr() == ("", "")


def test_kept_rows_are_rewritten_exactly_as_every_committed_run_holds_them(tmp_path):
    """--resume rewrites the rows it keeps: every cell of every committed results.csv comes back as
    it was, the columns added since empty; a run that has them all comes back byte for byte."""
    for path in sorted(REPORTS.glob("*/results.csv")):
        copy = tmp_path / f"{path.parent.name}.csv"
        shutil.copy(path, copy)
        Results(copy).write()
        before, after = (pd.read_csv(p, dtype=str, keep_default_na=False) for p in (path, copy))
        assert list(after.columns) == schema.COLUMNS, path
        assert after[before.columns].equals(before), path
        assert (after.drop(columns=before.columns) == "").all().all(), path
        if list(before.columns) == schema.COLUMNS:
            assert copy.read_bytes() == path.read_bytes(), path


def test_a_cell_of_the_wrong_type_is_a_one_line_error(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(H100_OLD, run)
    cells = _cells(run)
    cells.loc[int(rng_for("reader-bad").integers(len(cells))), "experts"] = "several"
    cells.to_csv(run / RunDir.RESULTS, index=False)
    with pytest.raises(RunError) as e:
        load_run(run)
    assert "experts" in str(e.value) and "'several'" in str(e.value) and "\n" not in str(e.value)


# Every int and bool column full, empty, or filled in some rows: the reader types each pattern the same
# way on every pandas the project accepts (a masked setitem into nullable Int64 / boolean raised on
# pandas 2.1 to 3.0.6 when every row was filled, and only 3.1 took it).
TYPED = [c for c in schema.DECLARED if c.dtype in (schema.INT, schema.BOOL)]
IDENTITY_INTS = ("experts", "top_k", "seq", "batch", "layers")


def _filled_as(fill: str, n: int, rng) -> list:
    """Which rows of each typed column hold a value: every row, none, or per column any of the three."""
    patterns = {"every": lambda: np.ones(n, bool), "none": lambda: np.zeros(n, bool),
                "rows": lambda: np.arange(n) % 2 == rng.integers(2)}
    if fill != "some":
        return [patterns[fill]() for _ in TYPED]
    kinds = ["every", "none", "rows"] + list(rng.choice(["every", "none", "rows"], len(TYPED) - 3))
    return [patterns[k]() for k in rng.permutation(kinds)]


@pytest.mark.parametrize("fill", ["every", "none", "some"])
def test_int_and_bool_columns_read_back_whichever_rows_fill_them(tmp_path, fill):
    rng = rng_for(f"typed columns {fill}")
    sweep = Sweep(d_model=48, variants=("dense", "swimba"), experts=(3,), top_k=(1, 2), seq=(24,), batch=(1, 5))
    run = make_run(tmp_path, lognormal(rng, n=6), rng=rng, gpu=None, sweep=sweep)
    cells = _cells(run.path)
    n = len(cells)
    for c, filled in zip(TYPED, _filled_as(fill, n, rng)):
        old = cells[c.name] if c.name in cells else pd.Series("", index=cells.index)
        drawn = ([str(int(v)) for v in rng.integers(1, 10 ** 6, n)] if c.dtype == schema.INT
                 else [str(bool(v)) for v in rng.integers(0, 2, n)])
        cells[c.name] = [(o or d) if f else "" for o, d, f in zip(old, drawn, filled)]
    # an ok row needs its configuration: rows left without one are error rows
    lacking = (cells[list(IDENTITY_INTS)] == "").any(axis=1)
    cells.loc[lacking, "status"] = "error"
    cells.loc[lacking, "error"] = "its configuration was emptied by the test"
    (run.path / RunDir.RESULTS).write_text(cells.to_csv(index=False))

    rows = load_run(run.path).rows.set_index("key").loc[cells["key"]]
    _assert_typed(rows.reset_index())
    for c in TYPED:
        text = cells[c.name].to_numpy()
        got = rows[c.name].to_numpy(dtype=object)
        for t, g, status in zip(text, got, cells["status"]):
            if t == "":
                # empty: missing, or what measured rows written before the column get
                assert g is pd.NA or (status == "ok" and g == schema.default(c.name)), (c.name, g)
            else:
                assert g == (int(t) if c.dtype == schema.INT else t == "True"), (c.name, t, g)
