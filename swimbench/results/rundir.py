"""A run directory and its results table.

    reports/<YYYYmmdd-HHMMSS>-<profile>/
        results.csv     one row per configuration, rewritten atomically after each row
        metadata.json   environment, command, profile, sweep, settings, status (atomic)
        samples.jsonl   the raw timing samples of each row (the gate's rank tests read them)
        power.csv       the power trace, appended after each row
        .lock           held (fcntl.flock) by the one process writing the run; holds its pid

A run spread over the ranks of torch.distributed (docs/distributed.md) has one directory: every rank
writes its rows into the one results.csv and appends its samples, each write a read-merge-write of
the file under a lock (`shared`); rank 0 alone writes metadata.json and power.csv.
"""
from __future__ import annotations

import csv
import fcntl
import io
import json
import math
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Optional

import pandas as pd

from . import schema
from .atomic import append_line, atomic_write_text, locked

DONE = ("ok", "oom")        # rows --resume does not measure again ("error" rows are retried)


class DamagedRun(ValueError):
    """A file of a run directory that cannot be read as written; the message names the file, the line
    and what is wrong, on one line."""


# A cell may be long (an error message, a note) but not without bound: a results.csv written by hand or
# by another tool is read up to this per cell, past it refused by line, so that a damaged file (a quote
# never closed swallows the rest of the file) cannot fill memory cell by cell.
MAX_CELL = 16 << 20


def read_table(path: Path) -> list[dict]:
    """results.csv as text records, every record checked to have the header's fields: a row cut short
    (a truncated file) or one with more fields is refused, not filled in or shifted, and so is a key
    on two rows (each configuration has one row: repeats and ranks are merged into it)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DamagedRun(f"{path} is not UTF-8 text (byte {e.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    limit = csv.field_size_limit()         # the csv module's limit is process-wide: restored after
    csv.field_size_limit(MAX_CELL)
    try:
        records, lines, end = [], [], 0
        for rec in reader:                  # each record's first line (a quoted cell may span lines)
            records.append(rec)
            lines.append(end + 1)
            end = reader.line_num
    except csv.Error as e:
        raise DamagedRun(f"{path} line {end + 1} is not a CSV record ({e}; a cell holds at "
                         f"most {MAX_CELL >> 20} MiB)") from None
    finally:
        csv.field_size_limit(limit)
    if not records or not records[0]:
        raise DamagedRun(f"{path} is empty: no header")
    header = records[0]
    if "key" not in header or "status" not in header:
        raise DamagedRun(f"{path} has no key and status columns: not a results table")
    out, seen = [], {}
    for line, rec in zip(lines[1:], records[1:]):
        if not rec:
            continue
        if len(rec) != len(header):
            what = "cut short (a truncated file?)" if len(rec) < len(header) else "more fields than the header"
            raise DamagedRun(f"{path} line {line} has {len(rec)} fields, the header {len(header)}: {what}")
        row = dict(zip(header, rec))
        if row["key"] in seen:
            raise DamagedRun(f"{path} has the key {row['key']} on lines {seen[row['key']]} and {line}: "
                             f"a configuration has one row")
        seen[row["key"]] = line
        out.append(row)
    return out


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
            for row in read_table(self.path):
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


SAMPLED = ("_ms", "_us", "_repeats")       # the fields of a samples record that hold raw times


def _samples(v) -> bool:
    """A phase's raw samples: a non-empty list of finite numbers >= 0."""
    return isinstance(v, list) and len(v) > 0 and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x >= 0 for x in v)


class RunLocked(RuntimeError):
    """Another process holds the run directory's lock; `pid` is the holder's (None if unreadable)."""

    def __init__(self, path: Path, pid: Optional[int]):
        self.path, self.pid = path, pid
        who = f"pid {pid}" if pid is not None else "another process"
        super().__init__(f"{path} is being written by {who} (lock {path / RunDir.LOCK})")


