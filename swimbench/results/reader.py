"""A run directory of `swimbench latency` read back, for `swimbench report` and `swimbench gate`: the
results as the schema's types (swimbench.results.schema: no type is guessed from the cells), with what
rows written before a column did filled in; the raw samples, the power trace, the environment; and
the configurations of metadata.json's points that have no row (an interrupted run's)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from . import schema
from .rundir import DamagedRun, RunDir


class RunError(ValueError):
    """A path that is not a readable run directory; the message is one line."""


@dataclass
class Run:
    name: str                   # the directory's name, made unique among the runs of one report
    path: Path
    meta: dict
    rows: pd.DataFrame          # results.csv as the schema's types, in sweep order
    samples: dict[str, dict]    # row key -> raw samples ("prefill_ms": [...], "decode_us": [...])
    rundir: RunDir = field(repr=False)
    missing: tuple[str, ...] = ()       # points of metadata.json without a row in results.csv
    unplanned: tuple[str, ...] = ()     # rows whose key is not among the points

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
    """A run directory read back whole, or RunError with one line naming the damaged file and what is
    wrong with it: metadata.json, results.csv (cut short, extra fields, a value of the wrong type, an
    ok row without its medians), samples.jsonl, power.csv. Points without a row are `missing`: the
    gate fails them and the report names them."""
    path = Path(path)
    try:
        rundir = RunDir.existing(path)
        meta = rundir.metadata()
        points = list(meta["points"])
        if not rundir.file(RunDir.RESULTS).is_file():
            raise DamagedRun(f"{rundir.file(RunDir.RESULTS)} does not exist: no row was recorded")
        rows = read_rows(rundir, points)
        samples = rundir.read_samples()
        _check_power(rundir)
    except FileNotFoundError as e:
        raise RunError(str(e)) from None
    except DamagedRun as e:
        raise RunError(str(e)) from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        where = rundir.file(RunDir.RESULTS) if "results column" in str(e) else path
        raise RunError(f"{where}: {e}") from None
    keys = set(rows["key"])
    missing = tuple(k for k in points if k not in keys)
    unplanned = tuple(k for k in rows["key"] if k not in set(points))
    return Run(name or path.name, path, meta, rows, samples, rundir, missing, unplanned)


def check_resumable(rundir: RunDir, fields=RunDir.RESUME) -> dict:
    """The metadata of a run that `--resume` can continue, after its results table and samples have
    been read as the report and the gate read them; DamagedRun (one line) where they cannot be.
    `fields`: what the metadata must hold (RunDir.RESUME_GENERATE for a generate run)."""
    meta = rundir.metadata(fields)
    results = rundir.file(RunDir.RESULTS)
    if results.exists() and not results.is_file():
        raise DamagedRun(f"{results} is not a file")
    if results.is_file():
        read_rows(rundir, meta["points"])
    rundir.read_samples()
    _check_power(rundir)
    return meta


def _check_power(rundir: RunDir) -> None:
    path = rundir.file(RunDir.POWER)
    if path.is_file():
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise DamagedRun(f"{path} is not UTF-8 text") from None
        if not lines or not lines[0].startswith("unix_time,"):
            raise DamagedRun(f"{path} is empty or has no header (unix_time,power_w,...)")
        for n, line in enumerate(lines[1:], 2):     # the times and watts: numbers (instant_w may be empty)
            cells = line.split(",")
            try:
                if len(cells) < 4 or not all(np.isfinite(float(c)) for c in cells[:2]):
                    raise ValueError(line)
                if cells[2]:
                    float(cells[2])
            except ValueError:
                raise DamagedRun(f"{path} line {n} is not unix_time,power_w,instant_w,label: "
                                 f"{line[:60]!r}") from None


# The medians an ok row must hold: a latency row its prefill and decode, a generate row (it has the
# column token_ms) its time to first token and per-token time.
MEDIANS = {"latency": ("prefill_ms", "decode_us"), "generate": ("ttft_ms", "token_ms")}


STATUSES = ("ok", "oom", "error")          # what the sweeps write (schema's status column)
IDENTITY = ("variant", "experts", "top_k", "seq", "batch")     # what says which configuration a row is


def _ok_rows_complete(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """A row's status is one the sweeps write; an ok row holds its configuration (counts >= 1) and its
    medians (finite times > 0): one without is a damaged row, not a measurement."""
    unknown = frame.loc[~frame["status"].isin(STATUSES), ["key", "status"]]
    if len(unknown):
        raise DamagedRun(f"{path}: row {unknown['key'].iloc[0]} has status {unknown['status'].iloc[0]!r}, "
                         f"not one of {', '.join(STATUSES)}")
    ok = frame["status"] == "ok"
    for col in IDENTITY:
        bad = frame.loc[ok & frame[col].isna(), "key"]
        if len(bad):
            raise DamagedRun(f"{path}: ok row {bad.iloc[0]} has no {col}")
        if col != "variant":
            bad = frame.loc[ok & (frame[col] < 1).fillna(False), "key"]
            if len(bad):
                raise DamagedRun(f"{path}: ok row {bad.iloc[0]} has {col} < 1")
    generate = frame["token_ms"].notna() if "token_ms" in frame else pd.Series(False, index=frame.index)
    if "ttft_ms" in frame:
        generate |= frame["ttft_ms"].notna()
    for kind, rows in (("latency", ok & ~generate), ("generate", ok & generate)):
        for col in MEDIANS[kind]:
            bad = frame.loc[rows & frame[col].isna(), "key"] if col in frame else frame.loc[rows, "key"]
            if len(bad):
                raise DamagedRun(f"{path}: ok row {bad.iloc[0]} has no {col}")
            values = frame[col].astype(float)
            bad = frame.loc[rows & ~(np.isfinite(values) & (values > 0)), "key"]
            if len(bad):
                raise DamagedRun(f"{path}: ok row {bad.iloc[0]} has {col} "
                                 f"{frame.loc[bad.index[0], col]}, not a finite time > 0")
    return frame


def read_rows(rundir: RunDir, order=None) -> pd.DataFrame:
    """results.csv as the schema's types, in the order of `order` (keys), measured rows written before
    a column existed given what they did then."""
    path = rundir.file(RunDir.RESULTS)
    try:
        frame = rundir.results(order=order).frame()
    except DamagedRun:
        raise
    except (ValueError, KeyError) as e:         # a cell of the wrong type, a column without values
        raise DamagedRun(f"{path}: {e}") from None
    return schema.with_before(_ok_rows_complete(frame, path))
