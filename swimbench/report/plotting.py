"""Matplotlib helpers the figures share: a colour per variant, a line style per top-k, powers of two on
log axes, one legend per figure, and saving as PNG and SVG. Figures are matplotlib.figure.Figure
objects made without pyplot, so nothing needs a display or keeps figures alive after saving."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import (EngFormatter, FuncFormatter, LogLocator, MaxNLocator, NullFormatter, NullLocator,
                               ScalarFormatter)

from .. import designs
from ..sweeps.spec import COMPARATOR

COMPARATOR_COLOR = "tab:green"
SPARE_COLORS = ("tab:pink", "tab:olive", "tab:cyan", "tab:red")    # variants no longer registered (old runs)
_SPARE: dict[str, str] = {}
K_STYLES = {1: ("-", "o"), 2: ("--", "s"), 4: (":", "^")}
REFERENCES = ("dense", COMPARATOR)            # drawn as horizontal lines against the expert axis
SLICE = ("seq", "batch", "layers")
MAX_COLUMNS = 4


def color(variant: str) -> str:
    """A fixed colour per variant, its design's, so that every figure of every report agrees."""
    if variant == COMPARATOR:
        return COMPARATOR_COLOR
    if variant in designs.names():
        return designs.get(variant).color
    return _SPARE.setdefault(variant, SPARE_COLORS[len(_SPARE) % len(SPARE_COLORS)])


def label(variant: str, top_k) -> str:
    name = designs.get(variant).label if variant in designs.names() else variant
    return name if variant in REFERENCES else f"{name} k={int(top_k)}"


def slice_title(seq=None, batch=None, layers=None) -> str:
    parts = [] if seq is None else [f"seq {int(seq):,}"]
    parts += [] if batch is None else [f"batch {int(batch)}"]
    parts += [] if layers is None else [f"{int(layers)} layer" + ("s" if layers != 1 else "")]
    return ", ".join(parts)


