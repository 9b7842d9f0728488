"""The device ceilings the achieved TFLOP/s and bandwidth are drawn against, and where they came from.

In order: a flag (--peak-tflops, --peak-gbps); the run's metadata, where the latency run recorded
measured ceilings as {"ceilings": {"tflops": ..., "gbps": ..., "source": "..."}} (top level or under
environment.gpu); on an H100 only, the defaults below, which the figure labels as not measured.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

# An H100 SXM (80 GB HBM3) as we have seen it: ~3.0 TB/s on a device-to-device copy, ~790 TFLOP/s on
# a large bf16 dense GEMM (the datasheet's 989 is not reached in practice).
H100_TFLOPS, H100_GBPS = 790.0, 3000.0


@dataclass(frozen=True)
class Ceiling:
    value: float
    source: str


@dataclass(frozen=True)
class Ceilings:
    tflops: Optional[Ceiling]
    gbps: Optional[Ceiling]


def resolve(meta: dict, gpu: Optional[str], tflops: Optional[float] = None,
            gbps: Optional[float] = None) -> Ceilings:
    env = meta.get("environment") or {}
    recorded = meta.get("ceilings") or (env.get("gpu") or {}).get("ceilings") or {}
    h100 = gpu is not None and "H100" in gpu

    def one(flag, flag_name, field, default, what):
        if flag is not None:
            return Ceiling(flag, f"{flag_name} flag")
        if recorded.get(field) is not None:
            return Ceiling(float(recorded[field]), f"measured: {recorded.get('source', 'run metadata')}")
        if h100:
            return Ceiling(default, f"H100 default, not measured ({what})")
        return None
    return Ceilings(one(tflops, "--peak-tflops", "tflops", H100_TFLOPS, "bf16 dense GEMM"),
                    one(gbps, "--peak-gbps", "gbps", H100_GBPS, "device copy"))
