"""swimbench.results.schema: every column declared once with its type, unit and meaning; what rows
written before a column get; the intervals as pairs of declared columns; cells that round-trip
through the writer's text and the reader's types; the doc's column table."""
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from swimbench import results
from swimbench.gate.metrics import COMPARED, GATED
from swimbench.measure.point import PointMeasurer
from swimbench.results import schema
from swimbench.results.reader import load_run
from swimbench.sweeps.runner import failure_row
from swimbench.sweeps.spec import MeasureSettings, Sweep

from ..synthetic import rng_for

ROOT = Path(__file__).resolve().parents[2]
H200 = ROOT / "reports" / "h200-2026-12-01-final"
UNITS = {None, "ms", "us", "s", "W", "J/token", "GB/s", "TFLOP/s", "MiB", "B", "FLOP", "FLOP/token",
         "tokens/s", "tokens", "sequences", "%", "MHz"}


def test_every_column_is_declared_once_and_the_order_derives_from_it():
    names = [c.name for c in schema.DECLARED]
    assert len(names) == len(set(names))
    assert schema.COLUMNS == names and results.COLUMNS is schema.COLUMNS
    assert results.COLUMNS_BEFORE is schema.COLUMNS_BEFORE
    for c in schema.DECLARED:
        assert c.dtype in schema.PANDAS and c.unit in UNITS, c
        assert c.description and "\n" not in c.description and "|" not in c.description, c
    # the committed runs hold only declared columns, in the declared order
    for path in sorted((ROOT / "reports").glob("*/results.csv")):
        header = path.read_text().splitlines()[0].split(",")
        assert set(header) <= set(names), path
        assert header == [n for n in names if n in header], path


def test_every_column_a_row_gets_is_declared_and_its_value_fits_its_type():
    """Rows as the latency run records them (a measured point on the CPU, and a failed one): every
    column declared, every value written as its type and read back equal."""
    sweep = Sweep(d_model=16, d_state=4, variants=("dense", "swimba"), experts=(2,), top_k=(1,), seq=(8,),
                  batch=(2,), dtype="fp32")
    settings = MeasureSettings(budget_s=0.005, min_reps=3, warmup_reps=1, prefill="eager", decode="eager",
                               energy=False)
    context = {"device": "cpu", "attempt": 1, "measured_at": "2026-01-01T00:00:00+0000"}
    points = sweep.points()
    rows = [{**PointMeasurer(sweep, settings, "cpu")(p).row, **context} for p in points]
    rows.append({**failure_row(points[0], "oom", MemoryError("out of memory")), **context})
    for row in rows:
        assert set(row) <= set(schema.COLUMNS), set(row) - set(schema.COLUMNS)
        for name, value in row.items():
            cell = schema.text(name, value)
            back = schema.column(name).value(cell)
            if value is None:
                assert cell == "" and back is None
            elif isinstance(value, float):
                assert back == value and type(back) is float, name
            else:
                assert back == value, name


def test_cells_round_trip_and_wrong_types_are_refused():
    rng = rng_for("schema-cells")
    floats = [0.1 + 0.2, float(rng.lognormal(0, 20)), -float(rng.uniform()), 1e-300, 1980.0, math.inf]
    for v in floats:
        assert schema.column("prefill_ms").value(schema.text("prefill_ms", v)) == v
    big = int(rng.integers(2 ** 40, 2 ** 62))
    assert schema.column("prefill_flops").value(schema.text("prefill_flops", big)) == big
    assert schema.text("experts", 16.0) == "16" and schema.text("matched", np.bool_(False)) == "False"
    assert [schema.text(n, v) for n, v in (("experts", None), ("prefill_ms", math.nan), ("error", None))] == [""] * 3
    for name, bad in (("experts", 1.5), ("experts", "16"), ("matched", "True"), ("prefill_ms", True),
                      ("variant", 3)):
        with pytest.raises(ValueError, match=name):            # the writer: a value of another type
            schema.text(name, bad)
    for name, bad in (("experts", "1.5"), ("matched", "yes"), ("prefill_ms", "fast")):
        with pytest.raises(ValueError, match=name):            # the reader: a cell of another type
            schema.column(name).value(bad)
    # older writers put 16.0 in integer columns with gaps; read as 16
    assert schema.column("d_inner").value("4096.0") == 4096
    assert schema.column("matched").value("True") is True and schema.column("matched").value(True) is True


def test_defaults_for_rows_written_before_a_column():
    """COLUMNS_BEFORE derives from the declarations; a derived count is how the achieved rate was
    made, so on a run that stored both it gives back exactly the stored count."""
    before = {c.name: c.before for c in schema.DECLARED if c.before is not schema.EMPTY}
    assert schema.COLUMNS_BEFORE == before
    assert schema.default("prefill_mode") == "eager" and schema.default("prefill_bytes") is None
    assert schema.default("prefill_kernels") is None and schema.default("not a column") is None
    rows = load_run(H200).ok
    derived = [n for n, v in before.items() if isinstance(v, schema.Derived)]
    assert set(derived) == {"prefill_bytes", "prefill_flops", "decode_bytes", "decode_flops"}
    for name in derived:
        assert rows[name].notna().all()
        again = before[name](rows)
        assert (again.astype("Int64") == rows[name]).all(), name

    # with_before fills only measured rows whose cell is empty; other rows and filled cells are kept
    frame = rows.head(4).copy().reset_index(drop=True)
    frame.loc[0, "status"] = "oom"
    frame.loc[[0, 1], ["prefill_mode", "prefill_bytes"]] = pd.NA
    filled = schema.with_before(frame)
    assert filled.loc[0, ["prefill_mode", "prefill_bytes"]].isna().all()
    assert filled.loc[1, "prefill_mode"] == "eager" and filled.loc[1, "prefill_bytes"] == rows["prefill_bytes"].iloc[1]
    assert (filled.loc[2:, "prefill_mode"] == "graph").all()
    assert filled["prefill_bytes"].dtype == "Int64"


def test_intervals_are_pairs_of_declared_columns():
    seen = set()
    for i in schema.INTERVALS:
        assert (i.of, i.kind) not in seen and i.kind in (schema.CI, schema.SPREAD)
        seen.add((i.of, i.kind))
        cols = [schema.column(n) for n in (i.of, i.lo, i.hi)]
        assert {c.dtype for c in cols} == {schema.FLOAT} and len({c.unit for c in cols}) == 1
    # every measured time the gate and report judge has its interval; a column without one has none
    timed = {m.column for m in (*GATED, *COMPARED) if m.kind == "timed" and m.scales is None}
    assert timed and all(schema.interval(t) is not None and schema.spread(t) is not None for t in timed)
    assert schema.interval("prefill_tflops") is None and schema.spread("wall_s") is None
    assert {m.column for m in (*GATED, *COMPARED) if m.column} <= set(schema.COLUMNS)
    # and in real rows each interval holds its value
    rows = load_run(H200).ok
    for i in schema.INTERVALS:
        has = rows[rows[i.of].notna()]          # a latency run: the generate columns are empty
        assert (has[i.lo] <= has[i.of]).all() and (has[i.of] <= has[i.hi]).all(), i


def test_the_docs_column_table_is_the_schemas():
    doc = (ROOT / "docs" / "latency.md").read_text()
    start = doc.index("<!-- the columns: generated by swimbench.results.schema.markdown() -->\n")
    end = doc.index("\n<!-- end of the columns -->")
    assert doc[doc.index("\n", start) + 1:end] == schema.markdown(), \
        "docs/latency.md: paste swimbench.results.schema.markdown() between the markers"
