"""The figures of a run, each with the table of what it draws, or the reason it was skipped.

Every builder takes a `swimbench.results.reader.Run` (and the ceilings) and returns a `Drawn`; none
fails on missing data: a figure whose data the run lacks (energy on a CPU, a batch sweep of one value)
is skipped with why.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import pandas as pd
from matplotlib.figure import Figure

from ..results import schema
from ..sweeps.spec import COMPARATOR
from . import plotting as P
from .ceilings import NOT_MEASURED, Ceiling, Ceilings, with_floors

MOE_EXCLUDED = ("dense", COMPARATOR)
PREFILL_CI, DECODE_CI = schema.interval("prefill_ms"), schema.interval("decode_us")


def _with_ci(ci: schema.Interval) -> tuple:
    """A panel's column and its interval's columns."""
    return ci.of, ci.lo, ci.hi


@dataclass
class Drawn:
    name: str                               # file stem
    title: str
    caption: str = ""
    data: pd.DataFrame = field(default_factory=pd.DataFrame)
    fig: Optional[Figure] = None
    skipped: Optional[str] = None
    files: list = field(default_factory=list)   # where it was saved (PNG, SVG)


def _moe(df: pd.DataFrame) -> pd.DataFrame:
    return df[~df["variant"].isin(MOE_EXCLUDED)]


def _table(df: pd.DataFrame, columns: dict) -> pd.DataFrame:
    """The drawn rows with readable headers: {header: column name or function of the frame}."""
    out = pd.DataFrame(index=df.index)
    for header, col in columns.items():
        out[header] = col(df) if callable(col) else df[col]
    return out.reset_index(drop=True)


IDENT = {"variant": "variant", "E": "experts", "k": "top_k", "seq": "seq", "batch": "batch",
         "layers": "layers"}


def _mode_caption(df: pd.DataFrame, phase: str) -> str:
    """How the phase was timed, from its {phase}_mode column."""
    modes = set(df[f"{phase}_mode"].dropna()) - {""}
    what = "Forwards" if phase == "prefill" else "Decode steps"
    if modes == {"graph"}:
        return f"{what} replayed from a CUDA graph: the GPU's work, without Python's launches."
    if modes == {"eager"} and phase == "decode":
        return "Decode steps timed eagerly: these include Python's launches and say little about the design."
    if modes == {"eager"}:
        return ("Forwards timed eagerly: where launching one takes the host as long as the GPU's work "
                "(launch ms in the prefill table), the numbers measure Python, not the design.")
    return f"{what}: timing modes {', '.join(sorted(modes))}."


def _vs_experts(run, name: str, title: str, panels: list[tuple], caption: str, table: dict,
                by=P.SLICE, rows: Optional[pd.DataFrame] = None,
                after: Optional[Callable] = None) -> Drawn:
    """Metrics (rows of panels) against the number of experts, one column of panels per slice `by`;
    MoE variants as lines, dense and the comparator as horizontal reference lines.
    panels: (column, ci_lo, ci_hi, y label, scale, per-second unit or None); table: the columns of
    the data table (see _table); after(ax, column, slice rows) adds to a finished panel."""
    ok = run.ok if rows is None else rows
    ok = ok[ok[panels[0][0]].notna()]
    if _moe(ok).empty:
        return Drawn(name, title, skipped="no mixture-of-experts rows with these measurements")
    slices = list(ok.groupby(list(by), sort=True))
    fig, axes = P.grid(title, len(slices), len(panels))
    for j, (values, sl) in enumerate(slices):
        for i, (col, lo, hi, ylabel, scale, unit) in enumerate(panels):
            ax = axes[i][j]
            P.lines(ax, _moe(sl), "experts", col, lo, hi, scale)
            P.references(ax, sl, col, lo, hi, scale)
            P.y_axis(ax, ok[col] * scale, unit)
            P.pow2_axis(ax, _moe(ok)["experts"], "experts E")
            ax.set_ylabel(ylabel)
            ax.set_title(P.slice_title(**dict(zip(by, values))), fontsize=10)
            if after is not None:
                after(ax, col, sl)
    return Drawn(name, title, caption, data=_table(ok, {**IDENT, **table}), fig=P.finish(fig))


def prefill_vs_experts(run, ceilings: Ceilings) -> Drawn:
    ok = run.ok.copy()
    tokens = ok["seq"] * ok["batch"]
    ok["tps_lo"], ok["tps_hi"] = tokens / ok[PREFILL_CI.hi] * 1e3, tokens / ok[PREFILL_CI.lo] * 1e3
    return _vs_experts(run, "prefill_vs_experts", "Prefill: latency and throughput vs number of experts",
                       [(*_with_ci(PREFILL_CI), "prefill latency (ms)", 1, None),
                        ("prefill_tokens_per_s", "tps_lo", "tps_hi", "throughput (tokens/s)", 1, "tok/s")],
                       "One forward over (batch, seq); median with its 95% bootstrap interval (error bars; "
                       "band on the reference lines). All variants FLOP-matched to dense. "
                       + _mode_caption(ok, "prefill"),
                       {"mode": "prefill_mode", "median ms": "prefill_ms", "CI lo ms": PREFILL_CI.lo,
                        "CI hi ms": PREFILL_CI.hi, "samples": "prefill_samples",
                        "launch ms": lambda d: d.get("prefill_launch_ms"),
                        "tokens/s": "prefill_tokens_per_s"}, rows=ok)


def decode_vs_experts(run, ceilings: Ceilings) -> Drawn:
    ok = run.ok[run.ok["decode_us"].notna()]
    ok = ok.sort_values("seq").drop_duplicates(["variant", "experts", "top_k", "batch", "layers"])
    return _vs_experts(run, "decode_vs_experts", "Decode: latency per token step vs number of experts",
                       [(*_with_ci(DECODE_CI), "decode latency (µs per step)", 1, None)],
                       "One decode step (one new token per sequence) with its cache; median and 95% "
                       "interval. Decode does not depend on the prefill length: rows of the shortest seq are "
                       "shown. " + _mode_caption(ok, "decode"),
                       {"mode": "decode_mode", "median µs": "decode_us", "CI lo µs": DECODE_CI.lo,
                        "CI hi µs": DECODE_CI.hi, "tokens/s": "decode_tokens_per_s"},
                       by=("batch", "layers"), rows=ok)


def _vs_axis(run, name: str, title: str, x: str, xlabel: str, panels: list[tuple], fixed: tuple,
             caption: str, rows: Optional[pd.DataFrame] = None, floors: Optional[dict] = None) -> Drawn:
    """Metrics against `x` (batch or seq), one column of panels per expert count; every variant a
    line, dense in each panel; the axes in `fixed` held at their smallest value. floors: {a panel's
    column: (its floor's column, the floor's header in the table)}, drawn where rows have one."""
    floors = floors or {}
    ok = run.ok if rows is None else rows
    ok = ok[ok[panels[0][0]].notna()]
    if ok[x].nunique() < 2:
        got = ", ".join(map(str, sorted(ok[x].unique()))) or "none"
        return Drawn(name, title, skipped=f"the run measured one {x} ({got}); sweep several to draw it")
    held = {f: ok[f].min() for f in fixed}
    for f, v in held.items():
        ok = ok[ok[f] == v]
    refs = ok[ok["variant"].isin(MOE_EXCLUDED)]
    experts = sorted(_moe(ok)["experts"].unique()) or [1]
    fig, axes = P.grid(f"{title} ({P.slice_title(**held)})", len(experts), len(panels))
    shown = []
    for j, E in enumerate(experts):
        sl = pd.concat([refs, _moe(ok)[_moe(ok)["experts"] == E]])
        shown.append(sl)
        for i, (col, lo, hi, ylabel, unit) in enumerate(panels):
            ax = axes[i][j]
            P.lines(ax, sl, x, col, lo, hi)
            floor = floors.get(col, (None,))[0]
            if floor is not None:
                P.floors(ax, sl, x, floor)
            P.y_axis(ax, pd.concat([ok[col], ok[floor]]) if floor else ok[col], unit)
            P.pow2_axis(ax, ok[x], xlabel)
            ax.set_ylabel(ylabel)
            ax.set_title(f"E = {E} experts" if len(_moe(ok)) else "dense", fontsize=10)
    data = pd.concat(shown).drop_duplicates("key").sort_values(["variant", "experts", "top_k", x])
    d = Drawn(name, title, caption, fig=P.finish(fig))
    d.data = _table(data, {**IDENT, **{p[3]: p[0] for p in panels},
                           **{header: floor for floor, header in floors.values()}})
    return d


def decode_vs_batch(run, ceilings: Ceilings) -> Drawn:
    # Each design's floor beside its time, at the resolved ceilings as in the x-floor figure.
    if ceilings.device is None:
        ok, floors, floor = run.ok, None, f"No floors drawn: {NOT_MEASURED}."
    else:
        ok = with_floors(run.ok, ceilings)
        floors = {"decode_us": ("decode_floor_us", "decode floor (µs per step)")}
        floor = ("Thin dashed lines: each design's floor, the least time its counted bytes take at the copy "
                 "bandwidth or its FLOPs at the bf16 GEMM rate, whichever is longer; the gap to its line "
                 f"is what the step loses. Ceilings: {ceilings.sources()}.")
        if ok["decode_floor_us"].isna().all():
            floors, floor = None, "No floors drawn: no row has counted bytes or FLOPs."
    return _vs_axis(run, "decode_vs_batch", "Decode vs batch", "batch", "batch (sequences)",
                    [(*_with_ci(DECODE_CI), "decode latency (µs per step)", None),
                     ("decode_tokens_per_s", None, None, "decode throughput (tokens/s)", "tok/s")],
                    ("seq", "layers"), "Latency of one decode step and the tokens per second it gives "
                    "at each batch; median and 95% interval. " + _mode_caption(run.ok, "decode") + " " + floor,
                    rows=ok, floors=floors)


def throughput_vs_seq(run, ceilings: Ceilings) -> Drawn:
    return _vs_axis(run, "throughput_vs_seq", "Prefill throughput vs sequence length", "seq",
                    "sequence length (tokens)",
                    [("prefill_tokens_per_s", None, None, "prefill throughput (tokens/s)", "tok/s")],
                    ("batch", "layers"), "Tokens per second of one forward over (batch, seq), from "
                    "the median latency. " + _mode_caption(run.ok, "prefill"))


def energy_vs_experts(run, ceilings: Ceilings) -> Drawn:
    name, title = "energy_vs_experts", "Energy per token vs number of experts"
    ok = run.ok.copy()
    if ok["prefill_j_per_token"].isna().all() and ok["decode_j_per_token"].isna().all():
        why = next((n for n in run.notes() if "energy" in n), "the results have no energy columns")
        return Drawn(name, title, skipped=f"no energy measured: {why}")
    for phase in ("prefill", "decode"):
        ok[f"{phase}_mj"] = ok[f"{phase}_j_per_token"] * 1e3
    sources = ", ".join(sorted(set(ok["energy_source"].dropna()))) or "unknown"
    return _vs_experts(run, name, title,
                       [("prefill_mj", None, None, "prefill energy (mJ/token)", 1, None),
                        ("decode_mj", None, None, "decode energy (mJ/token)", 1, None)],
                       f"Joules per token over a window of at least one second of back-to-back calls; "
                       f"source: {sources}.",
                       {"prefill mJ/token": "prefill_mj", "prefill W": "prefill_mean_w",
                        "decode mJ/token": "decode_mj", "decode W": "decode_mean_w", "source": "energy_source"},
                       rows=ok)


def power_trace(run, ceilings: Ceilings) -> Drawn:
    name, title = "power_trace", "GPU power over the run"
    trace = run.power()
    if trace is None:
        why = next((n for n in run.notes() if "energy" in n), "no NVML on this run")
        return Drawn(name, title, skipped=f"no power trace ({why})")
    t = trace["unix_time"] - trace["unix_time"].iloc[0]
    dt = t.diff().fillna(0)
    # A resumed run's trace has a gap where no process sampled: leave it blank, count no time in it.
    gap = dt > max(2.0, 50 * float(dt[dt > 0].median() if (dt > 0).any() else 0))
    dt = dt.where(~gap, 0)
    label = trace["label"].fillna("idle").astype(str)
    variant = label.str.split("/").str[0]
    phase = label.str.rsplit("/", n=1).str[-1].where(label != "idle", "idle")
    fig = Figure(figsize=(12, 4.2), layout="constrained", dpi=110)
    fig.suptitle(title, fontsize=13, fontweight="bold")
    ax = fig.subplots()
    # Shade what ran: one span per stretch of samples with the same label.
    starts = (label != label.shift()).to_numpy().nonzero()[0].tolist() + [len(label)]
    for a, b in zip(starts, starts[1:]):
        if label.iloc[a] != "idle":
            ax.axvspan(t.iloc[a], t.iloc[min(b, len(t) - 1)], color=P.color(variant.iloc[a]), alpha=0.15,
                       lw=0, label=f"{variant.iloc[a]} running")
    ax.plot(t, trace["power_w"].mask(gap), color="black", lw=1.0, label="power (NVML, 1 s average)")
    if "instant_w" in trace and trace["instant_w"].notna().any():
        ax.plot(t, trace["instant_w"].mask(gap), color="tab:red", lw=0.6, alpha=0.7,
                label="power (NVML instant)")
    ax.set_xlabel("time since the first sample (s)")
    ax.set_ylabel("power (W)")
    ax.set_ylim(bottom=0)
    summary = (pd.DataFrame({"variant": variant, "phase": phase, "dt": dt,
                             "power_w": trace["power_w"]})
               .groupby(["variant", "phase"], sort=False)
               .agg(samples=("power_w", "size"), seconds=("dt", "sum"), mean_W=("power_w", "mean"),
                    max_W=("power_w", "max"))
               .reset_index())
    return Drawn(name, title, "Power sampled by a background thread while the run measured; shaded: "
                 "what was running; blank: no process sampling (between the attempts of a resumed run). The 1 s "
                 "average lags changes of load. Table: per variant and phase.",
                 data=summary, fig=P.finish(fig))


def _ceiling_line(ax, c: Optional[Ceiling], unit: str) -> str:
    """The ceiling as a red line, its value and where it came from written on it; without one, what
    the panel's title should add (in the title, where it cannot cover data)."""
    if c is None:
        return " (no ceiling: not measured)"
    ax.axhline(c.value, color="tab:red", lw=1.6, label="device ceiling")
    ax.set_ylim(top=c.value * 3)
    # out of the layout: a long source must not squeeze the panel, it is cut at the panel's edge
    ax.text(0.02, c.value * 1.12, f"{c.value:,.0f} {unit}: {c.source}", transform=ax.get_yaxis_transform(),
            fontsize=8, va="bottom", color="tab:red", clip_on=True, in_layout=False)
    return ""


