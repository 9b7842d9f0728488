"""`swimbench gate`: fail a change that makes a design slower, or that changes a FLOP count.

Compares a latency run (absolute times, ratios to dense on the same run, memory, FLOP counts) or the
FLOP counts of the current code with a baseline file in profiles/baselines/. Docs: docs/gate.md.
"""
from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import List, Optional

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from . import app
from .errors import ClickException, UsageError, bad, writable_file

EXIT_REGRESSED, EXIT_BASELINE, EXIT_MACHINE = 1, 3, 4
EXIT_HELP = ("Exit status: 0 nothing regressed; 1 a metric regressed, a FLOP count changed or a "
             "configuration failed; 2 bad command line or unreadable RESULTS; 3 baseline missing, "
             "unreadable or not for these results; 4 RESULTS measured on another GPU than the baseline.")
SHOW = ("all", "changes")
FORMATS = ("table", "json")
VERDICT_STYLE = {"ok": "green", "regressed": "bold red", "changed": "bold red", "failed": "bold red",
                 "noise": "yellow", "improved": "cyan"}


class BaselineProblem(ClickException):
    exit_code = EXIT_BASELINE


class MachineProblem(ClickException):
    exit_code = EXIT_MACHINE


def _thresholds(items: list[str]) -> dict[str, float]:
    from ..gate.metrics import BY_NAME
    tunable = [n for n, m in BY_NAME.items() if m.kind in ("timed", "ratio", "deterministic")]
    allowed = "METRIC=RATIO with RATIO a finite number > 1 and METRIC one of " + ", ".join(tunable)
    out = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            ratio = float(value)
        except ValueError:
            raise bad("--threshold", item, allowed) from None
        if name not in tunable or not 1 < ratio < math.inf:        # inf gates nothing: --skip says so
            raise bad("--threshold", item, allowed)
        if out.get(name, ratio) != ratio:         # two limits for one metric: which one was meant?
            raise bad("--threshold", item, f"one limit per metric ({name}={out[name]:g} is given too)")
        out[name] = ratio
    return out


def _skipped(items: list[str]) -> frozenset[str]:
    from ..gate.metrics import FLOPS, GATED
    names = [m.name for m in (*GATED, *FLOPS)]
    for item in items:
        if item not in names:
            raise bad("--skip", item, "one of " + ", ".join(names))
    return frozenset(items)


def _results(path: Optional[Path]):
    """("run", Run), ("flops", the JSON of `swimbench flops`) or (None, None)."""
    if path is None:
        return None, None
    from ..gate.flops import check_output
    from ..results.reader import RunError, load_run
    if path.is_dir():
        try:
            return "run", load_run(path)
        except RunError as e:
            raise UsageError(f"RESULTS: {e}") from None
    if path.is_file():
        try:
            data = json.loads(path.read_text())
            check_output(data)
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise UsageError(f"RESULTS: {path} is neither a run directory nor the JSON of "
                             f"`swimbench flops --format json` ({e})") from None
        return "flops", data
    if path.exists():                       # a device, a pipe: neither a run nor a file of counts
        raise UsageError(f"RESULTS: {path} is neither a run directory nor a regular file")
    raise UsageError(f"RESULTS: {path} does not exist")


def _load_baseline(path: Path):
    from ..gate.baseline import BaselineError, load
    try:
        return load(path)
    except BaselineError as e:
        raise BaselineProblem(str(e)) from None


@app.command(epilog=EXIT_HELP)
def gate(
    results: Optional[Path] = typer.Argument(None, show_default=False, metavar="RESULTS",
                                             help="A run directory of `swimbench latency`, or the JSON of "
                                                  "`swimbench flops --format json`. Left out with a FLOP "
                                                  "baseline: the FLOPs of the current code are counted."),
    baseline: Path = typer.Option(..., "--baseline", "-b", show_default=False, metavar="FILE",
                                  help="Baseline file: profiles/baselines/<gpu>.json (latency) or "
                                       "profiles/baselines/flops.json."),
    update: bool = typer.Option(False, "--update", help="Write RESULTS (or the FLOP recount) as the new "
                                                        "baseline instead of gating."),
    threshold: List[str] = typer.Option([], "--threshold", "-t",
                                        help="METRIC=RATIO: flag METRIC past this now/baseline ratio. "
                                             "Defaults 1.10 for prefill_ms, decode_us, their /dense "
                                             "ratios, their x floor and peak memory; FLOP counts must "
                                             "match exactly."),
    skip: List[str] = typer.Option([], "--skip", "-s", metavar="METRIC",
                                   help="Leave METRIC out of the gate, or of the baseline --update writes "
                                        "(e.g. prefill_ms where absolute times are not comparable)."),
    alpha: float = typer.Option(0.01, help="Significance level of the rank test on the raw samples."),
    show: str = typer.Option("all", help="Rows of the table: all, or changes (all but ok)."),
    fmt: str = typer.Option("table", "--format", "-f", help="The verdict on stdout: table, or json for CI."),
    force: bool = typer.Option(False, "--force", help="With --update: replace a baseline of another GPU, "
                                                      "device or kind."),
):
    """Compare results with a baseline; exit 1 when something regressed.

    A metric regresses when now/baseline is past its threshold AND the difference is beyond the noise
    (95% intervals apart, or a Mann-Whitney U test on the raw samples). FLOP counts must not change."""
    thresholds = _thresholds(threshold)
    skipped = _skipped(skip)
    if not 0 < alpha < 1:
        raise bad("--alpha", alpha, "a number between 0 and 1")
    if show not in SHOW:
        raise bad("--show", show, "all or changes")
    if fmt not in FORMATS:
        raise bad("--format", fmt, "one of " + ", ".join(FORMATS))
    if update:
        writable_file("--baseline", baseline)
    kind, results_data = _results(results)
    console = Console(stderr=True)
    if force and not update:
        raise UsageError("--force only goes with --update (it lets --update replace a baseline of another GPU)")
    if update:
        _update(console, baseline, kind, results_data, results, skipped, force)
        return
    verdicts, label = _verdicts(console, baseline, kind, results_data, results, thresholds, alpha, skipped)
    code = _report(verdicts, label, show) if fmt == "table" else _json(verdicts, label)
    if code:
        raise typer.Exit(code)


