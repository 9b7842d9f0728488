"""Is a difference between two measurements real? Two kinds of evidence, either one enough:

- the 95% intervals of the two medians do not overlap (the intervals results.csv records);
- a Mann-Whitney U rank test on the raw samples (samples.jsonl) rejects "no shift" at `alpha`.

The rank test is written here with numpy and pandas (scipy is not a dependency): U from average ranks,
the normal approximation with the tie correction and a continuity correction, which is accurate for
the tens to thousands of samples a timing row holds (at least 5 per side is required).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd

MIN_SAMPLES = 5
ALTERNATIVES = ("greater", "less", "two-sided")


@dataclass(frozen=True)
class Estimate:
    """A measured value with its 95% interval and, where recorded, the samples it came from."""
    value: float
    lo: Optional[float] = None
    hi: Optional[float] = None
    samples: Optional[np.ndarray] = None

    @property
    def has_interval(self) -> bool:
        return not any(v is None or math.isnan(v) for v in (self.lo, self.hi))

    def scaled(self, factor: float) -> "Estimate":
        return Estimate(self.value * factor, None if self.lo is None else self.lo * factor,
                        None if self.hi is None else self.hi * factor,
                        None if self.samples is None else self.samples * factor)


def u_statistic(base, now) -> float:
    """Mann-Whitney U of `now`: the pairs (b, n) with n > b, ties counting one half."""
    b, n = np.asarray(base, dtype=float), np.asarray(now, dtype=float)
    ranks = pd.Series(np.concatenate([b, n])).rank(method="average").to_numpy()
    return float(ranks[b.size:].sum() - n.size * (n.size + 1) / 2)


def rank_test(base, now, alternative: str = "greater") -> float:
    """p-value of the Mann-Whitney U test that `now` is shifted above (`greater`), below (`less`) or
    away from (`two-sided`) `base`."""
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}")
    b, n = np.asarray(base, dtype=float), np.asarray(now, dtype=float)
    n1, n2 = b.size, n.size
    if min(n1, n2) < MIN_SAMPLES:
        raise ValueError(f"the rank test needs at least {MIN_SAMPLES} samples on each side")
    u = u_statistic(b, n)
    total = n1 + n2
    _, counts = np.unique(np.concatenate([b, n]), return_counts=True)
    ties = float((counts ** 3 - counts).sum())
    var = n1 * n2 / 12.0 * ((total + 1) - ties / (total * (total - 1)))
    if var <= 0:                                  # every sample equal: nothing tells them apart
        return 1.0
    d = u - n1 * n2 / 2.0

    def upper(x):                                 # P(Z >= x) with the continuity correction
        return 0.5 * math.erfc((x - 0.5) / math.sqrt(2.0 * var))
    if alternative == "greater":
        return upper(d)
    if alternative == "less":
        return upper(-d)
    return min(1.0, 2.0 * upper(abs(d)))


def disjoint(a: Estimate, b: Estimate) -> bool:
    """The two intervals do not overlap (False when either is missing)."""
    return a.has_interval and b.has_interval and (b.lo > a.hi or b.hi < a.lo)


@dataclass(frozen=True)
class Evidence:
    significant: bool
    how: str                    # in words, for tables: "intervals disjoint", "U p=0.003", ...
    p: Optional[float] = None


def evidence(base: Estimate, now: Estimate, alpha: float, alternative: str = "two-sided") -> Evidence:
    """Whether `now` differs from `base` (in the direction of `alternative`) beyond the noise."""
    direction_ok = {"greater": now.value > base.value, "less": now.value < base.value,
                    "two-sided": now.value != base.value}[alternative]
    p = None
    if (base.samples is not None and now.samples is not None
            and min(len(base.samples), len(now.samples)) >= MIN_SAMPLES):
        p = rank_test(base.samples, now.samples, alternative)
    parts = []
    apart = direction_ok and disjoint(base, now)
    if base.has_interval and now.has_interval:
        parts.append("intervals disjoint" if disjoint(base, now) else "intervals overlap")
    if p is not None:
        parts.append(f"U p={p:.2g}")
    significant = apart or (p is not None and p < alpha)
    return Evidence(significant, ", ".join(parts) or "no interval or samples", p)
