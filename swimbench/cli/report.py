"""`swimbench report`: figures (PNG and SVG) and a markdown summary of one or more latency runs, with a
side-by-side comparison of each run against the first. Docs: docs/report.md."""
from __future__ import annotations

import math
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from . import app
from .errors import UsageError, bad, writable_dir

MAX_PEAK = 1e6          # TFLOP/s or GB/s: a ceiling past any device's


@app.command()
def report(
    runs: List[Path] = typer.Argument(..., help="Run directories written by `swimbench latency`; "
                                                "with two or more, each is compared with the first.",
                                      show_default=False, metavar="RUN..."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", show_default="RUN/report of the first run",
                                       help="Where the figures and summary.md go."),
    peak_tflops: Optional[float] = typer.Option(None, show_default="measured by the run, in its metadata",
                                                help="Compute ceiling of the figures and floors, TFLOP/s."),
    peak_gbps: Optional[float] = typer.Option(None, show_default="measured by the run, in its metadata",
                                              help="Memory-bandwidth ceiling of the figures and floors, GB/s."),
):
    """Figures and a markdown summary of latency runs, and a comparison of runs.

    Scaling with experts, batch and sequence length, energy and power, achieved TFLOP/s and bandwidth
    against the device's ceilings, time over the floor they give, the data of every figure and the
    environment of every run."""
    for flag, v in (("--peak-tflops", peak_tflops), ("--peak-gbps", peak_gbps)):
        if v is not None and not (math.isfinite(v) and 0 < v <= MAX_PEAK):
            raise bad(flag, v, f"a finite number > 0 and <= {MAX_PEAK:g}")
    from ..results import ep as ep_table
    if any(ep_table.is_ep_run(r) for r in runs):
        return _expert_parallel(runs, out)
    from ..report.render import load_runs, render
    from ..results.reader import RunError
    try:
        loaded = load_runs(runs)
    except RunError as e:
        raise UsageError(str(e)) from None
    for run in loaded:                  # nothing to draw or compare: said, not an empty report
        if run.ok.empty:
            from .errors import ClickException
            from .rundirs import EXIT_NOTHING
            counts = ", ".join(f"{n} {s}" for s, n in run.rows["status"].value_counts().items())
            err = ClickException(f"{run.path} has no measured row ({counts or 'no rows'}): nothing to draw")
            err.exit_code = EXIT_NOTHING         # as `latency` and `ep` exit when nothing was measured
            raise err
    out = out if out is not None else Path(runs[0]) / "report"
    from ..results import RunDir
    if (out / RunDir.METADATA).is_file():
        raise bad("--out", str(out), "a directory that is not a run directory (its files would mix with "
                                     "the run's)")
    writable_dir("--out", out)
    console = Console(stderr=True)
    with console.status("drawing figures..."):
        result = render(loaded, out, peak_tflops, peak_gbps)
    for run, title, why in result.skipped:
        console.print(f"[yellow]skipped[/] {run}: {title}: {why}")
    pngs = sum(p.suffix == ".png" for p in result.files)
    console.print(f"wrote {pngs} figures (PNG and SVG) and {result.summary}")


def _expert_parallel(runs: List[Path], out: Optional[Path]) -> None:
    """An expert-parallel run (`swimbench ep`, docs/distributed.md): its two figures and ep.md."""
    from ..report.ep import render
    if len(runs) > 1:
        raise bad("RUN", " ".join(map(str, runs)), "one expert-parallel run alone (its world sizes are "
                                                     "compared within it), or latency runs")
    from ..results import ep as ep_table
    try:
        rows = ep_table.read(Path(runs[0]))         # damage is said before anything is drawn or written
    except ValueError as e:
        raise UsageError(str(e)) from None
    if rows.empty:
        raise UsageError(f"{runs[0]} has no expert-parallel rows ({ep_table.TABLE})")
    paths = render(Path(runs[0]), writable_dir("--out", out if out is not None else Path(runs[0]) / "report"))
    Console(stderr=True).print(f"wrote {sum(p.suffix == '.png' for p in paths)} figures (PNG and SVG) and {paths[-1]}")