ROOF_LABEL = "roofline (thin dashes, in each design's colour)"


def achieved_vs_ceilings(run, ceilings: Ceilings) -> Drawn:
    name, title = "achieved_vs_ceilings", "Achieved TFLOP/s and bandwidth vs the device's ceilings"
    ok = run.ok[run.ok["prefill_tflops"].notna()]
    if _moe(ok).empty:
        return Drawn(name, title, skipped="no mixture-of-experts rows measured")
    # One slice: the one with most rows (ties: the longest seq), which is the paper's comparison.
    sizes = ok.groupby(list(P.SLICE)).size().reset_index(name="n").sort_values(["n", "seq"])
    pick = dict(zip(P.SLICE, sizes.iloc[-1][list(P.SLICE)]))
    sl = ok[(ok[list(P.SLICE)] == pd.Series(pick)).all(axis=1)]
    roofs = []
    if ceilings.device is not None:
        # each row's roofline: the rate it would reach at its floor (its time over the floor, times
        # what it achieved), the lower of the two ceilings at its arithmetic intensity
        sl = with_floors(sl, ceilings)
        for phase in ("prefill", "decode"):
            for rate in ("tflops", "gbps"):
                sl[f"{phase}_{rate}_roof"] = sl[f"{phase}_{rate}"] * sl[f"{phase}_x_floor"]
                roofs.append(f"{phase}_{rate}_roof")
    fig, axes = P.grid(f"{title} ({P.slice_title(**pick)})", 2, 2)
    for i, phase in enumerate(("prefill", "decode")):
        for j, (col, unit, c) in enumerate(((f"{phase}_tflops", "TFLOP/s", ceilings.tflops),
                                            (f"{phase}_gbps", "GB/s", ceilings.gbps))):
            ax = axes[j][i]
            P.y_axis(ax, pd.concat([sl[col], sl.get(f"{col}_roof", pd.Series(dtype=float))]), log=True)
            P.lines(ax, _moe(sl), "experts", col)
            P.references(ax, sl, col)
            if f"{col}_roof" in sl:
                P.floors(ax, _moe(sl), "experts", f"{col}_roof", ROOF_LABEL)
            missing = _ceiling_line(ax, c, unit)
            P.pow2_axis(ax, _moe(sl)["experts"], "experts E")
            ax.set_ylabel(f"achieved {unit}")
            ax.set_title(f"{phase}: {'compute' if j == 0 else 'memory traffic'}{missing}", fontsize=10)
    frac = {}
    for col, c in (("prefill_tflops", ceilings.tflops), ("decode_tflops", ceilings.tflops),
                   ("prefill_gbps", ceilings.gbps), ("decode_gbps", ceilings.gbps)):
        frac[col] = col
        if c is not None:
            frac[f"{col} % of ceiling"] = (lambda df, col=col, v=c.value: df[col] / v * 100)
        if f"{col}_roof" in sl:
            frac[f"{col} roofline"] = f"{col}_roof"
    data = _table(sl, {**IDENT, **frac})
    caption = ("FLOPs from the analytic count; bytes are the fewest a call must move (weights once, "
               "input and output once, the decode cache read and written). Red: the device's measured "
               "ceilings; thin dashes: each design's roofline, the rate it would reach at its floor (the "
               "lower of the GEMM rate and the copy bandwidth at its FLOPs per byte), where a row counted "
               f"both. Ceilings: {ceilings.sources()}.")
    return Drawn(name, title, caption, data=data, fig=P.finish(fig))


