"""The device ceilings a run's achieved TFLOP/s, bandwidth and floors are drawn against, and where
they came from: a flag (--peak-tflops, --peak-gbps), else what the latency run measured at its start
and recorded in its metadata as {"ceilings": {"tflops": ..., "gbps": ..., "source": "..."}} (top
level or under environment.gpu). Nothing else: a run that measured none (a CPU run, or one written
before runs measured them) has none, and its figures say "not measured".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd

from ..measure.ceilings import PHASES, DeviceCeilings, floor_columns
from ..results import schema

NOT_MEASURED = "not measured by this run (give --peak-tflops and --peak-gbps)"


@dataclass(frozen=True)
class Ceiling:
    value: float
    source: str


@dataclass(frozen=True)
class Ceilings:
    tflops: Optional[Ceiling]
    gbps: Optional[Ceiling]

    @property
    def device(self) -> Optional[DeviceCeilings]:
        """As the measurement's type, which the floor arithmetic takes; None when neither is known."""
        if self.tflops is None and self.gbps is None:
            return None
        return DeviceCeilings(self.gbps.value if self.gbps else None,
                              self.tflops.value if self.tflops else None, self.sources())

    def sources(self) -> str:
        return "; ".join(f"{w}: {c.source}" for w, c in (("TFLOP/s", self.tflops), ("GB/s", self.gbps))
                         if c is not None) or NOT_MEASURED


def resolve(meta: dict, tflops: Optional[float] = None, gbps: Optional[float] = None) -> Ceilings:
    env = meta.get("environment") or {}
    recorded = meta.get("ceilings") or (env.get("gpu") or {}).get("ceilings") or {}

    def one(flag, flag_name, field, how):
        if flag is not None:
            return Ceiling(flag, f"{flag_name} flag")
        if recorded.get(field) is not None:
            return Ceiling(float(recorded[field]), f"measured: {how or recorded.get('source', 'run metadata')}")
        return None
    mnk, copy = recorded.get("gemm_mnk"), recorded.get("copy_bytes")
    return Ceilings(one(tflops, "--peak-tflops", "tflops", mnk and "x".join(map(str, mnk)) + " bf16 GEMM"),
                    one(gbps, "--peak-gbps", "gbps", copy and f"{copy / 2 ** 30:g} GiB device copy"))


def with_floors(rows: pd.DataFrame, ceilings: Ceilings) -> pd.DataFrame:
    """The rows with each phase's floor columns at these ceilings (the run's own, or the flags'), by the
    arithmetic the latency run wrote them with, from each row's counted bytes and FLOPs; and the
    median's 95% interval over the floor ({phase}_x_floor_lo, _hi)."""
    out = rows.copy()
    device = ceilings.device
    for phase, (unit, _) in PHASES.items():
        median = f"{phase}_{unit}"
        names = list(floor_columns(phase, None, None, None, None))
        cols = [floor_columns(phase, r.get(median), r.get(f"{phase}_bytes"), r.get(f"{phase}_flops"), device)
                for r in rows.to_dict("records")]
        out[names] = pd.DataFrame(cols, index=rows.index, columns=names)
        at = pd.to_numeric(out[f"{phase}_floor_{unit}"], errors="coerce")
        ci = schema.interval(median)
        for end, column in (("lo", ci.lo), ("hi", ci.hi)):
            out[f"{phase}_x_floor_{end}"] = out.get(column, np.nan) / at
    return out
