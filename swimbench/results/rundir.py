"""A run directory and its results table.

    reports/<YYYYmmdd-HHMMSS>-<profile>/
        results.csv     one row per configuration, rewritten atomically after each row
        metadata.json   environment, command, profile, sweep, settings, status (atomic)
        samples.jsonl   the raw timing samples of each row (the gate's rank tests read them)
        power.csv       the power trace, appended after each row

A run spread over the ranks of torch.distributed (docs/distributed.md) has one directory: every rank
writes its rows into the one results.csv and appends its samples, each write a read-merge-write of
the file under a lock (`shared`); rank 0 alone writes metadata.json and power.csv.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterable, Optional

import pandas as pd

from . import schema
from .atomic import append_line, atomic_write_text, locked

DONE = ("ok", "oom")        # rows --resume does not measure again ("error" rows are retried)


class Results:
    """The rows of results.csv, in sweep order, written whole and atomically on every change. Rows read
    back from the file stay text and are rewritten exactly as they were (--resume keeps them); rows
    put since are written by their columns' types (swimbench.results.schema)."""

    def __init__(self, path: Path, order: Optional[Iterable[str]] = None, shared: bool = False):
        self.path = Path(path)
        self.order = {k: i for i, k in enumerate(order or [])}
        self.shared = shared                        # other processes put rows into the same file
        self.rows: dict[str, dict] = {}
        self.kept: set[str] = set()                 # keys whose row is still the file's text
        self._read()

    def _read(self) -> None:
        """The file's rows, kept as text; the rows this process put since stay as they are."""
        if self.path.exists():
            for row in pd.read_csv(self.path, dtype=str, keep_default_na=False).to_dict("records"):
                if row["key"] in self.kept or row["key"] not in self.rows:
                    self.rows[row["key"]] = row
                    self.kept.add(row["key"])

    def reload(self) -> None:
        """Read the rows other processes have put since (shared runs)."""
        with locked(self.lock_path()):
            self._read()

    def lock_path(self) -> Path:
        return self.path.with_name(f".{self.path.name}.lock")

    def done_keys(self) -> set[str]:
        return {k for k, r in self.rows.items() if r.get("status") in DONE}

    def put(self, row: dict) -> None:
        if not self.shared:
            self._put(row)
            return
        with locked(self.lock_path()):
            self._read()
            self._put(row)

    def _put(self, row: dict) -> None:
        self.rows[row["key"]] = row
        self.kept.discard(row["key"])
        self.write()

    def cells(self) -> pd.DataFrame:
        """The table as results.csv holds it: text, the schema's columns first, in sweep order."""
        keys = sorted(self.rows, key=lambda k: self.order.get(k, len(self.order)))
        extra = [c for k in keys for c in self.rows[k] if c not in schema.BY_NAME]
        cols = schema.COLUMNS + list(dict.fromkeys(extra))
        recs = [{c: self.rows[k].get(c, "") if k in self.kept else schema.text(c, self.rows[k].get(c))
                 for c in cols} for k in keys]
        return pd.DataFrame(recs, columns=cols, dtype=object)

    def frame(self) -> pd.DataFrame:
        """The rows as the schema's types."""
        return schema.typed(self.cells())

    def write(self) -> None:
        atomic_write_text(self.path, self.cells().to_csv(index=False))


class RunDir:
    RESULTS, METADATA, SAMPLES, POWER = "results.csv", "metadata.json", "samples.jsonl", "power.csv"

    def __init__(self, path: Path, shared: bool = False):
        self.path = Path(path)
        self.shared = shared            # several processes write it (one run over several ranks)

    @classmethod
    def create(cls, parent: Path, name: str) -> "RunDir":
        """A new directory <parent>/<timestamp>-<name> (suffixed -2, -3, ... if it exists)."""
        base = f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"
        parent = Path(parent)
        parent.mkdir(parents=True, exist_ok=True)
        for i in range(1, 1000):
            path = parent / (base if i == 1 else f"{base}-{i}")
            try:
                path.mkdir()
                return cls(path)
            except FileExistsError:
                continue
        raise FileExistsError(f"cannot create a run directory under {parent}")

    @classmethod
    def existing(cls, path: Path) -> "RunDir":
        run = cls(path)
        if not (run.path / cls.METADATA).is_file():
            raise FileNotFoundError(f"{path} is not a run directory (no {cls.METADATA})")
        return run

    def file(self, name: str) -> Path:
        return self.path / name

    def results(self, order: Optional[Iterable[str]] = None) -> Results:
        return Results(self.file(self.RESULTS), order, shared=self.shared)

    def read_metadata(self) -> dict:
        return json.loads(self.file(self.METADATA).read_text())

    def write_metadata(self, meta: dict) -> None:
        atomic_write_text(self.file(self.METADATA), json.dumps(meta, indent=2, default=str) + "\n")

    def append_samples(self, key: str, attempt: int, samples: dict) -> None:
        line = json.dumps({"key": key, "attempt": attempt, **samples})
        if not self.shared:
            append_line(self.file(self.SAMPLES), line)
            return
        with locked(self.file(f".{self.SAMPLES}.lock")):
            append_line(self.file(self.SAMPLES), line)

    def read_samples(self) -> dict[str, dict]:
        """The last recorded samples of each key."""
        out: dict[str, dict] = {}
        path = self.file(self.SAMPLES)
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    rec = json.loads(line)
                    out[rec["key"]] = rec
        return out

    def append_power(self, samples) -> None:
        """Append power samples (objects with unix, power_w, instant_w, label) to power.csv."""
        if not samples:
            return
        path = self.file(self.POWER)
        lines = [] if path.exists() else ["unix_time,power_w,instant_w,label"]
        lines += [f"{s.unix:.4f},{s.power_w:.3f},{'' if s.instant_w is None else f'{s.instant_w:.3f}'},"
                  f"{s.label}" for s in samples]
        append_line(path, "\n".join(lines))
