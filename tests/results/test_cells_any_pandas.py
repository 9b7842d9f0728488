"""Cells read back the same under every pandas that pyproject.toml accepts (CI runs the suite under
the newest releases, the GPU image's versions and the lowest ones): floats exactly as written,
columns with gaps keeping their type and values, and a cell no column type can hold refused with
ValueError, the one error the readers turn into a line naming the file."""
import numpy as np
import pandas as pd
import pytest

from swimbench.results import ep as ep_table
from swimbench.results import schema

from ..synthetic import rng_for


def _maker(col: schema.Column, rng: np.random.Generator):
    """Fresh random values of the column's type."""
    return {schema.STR: lambda: f"v{rng.integers(10 ** 6)}",
            schema.INT: lambda: int(rng.integers(-2 ** 63, 2 ** 63 - 1, endpoint=True)),
            schema.FLOAT: lambda: float(rng.lognormal(0, 30)) * float(rng.choice([-1, 1])),
            schema.BOOL: lambda: bool(rng.integers(2))}[col.dtype]


def test_floats_read_back_exactly_as_written():
    # pandas 3.0.6's to_numeric gets about one float in three wrong in its last bit; 3.1 does not
    rng = rng_for("cells-floats")
    values = np.concatenate([rng.lognormal(0, 30, 997), rng.uniform(-1, 1, 331),
                             rng.integers(2 ** 53, 2 ** 62, 61).astype(float)])
    col = schema.column("prefill_ms")
    back = col.parse(pd.Series([col.text(float(v)) for v in values], dtype=object))
    assert back.dtype == np.float64 and np.array_equal(back.to_numpy(), values)


@pytest.mark.parametrize("name", ["variant", "experts", "prefill_ms", "matched"])   # str, int, float, bool
@pytest.mark.parametrize("read_as", [object, "string"])     # as read_csv gives text under pandas 2 and 3
def test_a_column_with_gaps_keeps_its_type_and_its_values(name, read_as):
    col = schema.column(name)
    rng = rng_for(f"cells-gaps-{name}")
    make = _maker(col, rng)
    # a gap first and a value last (the column's type is not its first cell's), gaps between
    values = [None] + [make() if rng.uniform() < 0.6 else None for _ in range(int(rng.integers(2, 60)))] + [make()]
    cells = pd.Series([col.text(v) for v in values], dtype=read_as)
    back = col.parse(cells)
    assert str(back.dtype) == schema.PANDAS[col.dtype] and len(back) == len(values)
    for v, b in zip(values, back):
        assert pd.isna(b) if v is None else (b == v and not pd.isna(b)), (v, b)
    assert col.parse(pd.Series([""] * len(values), dtype=read_as)).isna().all()


def test_an_integer_int64_cannot_hold_is_a_value_error():
    # pandas raises OverflowError for it (no ValueError), which the readers would let through
    rng = rng_for("cells-overflow")
    col = schema.column("prefill_flops")
    big = 2 ** 63 + int(rng.integers(0, 2 ** 62))
    for cell in (str(big), str(-big - 1), f"{float(big):e}"):
        with pytest.raises(ValueError, match="prefill_flops"):
            col.parse(pd.Series(["1", cell, ""], dtype=object))
    edge = str(2 ** 63 - 1), str(-2 ** 63)
    assert list(col.parse(pd.Series(edge, dtype=object))) == [2 ** 63 - 1, -2 ** 63]


def test_an_ep_table_with_an_integer_too_large_is_one_line_naming_it(tmp_path):
    rng = rng_for("cells-ep-overflow")
    row = {"variant": "swimba", "experts": int(rng.integers(2, 65)), "top_k": 1, "seq": int(rng.integers(1, 999)),
           "batch": 1, "mode": "expert", "phase": "prefill", "world_size": 2, "step_ms": float(rng.uniform(0.1, 9)),
           "us_per_token": float(rng.uniform(0.1, 9))}
    ep_table.add(tmp_path, [row])
    assert ep_table.read(tmp_path)["experts"].iloc[0] == row["experts"]
    text = (tmp_path / ep_table.TABLE).read_text()
    big = str(2 ** 64 + int(rng.integers(0, 2 ** 40)))
    (tmp_path / ep_table.TABLE).write_text(text.replace(f"swimba,{row['experts']},", f"swimba,{big},"))
    with pytest.raises(ValueError) as e:
        ep_table.read(tmp_path)
    assert str(tmp_path / ep_table.TABLE) in str(e.value) and big in str(e.value) and "\n" not in str(e.value)
