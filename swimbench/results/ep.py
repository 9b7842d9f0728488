"""The table of `swimbench ep` (docs/distributed.md): ep.csv in an expert-parallel run directory, one row
per (variant, experts, top_k, seq, batch, mode, phase, world_size), its columns declared once here with
schema.Column's types. Runs at several world sizes append to one directory (`--append`); a row measured
again replaces the one with its key."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from .atomic import atomic_write_text
from .schema import FLOAT, INT, STR, Column

C = Column
DECLARED: tuple[Column, ...] = (
    C("variant", STR, None, "the routed design (moe_mamba, rom or swimba)"),
    C("experts", INT, None, "experts E"),
    C("top_k", INT, None, "experts per token"),
    C("seq", INT, "tokens", "sequence length of a prefill"),
    C("batch", INT, "sequences", "sequences per rank"),
    C("mode", STR, None, "expert (experts sharded over the ranks, tokens exchanged) or replicated (every "
                         "rank holds every expert, no exchange)"),
    C("phase", STR, None, "prefill (one forward) or decode (one step, one token per sequence)"),
    C("world_size", INT, None, "ranks, one GPU each"),
    C("backend", STR, None, "nccl (GPUs) or gloo (CPU)"),
    C("d_model", INT, None, "model width"),
    C("d_inner", INT, None, "inner width, FLOP-matched to dense"),
    C("dtype", STR, None, "bf16, fp16 or fp32"),
    C("routing", STR, None, "expert choice: balanced, skewed or learned (per rank's tokens)"),
    C("tokens", INT, "tokens", "tokens one step processes over all ranks"),
    C("step_ms", FLOAT, "ms", "median over calls of the slowest rank's time"),
    C("step_ms_p10", FLOAT, "ms", "10th percentile of the slowest rank's time"),
    C("step_ms_p90", FLOAT, "ms", "90th percentile of the slowest rank's time"),
    C("us_per_token", FLOAT, "us", "step_ms over tokens: time per token of the whole world"),
    C("comm_ms", FLOAT, "ms", "median over calls of the mean over ranks of the time inside collectives "
                              "(waiting for other ranks included)"),
    C("compute_ms", FLOAT, "ms", "median over calls of the mean over ranks of the time outside collectives"),
    C("comm_share", FLOAT, None, "median over calls of comm over total time, means over ranks"),
    C("comm_ms_max_rank", FLOAT, "ms", "median over calls of the largest rank's time inside collectives"),
    C("slowest_rank", INT, None, "the rank most often slowest"),
    C("reps", INT, None, "timed calls"),
    C("clock", STR, None, "cuda_events or perf_counter (the host's clock, on the CPU)"),
    C("params_per_rank", INT, None, "parameters rank 0 holds"),
    C("params_layer", INT, None, "parameters of the whole layer"),
    C("wall_s", FLOAT, "s", "wall time of the phase's warm-up and timed calls"),
    C("measured_at", STR, None, "when the row was recorded (ISO 8601)"),
)
del C
COLUMNS = [c.name for c in DECLARED]
KEY = ("variant", "experts", "top_k", "seq", "batch", "mode", "phase", "world_size")
TABLE, METADATA = "ep.csv", "metadata.json"


def key(row: dict) -> tuple:
    return tuple(str(row[k]) for k in KEY)


TIMES = ("step_ms", "us_per_token")      # what every row measured: finite times > 0


def read(run: Path) -> pd.DataFrame:
    """ep.csv of a run directory, typed; an empty frame with every column where there is none.
    ValueError (one line naming the file) where it is not the table `swimbench ep` writes: not UTF-8
    CSV, a row without its key's columns or its times, a cell of the wrong type."""
    path = Path(run) / TABLE
    try:
        cells = (pd.read_csv(path, dtype=str, keep_default_na=False) if path.exists()
                 else pd.DataFrame(columns=COLUMNS, dtype=object))
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise ValueError(f"{path} is not the CSV table of swimbench ep ({' '.join(str(e).split())})") from None
    empty = pd.Series("", index=cells.index, dtype=object)
    try:
        frame = pd.DataFrame({c.name: c.parse(cells[c.name] if c.name in cells else empty) for c in DECLARED},
                             index=cells.index)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    for col in (*KEY, *TIMES):
        if frame[col].isna().any():
            raise ValueError(f"{path}: a row has no {col}")
    twice = cells[cells.duplicated(subset=[c for c in KEY if c in cells], keep=False)]
    if len(twice):                          # `add` keeps one row per key: a second is damage
        first = twice.iloc[0]
        lines = [i + 2 for i in twice.index if key(twice.loc[i]) == key(first)]
        raise ValueError(f"{path}: the configuration {'/'.join(key(first))} is on lines "
                         f"{' and '.join(map(str, lines))}: one row each")
    for col in TIMES:
        values = frame[col].astype(float)
        if not (np.isfinite(values) & (values > 0)).all():
            raise ValueError(f"{path}: {col} holds {values[~(np.isfinite(values) & (values > 0))].iloc[0]}, "
                             f"not a finite time > 0")
    return frame


def add(run: Path, rows: Iterable[dict]) -> None:
    """Put rows into ep.csv (rewritten atomically); a row with the key of one already there replaces it."""
    path = Path(run) / TABLE
    old = (pd.read_csv(path, dtype=str, keep_default_na=False).to_dict("records") if path.exists() else [])
    new = [{c.name: c.text(r.get(c.name)) for c in DECLARED} for r in rows]
    kept = {key(r): r for r in old}
    kept.update({key(r): r for r in new})
    atomic_write_text(path, pd.DataFrame(list(kept.values()), columns=COLUMNS).to_csv(index=False))


def create(parent: Path, name: str) -> Path:
    """A new directory <parent>/<timestamp>-<name> (suffixed -2, -3, ... if it exists)."""
    from .rundir import RunDir
    return RunDir.create(parent, name).path


def add_attempt(run: Path, attempt: dict) -> None:
    """Append what one `swimbench ep` call did (command, environment, world) to metadata.json."""
    path = Path(run) / METADATA
    meta = json.loads(path.read_text()) if path.exists() else {"tool": "swimbench ep", "attempts": []}
    meta["attempts"].append({"recorded": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **attempt})
    atomic_write_text(path, json.dumps(meta, indent=2, default=str) + "\n")


def is_ep_run(run: Path) -> bool:
    """Whether `run` is a run directory of `swimbench ep` (anything unreadable, or without its list of
    attempts, is not)."""
    try:
        meta = json.loads((Path(run) / METADATA).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("tool") == "swimbench ep" and isinstance(meta.get("attempts"), list)
