"""Figures and a summary of an expert-parallel run (`swimbench ep`, docs/distributed.md), read from its
ep.csv (results/ep.py):

- ep_time_per_token: time per token of the whole world against the number of GPUs, prefill and decode,
  one colour per design (its colour in every figure), solid for experts sharded, dashed for replicated,
  a marker per expert count; flat lines mean the exchange costs nothing per token, rising ones that it
  costs more as the experts spread;
- ep_comm_share: the share of a step spent inside the collectives (exchange and waiting) against the
  number of GPUs, experts sharded only.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..results import ep as ep_table
from . import plotting

MARKERS = ("o", "s", "^", "D", "v", "P")
MODE_STYLES = {"expert": "-", "replicated": "--"}


def _by_point(df: pd.DataFrame):
    return df.groupby(["variant", "experts", "top_k", "mode"], sort=False)


def _marker(experts: int, all_experts: list[int]) -> str:
    return MARKERS[all_experts.index(experts) % len(MARKERS)]


def _figure(df: pd.DataFrame, y: str, ylabel: str, title: str, scale: float = 1.0, modes=("expert", "replicated")):
    slices = list(df.groupby(["seq", "batch"], sort=True))
    fig, (panels,) = plotting.grid(title, len(slices) * 2)
    every_e = sorted(df["experts"].unique())
    for i, ((seq, batch), sl) in enumerate(slices):
        for j, phase in enumerate(("prefill", "decode")):
            ax = panels[2 * i + j]
            rows = sl[(sl["phase"] == phase) & sl["mode"].isin(modes)]
            for (variant, E, k, mode), g in _by_point(rows):
                g = g.sort_values("world_size")
                ax.plot(g["world_size"], g[y] * scale, color=plotting.color(variant), ls=MODE_STYLES[mode],
                        marker=_marker(E, every_e), ms=5, lw=1.6,
                        label=f"{plotting.label(variant, k)} E={E}" + ("" if mode == "expert" else " replicated"))
            plotting.pow2_axis(ax, rows["world_size"] if len(rows) else [1], "GPUs (ranks)")
            plotting.y_axis(ax, rows[y] * scale)
            ax.set_ylabel(ylabel)
            ax.set_title(f"{phase}, {plotting.slice_title(seq, batch)} per GPU", fontsize=10)
    return plotting.finish(fig)


def figures(df: pd.DataFrame) -> list[tuple[str, object, str]]:
    return [
        ("ep_time_per_token", _figure(df, "us_per_token", "us per token (all GPUs)",
                                      "Expert parallelism: time per token against GPUs"),
         "Time of one step over the tokens all GPUs process in it (weak scaling: the batch is per GPU). "
         "Solid: experts sharded, tokens exchanged with all_to_all_single; dashed: every GPU holds every "
         "expert. Markers: expert counts."),
        ("ep_comm_share", _figure(df, "comm_share", "% of the step in collectives",
                                  "Expert parallelism: communication share", scale=100.0, modes=("expert",)),
         "Mean over ranks of the time inside the collectives (counts, tokens, results; waiting for the "
         "slowest rank included) over the step's time, experts sharded."),
    ]


def summary(df: pd.DataFrame) -> str:
    cols = ["variant", "experts", "top_k", "seq", "batch", "mode", "phase", "world_size", "step_ms",
            "us_per_token", "comm_ms", "comm_share", "clock"]
    table = df[cols].sort_values(["phase", "seq", "batch", "variant", "experts", "top_k", "mode", "world_size"])
    return table.to_markdown(index=False, floatfmt=".4g")


def render(run: Path, out: Path) -> list[Path]:
    """The figures (PNG and SVG) and ep.md of an expert-parallel run directory, into `out`."""
    df = ep_table.read(run)
    if df.empty:
        raise ValueError(f"{run} has no expert-parallel rows ({ep_table.TABLE})")
    paths, text = [], ["# Expert-parallel timing", "", f"Run: `{run}`. Definitions: docs/distributed.md.", ""]
    for name, fig, caption in figures(df):
        paths += plotting.save(fig, Path(out), name)
        text += [f"![{name}]({name}.png)", "", f"*{caption}*", ""]
    text += [summary(df), ""]
    md = Path(out) / "ep.md"
    md.write_text("\n".join(text))
    return [*paths, md]
