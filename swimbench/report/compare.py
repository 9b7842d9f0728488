"""Two runs side by side: every metric of every configuration they share, the ratio run B / run A,
and whether the difference is significant (intervals apart, or the rank test on the raw samples)."""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ..gate.metrics import COMPARED, DECODE, PREFILL, differences, run_rows
from ..stats import evidence

ALPHA = 0.05
CHARTED = (PREFILL, DECODE)


def comparison(a, b, alpha: float = ALPHA) -> pd.DataFrame:
    """One row per (configuration, metric) measured in both runs (`swimbench.results.reader.Run`)."""
    ra, rb = run_rows(a, COMPARED), run_rows(b, COMPARED)
    recs = []
    for m in COMPARED:
        for key, x in ra.items():
            y = rb.get(key)
            ea, eb = x.values.get(m.name), None if y is None else y.values.get(m.name)
            if ea is None or eb is None or ea.value == 0:
                continue
            both = ea.has_interval and eb.has_interval and ea.lo > 0
            if m.kind in ("timed", "ratio"):
                ev = evidence(ea, eb, alpha, "two-sided")
                significant, how = ("yes" if ev.significant else "no"), ev.how
            else:
                significant, how = "n/a", "one value, no interval"
            recs.append({"configuration": key, "metric": m.label, "A": ea.value, "B": eb.value,
                         "B / A": eb.value / ea.value,
                         "ratio lo": eb.lo / ea.hi if both else math.nan,
                         "ratio hi": eb.hi / ea.lo if both else math.nan,
                         "significant": significant, "evidence": how,
                         "set up differently": differences(x.config(), y.config())})
    return pd.DataFrame(recs, columns=["configuration", "metric", "A", "B", "B / A", "ratio lo", "ratio hi",
                                       "significant", "evidence", "set up differently"])


def set_up_differently(df: pd.DataFrame) -> dict[str, int]:
    """How many configurations each set-up difference covers: their ratios include that change."""
    per = df.drop_duplicates("configuration")["set up differently"]
    return {d: int(n) for d, n in per[per != ""].value_counts().items()}


def headline(df: pd.DataFrame) -> pd.DataFrame:
    """Per metric: configurations compared, significantly slower or faster, geometric mean of B / A."""
    out = []
    for metric, g in df.groupby("metric", sort=False):
        sig = g["significant"] == "yes"
        out.append({"metric": metric, "configurations": len(g),
                    "B higher (significant)": int((sig & (g["B / A"] > 1)).sum()),
                    "B lower (significant)": int((sig & (g["B / A"] < 1)).sum()),
                    "geometric mean B / A": float(np.exp(np.log(g["B / A"]).mean()))})
    return pd.DataFrame(out)


def figure(df: pd.DataFrame, a_name: str, b_name: str) -> Optional[Figure]:
    """B / A per configuration for prefill and decode time, with the ratio's interval; red: B
    significantly slower, green: significantly faster, grey: within the noise."""
    panels = [(m, df[df["metric"] == m.label]) for m in CHARTED]
    panels = [(m, g) for m, g in panels if not g.empty]
    if not panels:
        return None
    n = max(len(g) for _, g in panels)
    fig = Figure(figsize=(6 * len(panels), 1.6 + 0.3 * n), layout="constrained", dpi=110)
    fig.suptitle(f"{b_name} (B) vs {a_name} (A): time ratio B / A", fontsize=12, fontweight="bold")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (m, g) in zip(axes, panels):
        g = g.iloc[::-1]
        colors = ["tab:red" if s == "yes" and r > 1 else "tab:green" if s == "yes" else "0.6"
                  for s, r in zip(g["significant"], g["B / A"])]
        y = np.arange(len(g))
        err = np.vstack([(g["B / A"] - g["ratio lo"]).clip(lower=0),
                         (g["ratio hi"] - g["B / A"]).clip(lower=0)])
        ax.barh(y, g["B / A"] - 1, left=1, color=colors, height=0.7,
                xerr=None if np.isnan(err).all() else np.nan_to_num(err), capsize=2)
        ax.axvline(1, color="black", lw=1)
        ax.set_yticks(y, g["configuration"], fontsize=8)
        ax.set_xlabel(f"{m.label.split(' (')[0]} time, B / A (1 = equal; >1 B slower)")
        ax.set_title(m.label.split(" (")[0], fontsize=10)
        ax.grid(True, axis="x", alpha=0.3)
    keys = [Patch(color=c, label=t) for c, t in (("tab:red", "B significantly slower"),
                                                 ("tab:green", "B significantly faster"),
                                                 ("0.6", "within the noise"))]
    fig.legend(handles=keys, loc="outside lower center", ncols=3, frameon=False, fontsize=9)
    return fig
