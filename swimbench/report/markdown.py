"""Tables for the markdown summary: pandas' to_markdown (tabulate) over cells formatted for reading."""
from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import pandas as pd


def cell(v) -> str:
    """A number with four significant digits (thousands separated, no exponent above 1e5), a whole
    number as such, NaN and missing values as empty."""
    if v is None or v is pd.NA or (isinstance(v, Real) and not isinstance(v, Integral) and math.isnan(v)):
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, Real):
        if float(v).is_integer() and abs(v) < 1e15:
            return f"{int(v):,}" if abs(v) >= 1e4 else str(int(v))
        a = abs(float(v))
        return f"{v:,.0f}" if a >= 1e5 else f"{v:.4g}" if a >= 1e-3 else f"{v:.3e}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def table(df: pd.DataFrame) -> str:
    if df.empty:
        return "*(no rows)*"
    align = ["right" if pd.api.types.is_numeric_dtype(df[c]) else "left" for c in df.columns]
    # cell by cell in Python: DataFrame.map is pandas >= 2.1, its older name applymap gone in 3.0
    cells = pd.DataFrame([[cell(v) for v in row] for row in df.itertuples(index=False)], columns=df.columns)
    return cells.to_markdown(index=False, disable_numparse=True, colalign=align)
