"""`swimbench report` end to end: read the runs, draw and save every figure, compare each run with
the first, write summary.md."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from ..results.reader import Run, load_run
from . import compare, plotting
from .ceilings import resolve
from .figures import figures_for
from .summary import markdown


@dataclass
class Report:
    out: Path
    summary: Path
    files: list = field(default_factory=list)
    skipped: list = field(default_factory=list)     # (run name, figure title, why)


def load_runs(paths: Sequence[Path]) -> list[Run]:
    """The runs, named after their directories (suffixed -2, -3, ... where two share a name)."""
    runs, seen = [], {}
    for p in paths:
        base = Path(p).resolve().name
        seen[base] = seen.get(base, 0) + 1
        runs.append(load_run(p, base if seen[base] == 1 else f"{base}-{seen[base]}"))
    return runs


def comparison_figure(a: Run, b: Run, frame):
    """The figure of B against A, with both runs' provenance at its foot (the single-run figures'
    footer, a line per run); None when they share no charted configuration."""
    fig = compare.figure(frame, a.name, b.name)
    if fig is not None:
        plotting.stamp(fig, plotting.provenances({"A": a, "B": b}))
    return fig


def render(runs: Sequence[Run], out: Path, peak_tflops: Optional[float] = None,
           peak_gbps: Optional[float] = None, alpha: float = compare.ALPHA) -> Report:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = Report(out, out / "summary.md")
    sections = []
    for run in runs:
        ceilings = resolve(run.meta, peak_tflops, peak_gbps)
        drawn = []
        for build in figures_for(run):
            d = build(run, ceilings)
            if d.fig is not None:
                plotting.stamp(d.fig, plotting.provenance(run))
                d.files = plotting.save(d.fig, out / run.name, d.name)
                d.fig = None                       # drawn and saved: let it go
                report.files += d.files
            else:
                report.skipped.append((run.name, d.title, d.skipped))
            drawn.append(d)
        sections.append((run, drawn))
    comparisons = []
    for b in runs[1:]:
        a = runs[0]
        frame = compare.comparison(a, b, alpha)
        fig = comparison_figure(a, b, frame)
        png = None
        if fig is not None:
            files = plotting.save(fig, out, f"compare-{b.name}-vs-{a.name}")
            report.files += files
            png = files[0]
        comparisons.append((a, b, frame, compare.headline(frame), png))
    report.summary.write_text(markdown(out, sections, comparisons))
    return report
