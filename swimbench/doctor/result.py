"""One check's outcome, as `swimbench doctor` prints it (a line) and writes it (JSON)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Iterable, Optional

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
STATUSES = (PASS, FAIL, SKIP)
NEEDS_GPU = "needs a CUDA GPU"
NAME_WIDTH = 30


@dataclass
class Result:
    status: str
    name: str
    detail: str
    seconds: Optional[float] = None
    data: dict = field(default_factory=dict)      # what --format json adds: numbers, the command run

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {self.status!r}")
        self.detail = " ".join(str(self.detail).split())     # one line, whatever an error message held

    def line(self) -> str:
        """`PASS  name  detail (1.2 s)`: the status, then the name, then the detail, two spaces apart."""
        took = f" ({self.seconds:.1f} s)" if self.seconds is not None else ""
        return f"{self.status}  {self.name:<{NAME_WIDTH}}  {self.detail}{took}".rstrip()

    def as_dict(self) -> dict:
        return _finite(asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> "Result":
        return cls(d["status"], d["name"], d["detail"], d.get("seconds"), d.get("data") or {})


def counts(results: Iterable[Result]) -> dict[str, int]:
    results = list(results)
    return {"passed": sum(r.status == PASS for r in results), "failed": sum(r.status == FAIL for r in results),
            "skipped": sum(r.status == SKIP for r in results)}


def closing_line(results: Iterable[Result]) -> str:
    c = counts(results)
    return f"{c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped"


def _finite(x):
    """JSON has no inf or NaN: they become None (the check's status says what happened)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x