def _bounds(rows: pd.DataFrame, column: str) -> str:
    """Which term bounds the floors of these rows, e.g. "memory" or "memory (6 rows), compute (2)"."""
    counts = rows[column].dropna().value_counts()
    if len(counts) == 1:
        return str(counts.index[0])
    return ", ".join(f"{b} ({n}{' rows' if i == 0 else ''})" for i, (b, n) in enumerate(counts.items()))


def _floor_mark(ax, col: str, sl: pd.DataFrame) -> None:
    """The floor itself (x = 1), and the term that bounds it in the panel's title. The axis is
    logarithmic from the floor up: distances read as ratios, however far above it the rows are."""
    P.y_axis(ax, [1.0, *sl[col].dropna()], log=True)
    ax.axhline(1.0, color="tab:red", lw=1.6, label="floor (x = 1)")
    bound = _bounds(sl[sl[col].notna()], col.replace("_x_floor", "_floor_bound"))
    ax.set_title(f"{ax.get_title()}\n{col.split('_')[0]} floor bound by {bound}", fontsize=10)


def x_floor(run, ceilings: Ceilings) -> Drawn:
    name, title = "x_floor", "Time over the floor vs number of experts"
    if ceilings.device is None:
        return Drawn(name, title, skipped=f"no device ceilings: {NOT_MEASURED}")
    ok = with_floors(run.ok, ceilings)
    if ok["prefill_x_floor"].isna().all():
        return Drawn(name, title, skipped="no row has counted bytes or FLOPs to put a floor under")
    one = ceilings.tflops is None or ceilings.gbps is None
    return _vs_experts(run, name, title,
                       [("prefill_x_floor", "prefill_x_floor_lo", "prefill_x_floor_hi",
                         "prefill time / floor (x)", 1, None),
                        ("decode_x_floor", "decode_x_floor_lo", "decode_x_floor_hi",
                         "decode time / floor (x)", 1, None)],
                       "The median time of a call over its floor: the least time its counted bytes (the "
                       "fewest it must move) take at the copy bandwidth, or its analytic FLOPs at the bf16 "
                       "dense GEMM rate, whichever is longer; the panel titles say which bounds it. Error "
                       "bars: the median's 95% interval over the floor. The scan's FLOPs run on CUDA cores "
                       "and the special-function units, not tensor cores, so a scan-heavy row's true floor "
                       "is higher than this one. " + ("Only one ceiling is known, so the floor has one term. "
                                                     if one else "") + f"Ceilings: {ceilings.sources()}.",
                       {"prefill floor ms": "prefill_floor_ms", "prefill x floor": "prefill_x_floor",
                        "prefill bound": "prefill_floor_bound", "decode floor µs": "decode_floor_us",
                        "decode x floor": "decode_x_floor", "decode bound": "decode_floor_bound"},
                       rows=ok, after=_floor_mark)


