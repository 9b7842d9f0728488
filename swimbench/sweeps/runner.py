"""Runs a sweep point by point: skips what is done, records every finished point at once, turns an
out-of-memory point into a row with status "oom" and goes on, and stops cleanly on an interrupt."""
from __future__ import annotations

import gc
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Optional

import torch

from .spec import Point

OOM_MESSAGES = ("out of memory", "can't allocate memory", "cannot allocate memory",
                "CUBLAS_STATUS_ALLOC_FAILED")


def is_oom(err: BaseException) -> bool:
    """CUDA's OutOfMemoryError, Python's MemoryError, or the CPU allocator's RuntimeError."""
    if isinstance(err, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(err, RuntimeError) and any(m in str(err) for m in OOM_MESSAGES)


def failure_row(point: Point, status: str, err: BaseException) -> dict:
    from ..measure.point import identity
    text = " ".join(f"{type(err).__name__}: {err}".split())
    return {**identity(point), "status": status, "error": text[:500]}


def release_memory() -> None:
    """Between points: what one point allocated must not count in the next one's peak memory. That
    includes the cuBLAS workspaces, which torch keeps per stream until told otherwise."""
    gc.collect()
    if torch.cuda.is_available():
        clear = getattr(torch._C, "_cuda_clearCublasWorkspaces", None)
        if clear is not None:
            clear()
        torch.cuda.empty_cache()


@dataclass
class Outcome:
    planned: int = 0
    skipped: int = 0                     # already done (--resume)
    measured: list[str] = field(default_factory=list)
    oom: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    interrupted: bool = False


def orders(points: list[Point], repeats: int) -> list[list[Point]]:
    """The order of each repeat: the first as given, each later one rotated by another share of the
    sweep and, every other repeat, reversed, so that no row always follows the same rows or sits at
    the same time into the sweep (drift of the machine falls on every row alike)."""
    n = len(points)
    out = []
    for r in range(repeats):
        shift = (r * n) // repeats if n else 0
        order = points[shift:] + points[:shift]
        out.append(order[::-1] if r % 2 else order)
    return out


def run_sweep(points: Iterable[Point], measure: Callable[[Point], object],
              record: Callable[[Point, dict, Optional[dict]], None], done: Iterable[str] = (),
              on_start: Callable[[Point], None] = lambda p: None,
              on_end: Callable[[Point, dict], None] = lambda p, r: None, repeats: int = 1,
              combine: Callable[[list], object] = lambda parts: parts[0]) -> Outcome:
    """`measure(point)` returns an object with `.row` and `.samples`; `record(point, row, samples)`
    stores it. With `repeats` > 1 every point is measured that many times, the repeats in the orders
    of `orders`, and recorded once its last repeat ends, as `combine(measurements)`; a point that fails
    is recorded at once and not measured again. A KeyboardInterrupt ends the sweep with every recorded
    row kept (points in flight, or with repeats still to come, are not recorded); anything else fails
    only its own row."""
    points = list(points)
    done = set(done)
    out = Outcome(planned=len(points))
    todo = [p for p in points if p.key not in done]
    out.skipped = len(points) - len(todo)
    parts: dict[str, list] = {p.key: [] for p in todo}
    failed: set[str] = set()
    for order in orders(todo, max(1, repeats)):
        for point in order:
            if point.key in failed:
                continue
            on_start(point)
            try:
                result = measure(point)
            except KeyboardInterrupt:
                out.interrupted = True
                return out
            except Exception as err:  # noqa: BLE001  (recorded in the row, the sweep goes on)
                oom = is_oom(err)
                row = failure_row(point, "oom" if oom else "error", err)
                (out.oom if oom else out.errors).append(point.key)
                failed.add(point.key)
                del err
                record(point, row, None)
                on_end(point, row)
                continue
            finally:
                release_memory()
            parts[point.key].append(result)
            if len(parts[point.key]) == max(1, repeats):
                final = combine(parts.pop(point.key))
                out.measured.append(point.key)
                record(point, final.row, final.samples)
                on_end(point, final.row)
            else:
                on_end(point, result.row)
    return out


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def stop_on_signals(grace_s: float = 2.0) -> Iterator[Callable[[], None]]:
    """SIGINT and SIGTERM (what `timeout`, CI runners and schedulers send) end a sweep as Ctrl-C does:
    the point in flight is dropped, every recorded row is kept and the run is marked interrupted.
    Repeats within `grace_s` of the first are ignored, so that the cleanup finishes (`timeout` sends
    its signal twice: to the command and to its process group). Yields `rearm`, which puts the
    handlers back in case a library loaded mid-sweep replaced them. A no-op off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    first: list[float] = []

    def stop(signum, frame):
        if first and time.monotonic() - first[0] < grace_s:
            return
        first.append(time.monotonic())
        raise KeyboardInterrupt(signal.Signals(signum).name)

    def rearm():
        for s in STOP_SIGNALS:
            if signal.getsignal(s) is not stop:
                signal.signal(s, stop)

    saved = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    rearm()
    try:
        yield rearm
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
