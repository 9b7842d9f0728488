"""The summary's markdown tables under every pandas accepted (DataFrame.map is pandas >= 2.1 only):
one line per row, every cell formatted by `cell`, numeric columns right-aligned."""
import numpy as np
import pandas as pd

from swimbench.report.markdown import cell, table

from ..synthetic import rng_for


def test_a_table_holds_every_cell_formatted_once():
    rng = rng_for("markdown-table")
    n = int(rng.integers(2, 9))
    df = pd.DataFrame({
        "variant": [f"v|{i}" for i in rng.integers(0, 99, n)],
        "experts": pd.array([int(v) if v % 3 else None for v in rng.integers(1, 65, n)], dtype="Int64"),
        "ms": np.where(rng.uniform(size=n) < 0.3, np.nan, rng.lognormal(0, 3, n)),
        "ok": pd.array([bool(v) for v in rng.integers(0, 2, n)], dtype="boolean"),
    })
    lines = table(df).splitlines()
    assert len(lines) == n + 2 and lines[1].count(":") == 4      # header, alignment, one line per row
    assert lines[1].split("|")[2].strip().endswith(":") and lines[1].split("|")[1].strip().startswith(":")
    for line, (_, row) in zip(lines[2:], df.iterrows()):
        got = [c.strip() for c in line.strip().strip("|").split(" | ")]
        assert got == [cell(v).strip() for v in row], (line, row)
    assert table(df.iloc[:0]) == "*(no rows)*"
