"""What `latency`, `generate` and `ep` say before a run that will take long: one line on stderr with the
estimate (swimbench.measure.estimate) and the flags of a run sized for this device. A run is never
refused for its length: it was asked for, and a GPU-sized run on a CPU is how its code is checked
there; the line comes first, so that Ctrl-C costs nothing."""
from __future__ import annotations

from rich.console import Console

# Past these a run is called long: minutes are what a CPU run is for, hours what a GPU sweep may take.
LONG_S = {"cpu": 10 * 60.0, "cuda": 2 * 3600.0}


def duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min" if seconds >= 60 \
        else f"{seconds:.0f} s"


def warn_if_long(estimate_s: float, device_type: str, rows: str, smaller: str) -> bool:
    """One line on stderr when `estimate_s` is long for the device: the estimate, the rows (`rows`, e.g.
    "10 rows") and what a shorter run takes (`smaller`: flags); True when said."""
    kind = "cuda" if device_type == "cuda" else "cpu"
    if estimate_s <= LONG_S[kind]:
        return False
    where = "on this GPU" if kind == "cuda" else "on the CPU"
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[yellow]warning:[/] this run is estimated to take {duration(estimate_s)} {where} ({rows}); "
        f"{smaller}")
    return True
