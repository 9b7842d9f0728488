"""The markdown summary of a report: the runs, each run's environment, each figure with the table of
its data (or why it was skipped), and the comparisons between runs."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .compare import set_up_differently
from .markdown import table

ENV_SKIPPED = ("argv", "profile", "cwd")       # the profile is summarised on its own line


def runs_table(runs) -> pd.DataFrame:
    recs = []
    for r in runs:
        count = r.rows["status"].value_counts()
        statuses = " / ".join(str(int(count.get(s, 0))) for s in ("ok", "oom", "error"))
        git = r.env.get("git") or {}
        recs.append({"run": r.name, "path": str(r.path), "measured on": r.machine,
                     "profile": (r.meta.get("profile") or {}).get("name"), "created": r.meta.get("created"),
                     "status": r.meta.get("status"),
                     "rows ok / oom / error": statuses,
                     "commit": (git.get("commit") or "")[:10] + (" (dirty)" if git.get("dirty") else "")})
    return pd.DataFrame(recs)


def environment(run) -> pd.DataFrame:
    """Every recorded fact of the run's environment, one per row (nested fields dotted)."""
    prof = run.meta.get("profile") or {}
    head = {"profile": f"{prof.get('name')}: {prof.get('description', '')}".rstrip(": "),
            "created": run.meta.get("created"), "status": run.meta.get("status"),
            "attempts": len(run.meta.get("attempts") or []),
            "wall time (s)": sum(a.get("wall_s") or 0 for a in run.meta.get("attempts") or [])}
    env = {k: v for k, v in run.env.items() if k not in ENV_SKIPPED}
    flat = pd.json_normalize(env, sep=".").iloc[0].to_dict() if env else {}
    items = {**head, **flat}
    return pd.DataFrame({"field": list(items), "value": [_value(v) for v in items.values()]})


def _value(v):
    return ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else v


def markdown(out: Path, sections, comparisons) -> str:
    """sections: [(run, [figures.Drawn])]; comparisons: [(run A, run B, frame, headline, png or None)]."""
    runs = [run for run, _ in sections]
    lines = ["# swimbench report", "", table(runs_table(runs)), ""]
    for run, drawn in sections:
        lines += [f"## Run `{run.name}`", "", f"Measured on {run.machine}; directory `{run.path}`.", ""]
        skipped = [d for d in drawn if d.skipped]
        if skipped:
            lines += ["Figures skipped:", ""] + [f"- {d.title}: {d.skipped}" for d in skipped] + [""]
        if run.notes():
            lines += ["Notes the run recorded:", ""] + [f"- {n}" for n in run.notes()] + [""]
        bad = run.rows[run.rows["status"] != "ok"]
        if len(bad):
            lines += ["Configurations without a measurement:", "", table(bad[["key", "status", "error"]]), ""]
        for d in drawn:
            lines += [f"### {d.title}", ""]
            if d.skipped:
                lines += [f"*Skipped: {d.skipped}.*", ""]
                continue
            png = next(p for p in d.files if p.suffix == ".png")
            lines += [f"![{d.title}]({_rel(png, out)})", "", d.caption, "", table(d.data), ""]
        lines += ["### Environment", "", table(environment(run)), ""]
    for a, b, frame, head, png in comparisons:
        lines += [f"## Comparison: `{b.name}` (B) vs `{a.name}` (A)", "",
                  f"A measured on {a.machine}, B on {b.machine}. Ratios are B / A; a difference is "
                  "significant when the 95% intervals do not overlap or the Mann-Whitney U test on the "
                  "raw samples gives p < 0.05 (two-sided). Energy and memory are single values, compared "
                  "without a test.", ""]
        if frame.empty:
            lines += ["*The two runs share no measured configuration.*", ""]
            continue
        for what, n in set_up_differently(frame).items():
            lines += [f"**{n} configuration(s) were set up differently ({what}): their ratios include "
                      "that change, not only the code's.**", ""]
        lines += [table(head), ""]
        if png is not None:
            lines += [f"![comparison]({_rel(png, out)})", ""]
        for metric, g in frame.groupby("metric", sort=False):
            lines += [f"### {metric}", "", table(g.drop(columns="metric")), ""]
    return "\n".join(lines)


def _rel(path: Path, out: Path) -> str:
    return Path(os.path.relpath(path, out)).as_posix()