FIGURES: tuple[Callable, ...] = (prefill_vs_experts, decode_vs_experts, decode_vs_batch, throughput_vs_seq,
                                 energy_vs_experts, power_trace, achieved_vs_ceilings, x_floor)


# --- generate runs (swimbench generate: whole models; docs/generate.md) -----------------------------------
TTFT_CI, TOKEN_CI = schema.interval("ttft_ms"), schema.interval("token_ms")
GEN_IDENT = {"model": "model", **IDENT, "new tokens": "new_tokens"}


def _gen_caption(run) -> str:
    modes = set(run.ok["decode_mode"].dropna())
    how = ("each decode step the whole model's, greedy choice included, replayed from one CUDA graph"
           if modes == {"graph"} else "decode steps run eagerly: they include Python's launches")
    return (f"Whole models generating greedily from random prompts; {how}; mamba-ssm's MambaLMHeadModel "
            "through its own generate(cg=True). Every design FLOP-matched to dense block by block.")


def tokens_per_s_vs_batch(run, ceilings: Ceilings) -> Drawn:
    ok = run.ok[run.ok["gen_tokens_per_s"].notna()].copy()
    ok["tps_lo"], ok["tps_hi"] = ok["batch"] / ok[TOKEN_CI.hi] * 1e3, ok["batch"] / ok[TOKEN_CI.lo] * 1e3
    d = _vs_axis(run, "tokens_per_s_vs_batch", "Generation: tokens/s vs batch", "batch", "batch (sequences)",
                 [("gen_tokens_per_s", "tps_lo", "tps_hi", "generated tokens/s", "tok/s")], ("seq", "layers"),
                 "Tokens per second while generating: the batch over the median per-token latency (error bars "
                 "from its 95% interval). " + _gen_caption(run), rows=ok)
    return d