def _verdicts(console, path, kind, data, results, thresholds, alpha, skipped=frozenset()):
    from ..gate import flops as flop_gate
    from ..gate.baseline import MachineMismatch, check_machine
    from ..gate.compare import STATUS, compare
    from ..gate.metrics import FLOPS, GATED, run_rows
    base = _load_baseline(path)
    if base.kind == "latency":
        if kind != "run":
            if kind is None:
                raise UsageError(f"RESULTS is needed: baseline {path} holds latencies; give a run "
                                 f"directory of `swimbench latency`")
            raise BaselineProblem(f"baseline {path} holds latencies but RESULTS {results} holds FLOP counts")
        try:
            check_machine(base, data)
        except MachineMismatch as e:
            raise MachineProblem(str(e)) from None
        metrics = tuple(m for m in GATED if m.name not in skipped)
        now, label = run_rows(data, GATED), f"{results} ({data.machine})"   # ratios need their times
    else:
        if kind == "run":
            raise BaselineProblem(f"baseline {path} holds FLOP counts but RESULTS {results} is a latency run")
        if kind == "flops":
            if not flop_gate.same_request(flop_gate.request_of(data), base.request):
                raise BaselineProblem(f"baseline {path} counted another configuration than RESULTS "
                                      f"{results}: {base.request} vs {flop_gate.request_of(data)}")
            rows, label = data["rows"], str(results)
        else:
            with console.status("counting FLOPs of the current code..."):
                rows = flop_gate.recount(base.request)
            label = "the current code's FLOP counts"
        now, metrics = flop_gate.flop_rows(rows), tuple(m for m in FLOPS if m.name not in skipped)
    if skipped and not any(m.name in r.values for m in metrics for r in base.rows.values()):
        raise bad("--skip", ",".join(sorted(skipped)), f"fewer metrics: nothing of baseline {path} is left to gate")
    verdicts = compare(base.rows, now, metrics, thresholds, alpha, base.within_run_evidence)
    if kind == "run" and data.missing:      # planned and not measured: an interrupted run fails
        planned = set(data.missing)
        verdicts = [replace(v, verdict="failed", evidence="planned in metadata.json, no row in results.csv")
                    if v.key in planned and v.verdict == "not measured" else v for v in verdicts]
    if not any(v.metric is not STATUS or v.verdict == "failed" for v in verdicts):
        other = next((v for v in verdicts if v.verdict == "other config"), None)
        why = f" ({other.key}: {other.evidence})" if other is not None else ""
        raise BaselineProblem(f"baseline {path} shares no comparable configuration with {label}{why}")
    return verdicts, f"{label} vs baseline {path}"


def _report(verdicts, label: str, show: str) -> int:
    from ..gate.compare import STATUS
    table = Table(title=f"swimbench gate: {label}", box=box.SIMPLE_HEAD, title_justify="left")
    for c in ("configuration", "metric", "baseline", "now", "ratio", "limit", "evidence", "verdict"):
        table.add_column(c, justify="right" if c in ("baseline", "now", "ratio", "limit") else "left",
                         no_wrap=c in ("configuration", "verdict"))
    for v in verdicts:
        if show == "changes" and v.verdict == "ok":
            continue
        exact = v.metric.kind == "exact"
        table.add_row(v.key, v.metric.label if v.metric is not STATUS else "",
                      _num(v.base, exact), _num(v.now, exact),
                      "" if v.ratio is None else f"{v.ratio:.3f}",
                      "" if v.limit is None else f"{v.limit:.2f}",
                      v.evidence, f"[{VERDICT_STYLE.get(v.verdict, 'dim')}]{v.verdict}[/]")
    out = Console()
    if not out.is_terminal:
        out = Console(width=180)            # CI logs get the whole table, not an 80-column squeeze
    if table.row_count:
        out.print(table)
    counts = {}
    for v in verdicts:
        counts[v.verdict] = counts.get(v.verdict, 0) + 1
    failed = sum(v.failed for v in verdicts)
    words = ", ".join(f"{n} {k}" for k, n in counts.items())
    out.print(("[bold red]FAIL[/]" if failed else "[bold green]PASS[/]") + f": {words}")
    return EXIT_REGRESSED if failed else 0


