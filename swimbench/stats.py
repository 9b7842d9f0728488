"""The statistics of swimbench, in one module that every layer may import (numpy only: no torch, no
result files): what `swimbench latency` makes of a row's timing samples, and what `swimbench gate` and
`swimbench report` take as evidence that two measurements differ.

- a row's summary: median, p10, p90 and a 95% percentile-bootstrap interval of the median;
- an `Estimate`: a value with its interval and the samples behind it;
- evidence of a difference, either one enough: the two intervals do not overlap, or a Mann-Whitney U
  rank test on the raw samples rejects "no shift" at `alpha`.

The rank test is exact for small samples without ties (U's distribution under the null, counted), and
otherwise the normal approximation with the tie correction and a continuity correction, accurate for
the tens to thousands of samples a timing row holds. scipy checks both in the tests; it is not a
dependency.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Optional

import numpy as np

# Resamples drawn at once are capped so a long decode run (10^4 samples) stays within ~32 MB.
_CHUNK_ELEMENTS = 4_000_000

MIN_SAMPLES = 5                 # per side, for the rank test
EXACT_MAX_SAMPLES = 8           # U's exact distribution where a side has at most this many and
                                # nothing ties (scipy's rule); else the normal approximation
ALTERNATIVES = ("greater", "less", "two-sided")


# --- a row's summary -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Summary:
    n: int
    median: float
    p10: float
    p90: float
    ci_lo: float        # bootstrap interval of the median (percentile method)
    ci_hi: float
    mean: float
    std: float

    def as_dict(self, prefix: str = "") -> dict:
        return {prefix + k: v for k, v in asdict(self).items()}


def bootstrap_median_ci(samples, confidence: float = 0.95, resamples: int = 2000,
                        seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval of the median: resample with replacement `resamples` times.

    Deterministic for a given seed, so a rerun of the report on the same samples gives the same
    interval. With one sample the interval is that sample.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError("samples must be a non-empty 1-d sequence")
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must lie in (0, 1)")
    if x.size == 1:
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _CHUNK_ELEMENTS // x.size)
    medians = []
    left = resamples
    while left > 0:
        m = min(left, per_chunk)
        medians.append(np.median(x[rng.integers(0, x.size, size=(m, x.size))], axis=1))
        left -= m
    meds = np.concatenate(medians)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(meds, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def summarize(samples, confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> Summary:
    x = np.asarray(samples, dtype=np.float64)
    lo, hi = bootstrap_median_ci(x, confidence, resamples, seed)
    p10, med, p90 = np.percentile(x, [10, 50, 90])
    return Summary(int(x.size), float(med), float(p10), float(p90), lo, hi, float(x.mean()),
                   float(x.std(ddof=1)) if x.size > 1 else 0.0)


# --- estimates and evidence ------------------------------------------------------------------------
@dataclass(frozen=True)
class Estimate:
    """A measured value with its 95% interval and, where recorded, the samples it came from."""
    value: float
    lo: Optional[float] = None
    hi: Optional[float] = None
    samples: Optional[np.ndarray] = None
    # True when the interval spans the medians of repeated runs (`latency --repeats`) and the samples
    # are those medians: the spread between runs, not the noise within one
    between_runs: bool = False

    @property
    def spread(self) -> Optional[float]:
        """The interval's width over the value (None without an interval or a positive value)."""
        if not self.has_interval or not self.value > 0:
            return None
        return (self.hi - self.lo) / self.value

    @property
    def has_interval(self) -> bool:
        return not any(v is None or math.isnan(v) for v in (self.lo, self.hi))

    def scaled(self, factor: float) -> "Estimate":
        return Estimate(self.value * factor, None if self.lo is None else self.lo * factor,
                        None if self.hi is None else self.hi * factor,
                        None if self.samples is None else self.samples * factor, self.between_runs)


def average_ranks(x) -> np.ndarray:
    """Ranks from 1, ties sharing the average of the ranks they span."""
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="stable")
    xs = x[order]
    first = np.r_[True, xs[1:] != xs[:-1]]          # where each run of equal values starts
    starts = np.flatnonzero(first)
    counts = np.diff(np.r_[starts, x.size])
    ranks = np.empty(x.size)
    ranks[order] = np.repeat(starts + (counts + 1) / 2.0, counts)
    return ranks


def u_statistic(base, now) -> float:
    """Mann-Whitney U of `now`: the pairs (b, n) with n > b, ties counting one half."""
    b, n = np.asarray(base, dtype=float), np.asarray(now, dtype=float)
    ranks = average_ranks(np.concatenate([b, n]))
    return float(ranks[b.size:].sum() - n.size * (n.size + 1) / 2)


@lru_cache(maxsize=64)
def u_distribution(n1: int, n2: int) -> np.ndarray:
    """P(U = u), u = 0 .. n1 n2, for two samples of sizes n1 and n2 from one continuous distribution.
    The arrangements with U = u are counted by the coefficient of q^u in the Gaussian binomial
    [n1 + n2 choose m]_q, m the smaller size: the product over i = 1 .. m of
    (1 - q^(n + i)) / (1 - q^i), built one factor at a time (a shifted difference, then a running sum
    along each residue class mod i)."""
    m, n = sorted((n1, n2))
    size = m * n + 1
    c = np.zeros(size)
    c[0] = 1.0
    for i in range(1, m + 1):
        shift = n + i
        c[shift:] -= c[:size - shift].copy()
        pad = np.zeros(-size % i)
        c = np.concatenate([c, pad]).reshape(-1, i).cumsum(axis=0).ravel()[:size]
    c /= c.sum()
    c.flags.writeable = False                       # cached: shared by every caller
    return c


def rank_test(base, now, alternative: str = "greater") -> float:
    """p-value of the Mann-Whitney U test that `now` is shifted above (`greater`), below (`less`) or
    away from (`two-sided`) `base`: exact when nothing ties and a side has at most EXACT_MAX_SAMPLES,
    else the normal approximation with the tie and continuity corrections."""
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}")
    b, n = np.asarray(base, dtype=float), np.asarray(now, dtype=float)
    n1, n2 = b.size, n.size
    if min(n1, n2) < MIN_SAMPLES:
        raise ValueError(f"the rank test needs at least {MIN_SAMPLES} samples on each side")
    u = u_statistic(b, n)
    _, counts = np.unique(np.concatenate([b, n]), return_counts=True)
    if min(n1, n2) <= EXACT_MAX_SAMPLES and (counts == 1).all():
        return _exact_p(u_distribution(n1, n2), int(round(u)), alternative)
    total = n1 + n2
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


def _exact_p(pmf: np.ndarray, u: int, alternative: str) -> float:
    # Both tails summed from the low end (U is symmetric about n1 n2 / 2), where the counts were made
    # without cancellation: a small p-value keeps its relative precision.
    greater, less = float(pmf[:pmf.size - u].sum()), float(pmf[:u + 1].sum())
    if alternative == "greater":
        return min(1.0, greater)
    if alternative == "less":
        return min(1.0, less)
    return min(1.0, 2.0 * min(greater, less))


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