def ttft_vs_prompt(run, ceilings: Ceilings) -> Drawn:
    ok = run.ok[run.ok["ttft_ms"].notna()]
    return _vs_axis(run, "ttft_vs_prompt", "Generation: time to first token vs prompt length", "seq",
                    "prompt length (tokens)", [(*_with_ci(TTFT_CI), "time to first token (ms)", None)],
                    ("batch", "layers"), "The prompt's prefill through every block, the last position's "
                    "logits and its greedy token, timed eagerly as a user waits for it; median and 95% "
                    "interval. " + _gen_caption(run), rows=ok)


def token_latency_vs_experts(run, ceilings: Ceilings) -> Drawn:
    ok = run.ok[run.ok["token_ms"].notna()]
    return _vs_experts(run, "token_latency_vs_experts", "Generation: per-token latency vs number of experts",
                       [(*_with_ci(TOKEN_CI), "per-token latency (ms)", 1, None)],
                       "The median decode step of the whole model over every generated token, with its 95% "
                       "interval; p10 and p90 in the table. Dense and mamba-ssm as reference lines. "
                       + _gen_caption(run),
                       {**{k: v for k, v in GEN_IDENT.items() if k not in IDENT}, "median ms": "token_ms",
                        "p10 ms": "token_ms_p10", "p90 ms": "token_ms_p90", "TTFT ms": "ttft_ms",
                        "tokens/s": "gen_tokens_per_s", "mJ/token": lambda d: d["gen_j_per_token"] * 1e3,
                        "peak MiB": "gen_peak_mib", "scan": "scan_impl"},
                       by=("seq", "batch", "layers"), rows=ok)


GENERATE_FIGURES: tuple[Callable, ...] = (tokens_per_s_vs_batch, ttft_vs_prompt, token_latency_vs_experts,
                                          power_trace)


def figures_for(run) -> tuple[Callable, ...]:
    """A generate run's figures, or a latency run's."""
    return GENERATE_FIGURES if run.meta.get("tool") == "swimbench generate" else FIGURES
