"""Summaries of timing samples: median, p10, p90 and a bootstrap confidence interval of the median."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# Resamples drawn at once are capped so a long decode run (10^4 samples) stays within ~32 MB.
_CHUNK_ELEMENTS = 4_000_000


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