class RunDir:
    RESULTS, METADATA, SAMPLES, POWER = "results.csv", "metadata.json", "samples.jsonl", "power.csv"
    LOCK = ".lock"

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

    @contextmanager
    def lock(self):
        """Hold the run directory for this process: an exclusive, non-blocking flock on <run>/.lock,
        which records the holder's pid. A second writer gets RunLocked at once; the kernel releases
        the lock when its holder exits, however it ends (kill -9 included)."""
        path = self.file(self.LOCK)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
                raise RunLocked(self.path, int(text) if text.isdigit() else None) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield self
        finally:
            os.close(fd)

    def file(self, name: str) -> Path:
        return self.path / name

    def results(self, order: Optional[Iterable[str]] = None) -> Results:
        return Results(self.file(self.RESULTS), order, shared=self.shared)

    def read_metadata(self) -> dict:
        """metadata.json as a JSON object, else DamagedRun naming the problem."""
        path = self.file(self.METADATA)
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as e:
            raise DamagedRun(f"{path} is not UTF-8 text (byte {e.start})") from None
        except json.JSONDecodeError as e:
            raise DamagedRun(f"{path} is not JSON ({e.msg} at line {e.lineno})") from None
        if not isinstance(meta, dict):
            raise DamagedRun(f"{path} holds a JSON {type(meta).__name__}, not an object")
        return meta

    READ = (("environment", dict), ("points", list))          # what reading a run needs
    RESUME = READ + (("sweep", dict), ("settings", dict), ("attempts", list), ("profile", dict))
    RESUME_GENERATE = READ + (("generate", dict), ("settings", dict), ("attempts", list))   # swimbench generate's
    OPTIONAL = (("attempts", list), ("ceilings", dict), ("profile", dict), ("status", str))  # when present

    def metadata(self, fields=READ) -> dict:
        """metadata.json checked to be what `swimbench latency` writes: an object with `fields` (READ:
        its environment and points; RESUME: all that --resume reads), each of its type; else
        DamagedRun naming the field."""
        meta, path = self.read_metadata(), self.file(self.METADATA)
        for field, kind in fields:
            if field not in meta:
                raise DamagedRun(f"{path} has no {field!r} field")
            if not isinstance(meta[field], kind):
                raise DamagedRun(f"{path}: {field!r} is a {type(meta[field]).__name__}, not a "
                                 f"{kind.__name__}")
        if not all(isinstance(p, str) for p in meta["points"]):
            raise DamagedRun(f"{path}: 'points' holds something other than row keys")
        for field, kind in self.OPTIONAL:
            if meta.get(field) is not None and not isinstance(meta[field], kind):
                raise DamagedRun(f"{path}: {field!r} is a {type(meta[field]).__name__}, not a {kind.__name__}")
        gpu = meta.get("environment", {}).get("gpu")
        if gpu is not None and not isinstance(gpu, dict):
            raise DamagedRun(f"{path}: 'environment' 'gpu' is a {type(gpu).__name__}, not a dict")
        for a in meta.get("attempts") or []:
            if not isinstance(a, dict) or not isinstance(a.get("notes") or [], list):
                raise DamagedRun(f"{path}: 'attempts' holds {a!r:.60}, not an attempt with a list of notes")
        for c in (meta.get("ceilings"), (gpu or {}).get("ceilings")):
            for k in ("tflops", "gbps"):
                v = (c or {}).get(k)
                if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                                      or not math.isfinite(v) or v <= 0):
                    raise DamagedRun(f"{path}: ceilings {k} is {v!r}, not a finite number > 0")
            if c is not None and not isinstance(c, dict):
                raise DamagedRun(f"{path}: ceilings is a {type(c).__name__}, not a dict")
        return meta

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
        """The last recorded samples of each key; a line that is not a record is refused by number."""
        out: dict[str, dict] = {}
        path = self.file(self.SAMPLES)
        if path.exists():
            for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    if not isinstance(rec.get("key"), str) or not all(_samples(v) for k, v in rec.items()
                                                                        if k.endswith(SAMPLED)):
                        raise ValueError(line)
                    out[rec["key"]] = rec
                except (ValueError, KeyError, TypeError, AttributeError):
                    raise DamagedRun(f"{path} line {n} is not a samples record (a key and lists of "
                                     f"finite numbers): {line[:60]!r}") from None
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