def grid(title: str, n_panels: int, n_metrics: int = 1, width: float = 5.0, height: float = 3.6):
    """A figure with one block of panels per metric (rows), each block wrapped at MAX_COLUMNS;
    returns (figure, axes[metric][panel])."""
    cols = min(n_panels, MAX_COLUMNS)
    block = math.ceil(n_panels / cols)
    # At least 8 inches wide, so that a lone panel still has room for the legend and the title.
    fig = Figure(figsize=(max(width * cols, 8.0), height * block * n_metrics + 0.9), layout="constrained",
                 dpi=110)
    fig.suptitle(title, fontsize=13, fontweight="bold")
    axes = fig.subplots(block * n_metrics, cols, squeeze=False)
    out = []
    for m in range(n_metrics):
        panels = [axes[m * block + i // cols][i % cols] for i in range(n_panels)]
        for i in range(n_panels, block * cols):
            axes[m * block + i // cols][i % cols].set_visible(False)
        out.append(panels)
    return fig, out


def lines(ax, df: pd.DataFrame, x: str, y: str, lo: Optional[str] = None, hi: Optional[str] = None,
          scale: float = 1.0) -> None:
    """One line per (variant, top_k), points marked, the 95% interval as error bars."""
    for (variant, k), g in df.groupby(["variant", "top_k"], sort=False):
        g = g.sort_values(x)
        style, marker = K_STYLES.get(int(k), ("-.", "D"))
        yerr = None
        if lo and hi and g[lo].notna().all():
            yerr = np.vstack([(g[y] - g[lo]) * scale, (g[hi] - g[y]) * scale])
        ax.errorbar(g[x], g[y] * scale, yerr=yerr, color=color(variant), ls=style, marker=marker,
                    ms=5, lw=1.6, capsize=3, label=label(variant, k))


# A floor is drawn thin and without markers in its design's colour, with a dash longer than top-k 2's.
FLOOR_STYLE = {"ls": (0, (7, 3)), "lw": 1.0, "alpha": 0.8}
FLOOR_LABEL = "floor (thin dashes, in each design's colour)"


def floors(ax, df: pd.DataFrame, x: str, y: str, legend: str = FLOOR_LABEL) -> None:
    """Each (variant, top_k)'s floor `y` against `x` where rows have one (or its roofline: the rate at
    its floor); one legend entry for all."""
    known = df[df[y].notna()]
    for (variant, _), g in known.groupby(["variant", "top_k"], sort=False):
        g = g.sort_values(x)
        ax.plot(g[x], g[y], color=color(variant), **FLOOR_STYLE)
    if not known.empty:
        ax.plot([], [], color="grey", label=legend, **FLOOR_STYLE)     # the legend's entry


def references(ax, df: pd.DataFrame, y: str, lo: Optional[str] = None, hi: Optional[str] = None,
               scale: float = 1.0) -> None:
    """Dense (and the mamba-ssm comparator) as horizontal lines, the interval as a band."""
    for variant in REFERENCES:
        r = df[df["variant"] == variant]
        if r.empty or pd.isna(r[y].iloc[0]):
            continue
        r = r.iloc[0]
        ax.axhline(r[y] * scale, color=color(variant), ls=(0, (6, 3)), lw=1.4,
                   label=f"{variant} (reference)")
        if lo and hi and not pd.isna(r[lo]):
            ax.axhspan(r[lo] * scale, r[hi] * scale, color=color(variant), alpha=0.12, lw=0)


def pow2_axis(ax, values, axis_label: str) -> None:
    """A log2 axis with a tick at each measured value, written as a plain number."""
    values = sorted({int(v) for v in values})
    ax.set_xscale("log", base=2)
    ax.set_xticks(values)
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel(axis_label)


# Labelled ticks of a log axis, coarsest first: decades, then 1-2-5, 1-2-3-5 and every integer times a
# power of ten, the first that labels the axis at least twice (an axis spanning less than a decade has
# one decade tick or none).
LOG_SUBS = ((1.0,), (1.0, 2.0, 5.0), (1.0, 2.0, 3.0, 5.0), tuple(float(i) for i in range(1, 10)))
MIN_LABELS = 2


class LogTicks(MaxNLocator):
    """The major ticks of a log axis, at least MIN_LABELS of them in the view: the coarsest of LOG_SUBS
    that gives them, else evenly spaced round values (an axis spanning less than 1.1 times)."""

    def __call__(self):
        lo, hi = self.axis.get_view_interval()
        return self.tick_values(lo, hi)

    def tick_values(self, vmin, vmax):
        lo, hi = sorted((float(vmin), float(vmax)))
        if not (hi > 0 and math.isfinite(hi)):
            return np.array([])
        lo = lo if lo > 0 else hi / 1e3
        decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
        for subs in LOG_SUBS:
            ticks = [m * 10.0 ** e for e in decades for m in subs]
            ticks = [t for t in ticks if lo <= t <= hi]
            if len(ticks) >= MIN_LABELS:
                return np.array(ticks)
        return np.array([t for t in MaxNLocator(4).tick_values(lo, hi) if lo <= t <= hi and t > 0])


def y_axis(ax, values, unit: Optional[str] = None, log: Optional[bool] = None, span: float = 5.0) -> None:
    """Scale and tick labels of a y axis. Log where asked, or by default where the values span more
    than `span` times (so that one variant far above the others does not flatten them, and ratios
    read as equal distances). `unit` labels ticks with SI prefixes (2 M tok/s); else plain numbers.
    A log axis is labelled at least twice however narrow its range (LogTicks); its minor ticks, at
    every integer times a power of ten, are unlabelled."""
    fmt = EngFormatter(unit=unit, sep=" ") if unit else FuncFormatter(lambda v, _: f"{v:g}")
    if log is None:
        v = pd.Series(values, dtype=float).dropna()
        v = v[v > 0]
        log = bool(len(v)) and v.max() / v.min() > span
    if not log:
        if unit:
            ax.yaxis.set_major_formatter(fmt)
        return
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogTicks())
    ax.yaxis.set_major_formatter(fmt)
    ax.yaxis.set_minor_locator(LogLocator(subs=tuple(range(1, 10))))
    ax.yaxis.set_minor_formatter(NullFormatter())


def finish(fig: Figure) -> Figure:
    """One legend for the whole figure, below it, each label once, in as many columns as fit."""
    seen = {}
    for ax in fig.axes:
        ax.grid(True, which="major", alpha=0.3)
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    if seen:
        # A legend entry at font size 9 takes about 0.07 in per character plus 0.7 in of handle.
        entry_in = 0.7 + 0.07 * max(len(lab) for lab in seen)
        ncols = max(1, min(len(seen), int(fig.get_figwidth() // entry_in)))
        fig.legend(list(seen.values()), list(seen), loc="outside lower center", ncols=ncols,
                   frameon=False, fontsize=9)
    return fig


def provenance(run) -> str:
    """What a figure's numbers were measured on, in one line: device, dtype(s), commit and run."""
    env = run.env
    git = env.get("git") or {}
    commit = str(git.get("commit") or "unknown")[:10] + (" (dirty)" if git.get("dirty") else "")
    dtypes = ", ".join(sorted({str(d) for d in run.rows.get("dtype", pd.Series(dtype=object)).dropna()})) \
        or "dtype unknown"
    return f"{run.machine} · {dtypes} · commit {commit} · run {run.name}"


def provenances(runs: dict) -> str:
    """The provenance of each of several runs drawn in one figure, a line each: {"A": run, ...}."""
    return "\n".join(f"{name}: {provenance(run)}" for name, run in runs.items())


def stamp(fig: Figure, text: str) -> Figure:
    """The figure's provenance at its foot, in the space the layout keeps for it: the title of the
    legend below the panels (`finish`), or the figure's x label where it has no legend."""
    if fig.legends:
        fig.legends[0].set_title(text, prop={"size": 7.5})
        fig.legends[0].get_title().set_color("0.35")
    else:
        fig.supxlabel(text, fontsize=7.5, color="0.35")
    return fig


def save(fig: Figure, folder: Path, name: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.png", folder / f"{name}.svg"]
    fig.savefig(paths[0], dpi=110)
    fig.set_layout_engine("none")         # laid out by the first save: the SVG keeps that layout
    fig.savefig(paths[1])
    return paths
