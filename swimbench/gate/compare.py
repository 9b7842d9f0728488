"""Verdicts of the gate: each metric of each configuration, baseline against now.

A timed metric (or a ratio to dense) regresses only when both hold: now/baseline is past the metric's
threshold, and the difference is beyond the noise (`statistics.evidence`). Past the threshold without
evidence it is "noise" and passes: a noisy machine does not fail the gate. A deterministic metric
(memory) regresses past its threshold; an exact one (a FLOP count) on any change.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Optional

import numpy as np

from ..stats import Estimate, evidence
from .metrics import Metric, Row, differences

STATUS = Metric("status", "status", "exact")       # verdicts about a whole configuration
FAILING = ("regressed", "changed", "failed")
PASSING = ("ok", "improved", "noise", "unjudged", "new", "not measured", "other config")


@dataclass(frozen=True)
class Verdict:
    key: str
    metric: Metric
    base: Optional[Estimate]
    now: Optional[Estimate]
    limit: Optional[float]
    verdict: str
    evidence: str = ""

    @property
    def ratio(self) -> Optional[float]:
        if self.base is None or self.now is None or self.base.value == 0:
            return None
        return self.now.value / self.base.value

    @property
    def failed(self) -> bool:
        return self.verdict in FAILING


def compare(base: Mapping[str, Row], now: Mapping[str, Row], metrics: Iterable[Metric],
            thresholds: Mapping[str, float], alpha: float, within_run: bool = True) -> list[Verdict]:
    """Every metric of every configuration. `within_run`: whether a timed metric without between-run
    spread may be judged on one run's samples (Baseline.within_run_evidence); if not, "unjudged"."""
    metrics = tuple(metrics)
    typical = {m.name: (typical_spread(base, m.name), typical_spread(now, m.name)) for m in metrics}
    out: list[Verdict] = []
    for key, b in base.items():
        n = now.get(key)
        if n is None:
            out.append(Verdict(key, STATUS, None, None, None, "not measured", "absent from the results"))
        elif b.status == "ok" and n.status != "ok":
            out.append(Verdict(key, STATUS, None, None, None, "failed", f"status {n.status}"))
        elif b.status != "ok" or b.config() != n.config():
            why = f"baseline status {b.status}" if b.status != "ok" else differences(b.config(), n.config())
            out.append(Verdict(key, STATUS, None, None, None, "other config", why))
        else:
            out += [_metric(key, m, b.values.get(m.name), n.values.get(m.name),
                            thresholds.get(m.name, m.threshold), alpha, typical[m.name], within_run)
                    for m in metrics if m.name in b.values]
    out += [Verdict(key, STATUS, None, None, None, "new", "not in the baseline") for key in now
            if key not in base]
    return out


def typical_spread(rows: Mapping[str, Row], metric: str) -> float:
    """The median, over a run's rows, of a metric's between-run spread: the machine's noise falls on
    every row alike, and three repeats of one row can happen to agree closely."""
    spreads = [e.spread for r in rows.values() for e in [r.values.get(metric)]
               if e is not None and e.between_runs and e.spread is not None]
    return float(np.median(spreads)) if spreads else 0.0


def between_runs_spread(b: Estimate, n: Estimate, typical: tuple[float, float] = (0.0, 0.0)) -> Optional[float]:
    """The relative spread of repeated runs' medians on both sides (each interval's width over its
    value, at least its run's typical one, summed), when both were measured with `latency --repeats`;
    else None."""
    if not (b.between_runs and n.between_runs) or b.spread is None or n.spread is None:
        return None
    return max(b.spread, typical[0]) + max(n.spread, typical[1])


def _metric(key: str, m: Metric, b: Estimate, n: Optional[Estimate], limit: float, alpha: float,
            typical: tuple[float, float] = (0.0, 0.0), within_run: bool = True) -> Verdict:
    if n is None:
        return Verdict(key, m, b, None, limit, "not measured", "missing from the results")
    if m.kind == "exact":
        return Verdict(key, m, b, n, None, "ok" if n.value == b.value else "changed", "exact")
    ratio = n.value / b.value if b.value else float("inf")
    if m.kind == "deterministic":
        verdict = "regressed" if ratio > limit else "improved" if ratio < 1 / limit else "ok"
        return Verdict(key, m, b, n, limit, verdict, "deterministic")
    spread = between_runs_spread(b, n, typical)
    if spread is not None and 1 + spread > limit:
        # the runs' medians spread wider than the threshold: a ratio inside that spread is what an
        # unchanged rerun gives, so it is noise however narrow each run's own interval
        if ratio > 1 + spread or ratio < 1 / (1 + spread):
            ev = evidence(b, n, alpha, "greater" if ratio > 1 else "less")
            verdict = ("regressed" if ratio > 1 else "improved") if ev.significant else "noise"
            return Verdict(key, m, b, n, limit, verdict, f"{ev.how}; runs spread {spread:.0%}")
        return Verdict(key, m, b, n, limit, "noise" if ratio > limit else "ok",
                       f"within the runs' spread ({spread:.0%})")
    if spread is None and not within_run and (ratio > limit or ratio < 1 / limit):
        # the samples of one process pin its median, not where a fresh process lands: on this device
        # that varies far more than the limit, so neither a regression nor an improvement can be told
        ev = evidence(b, n, alpha, "greater" if ratio > 1 else "less")
        return Verdict(key, m, b, n, limit, "unjudged",
                       f"no between-run spread (latency --repeats 3 on both); one run's: {ev.how}")
    if ratio > limit:
        ev = evidence(b, n, alpha, "greater")
        return Verdict(key, m, b, n, limit, "regressed" if ev.significant else "noise", ev.how)
    if ratio < 1 / limit:
        ev = evidence(b, n, alpha, "less")
        return Verdict(key, m, b, n, limit, "improved" if ev.significant else "ok", ev.how)
    return Verdict(key, m, b, n, limit, "ok", "within the limit")