def _json(verdicts, label: str) -> int:
    """The verdict for programs: PASS or FAIL, the counts, and every verdict with its numbers."""
    from ..gate.compare import STATUS
    failed = sum(v.failed for v in verdicts)
    counts: dict[str, int] = {}
    for v in verdicts:
        counts[v.verdict] = counts.get(v.verdict, 0) + 1
    doc = {"verdict": "FAIL" if failed else "PASS", "exit": EXIT_REGRESSED if failed else 0,
           "compared": label, "counts": counts,
           "verdicts": [{"configuration": v.key, "metric": None if v.metric is STATUS else v.metric.name,
                         "baseline": None if v.base is None else v.base.value,
                         "now": None if v.now is None else v.now.value, "ratio": v.ratio, "limit": v.limit,
                         "evidence": v.evidence, "verdict": v.verdict} for v in verdicts]}
    typer.echo(json.dumps(doc, indent=2))
    return doc["exit"]


def _num(e, exact: bool) -> str:
    if e is None:
        return ""
    return f"{e.value:,.0f}" if exact and float(e.value).is_integer() else f"{e.value:.4g}"


def _update(console, path: Path, kind, data, results, skipped=frozenset(), force: bool = False) -> None:
    from ..gate import flops as flop_gate
    from ..gate.baseline import RERUNS_AGREE, flops_doc, latency_doc, replacing, without_spread, write
    if kind == "run":
        if data.meta.get("status") != "complete":
            console.print(f"[yellow]note:[/] run status is {data.meta.get('status')!r}; only its measured "
                          f"configurations go into the baseline")
        doc = latency_doc(data, skipped)
    elif kind == "flops":
        doc = flops_doc(data["rows"], flop_gate.request_of(data), "swimbench flops --format json")
    else:
        if not path.is_file():
            raise BaselineProblem(f"--update without RESULTS recounts an existing FLOP baseline, and {path} "
                                  f"does not exist: write one with `swimbench flops --format json -o F` and "
                                  f"`swimbench gate F --baseline {path} --update`")
        base = _load_baseline(path)
        if base.kind != "flops":
            raise UsageError(f"RESULTS is needed: baseline {path} holds latencies; give the run directory "
                             f"to take them from")
        with console.status("counting FLOPs of the current code..."):
            rows = flop_gate.recount(base.request)
        doc = flops_doc(rows, base.request, "swimbench gate --update (a recount)")
    ok = sum(r["status"] == "ok" for r in doc["rows"].values())
    if doc["kind"] == "latency" and ok == 0:
        raise UsageError(f"RESULTS: {results} has no measured configuration: a baseline of it would gate nothing")
    if skipped and not any(r["metrics"] for r in doc["rows"].values()):
        raise bad("--skip", ",".join(sorted(skipped)), "fewer metrics: a baseline without any would gate nothing")
    clash = replacing(path, doc)
    if clash is not None and not force:
        what, why = clash
        raise (MachineProblem if what == "machine" else BaselineProblem)(
            f"--update: {why}; give --force to replace it, or another --baseline FILE")
    try:
        write(path, doc)
    except OSError as e:
        raise bad("--baseline", str(path), f"a file --update can write ({e.strerror or e})") from None
    what = {"swimbench generate": "generate"}.get(data.meta.get("tool"), "latency") if kind == "run" else "FLOP"
    where = f" measured on {doc.get('gpu') or doc.get('device')}" if doc["kind"] == "latency" else ""
    console.print(f"wrote {what} baseline {path}: {ok} configurations{where}")
    lacking = without_spread(doc) if doc["kind"] == "latency" else 0
    if lacking:
        judged = ("the gate judges them on one run's samples, as reruns on a CUDA GPU agree within 1-2%"
                  if doc["device"] in RERUNS_AGREE else
                  f"on {doc['device']} the gate calls their changes past the limit 'unjudged', not regressed")
        how = ("measure with `latency --repeats 3` to gate them" if what == "latency" else
               "generate measures no repeats: gate it on a GPU")
        console.print(f"[yellow]warning:[/] {lacking} timed metrics of this baseline have no between-run spread "
                      f"(its run measured each configuration once): {judged}; {how} (docs/gate.md)")
