"""A run directory of `swimbench latency` read for reporting and gating: the results as numbers, the
raw samples, the power trace and the environment. Everything goes through swimbench.results.RunDir,
so a change of the run-directory format lands there and not here."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pandas as pd

from ..results import COLUMNS_BEFORE, RunDir


class RunError(ValueError):
    """A path that is not a readable run directory; the message is one line."""


@dataclass
class Run:
    name: str                   # the directory's name, made unique among the runs of one report
    path: Path
    meta: dict
    rows: pd.DataFrame          # results.csv, numeric columns as numbers, in sweep order
    samples: dict[str, dict]    # row key -> raw samples ("prefill_ms": [...], "decode_us": [...])
    rundir: RunDir = field(repr=False)

    @property
    def env(self) -> dict:
        return self.meta.get("environment") or {}

    @property
    def device(self) -> Optional[str]:
        return self.env.get("device")

    @property
    def gpu(self) -> Optional[str]:
        return (self.env.get("gpu") or {}).get("name")

    @property
    def machine(self) -> str:
        """What the numbers were measured on, in words: the GPU's name, or the device type."""
        return self.gpu or str(self.device or "unknown device")

    @property
    def ok(self) -> pd.DataFrame:
        return self.rows[self.rows["status"] == "ok"]

    def notes(self) -> list[str]:
        """What the run said about itself (energy unavailable, eager decode, ...), once each."""
        out = [n for a in self.meta.get("attempts") or [] for n in a.get("notes") or []]
        return list(dict.fromkeys(out))

    def power(self) -> Optional[pd.DataFrame]:
        """The power trace, or None when the run has none (no NVML)."""
        path = self.rundir.file(RunDir.POWER)
        if not path.is_file():
            return None
        trace = pd.read_csv(path)
        return trace if len(trace) else None


def load_run(path: Path, name: Optional[str] = None) -> Run:
    path = Path(path)
    try:
        rundir = RunDir.existing(path)
        meta = rundir.read_metadata()
        rows = numeric(rundir.results(order=meta.get("points")).frame())
        rows = with_columns_before(rows)
        samples = rundir.read_samples()
    except FileNotFoundError as e:
        raise RunError(str(e)) from None
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as e:
        raise RunError(f"{path} is not a readable run directory ({type(e).__name__}: {e})") from None
    return Run(name or path.name, path, meta, rows, samples, rundir)


def with_columns_before(rows: pd.DataFrame) -> pd.DataFrame:
    """Measured rows written before a column existed get what they did then (COLUMNS_BEFORE)."""
    for column, value in COLUMNS_BEFORE.items():
        have = rows.get(column, pd.Series(index=rows.index, dtype=object))
        fill = (have.isna() | (have.astype(object) == "")) & (rows["status"] == "ok")
        if callable(value):                     # derived from the row's other columns: numbers
            rows[column] = pd.to_numeric(have, errors="coerce").where(~fill, value(rows))
        else:
            rows[column] = have.astype(object).where(~fill, value)
    return rows


def numeric(df: pd.DataFrame) -> pd.DataFrame:
    """results.csv is read back as text; a column whose every non-empty value is a number becomes
    numeric (empty cells NaN), the others stay text."""
    out = df.copy()
    for c in df.columns:
        text = df[c].astype(str)
        filled = text != ""
        values = pd.to_numeric(text.where(filled), errors="coerce")
        if values.notna().sum() == filled.sum():
            out[c] = values
    return out
