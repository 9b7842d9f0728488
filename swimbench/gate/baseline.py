"""Baseline files of the gate, one per GPU model in profiles/baselines/ (h100.json, ...), and one of
FLOP counts (flops.json) that any machine can check.

    {"swimbench_baseline": 1, "kind": "latency" | "flops", "created": ..., "source": {...},
     "device": "cuda", "gpu": "NVIDIA H100 80GB HBM3",          # latency: where it was measured
     "request": {...},                                         # flops: what `swimbench flops` counted
     "rows": {key: {"identity": {...}, "status": "ok",
                    "metrics": {name: {"value": v, "ci_lo": lo, "ci_hi": hi, "samples": [...]}}}}}

A latency baseline keeps at most SAMPLES_KEPT raw samples per metric (a random subset: the rank test
stays valid, the file stays small); ratios to dense are derived on loading, as for a run, and so are
the samples of the times over their floors (the time's samples, scaled: they are not stored). A plain
`swimbench flops --format json` output is also accepted as a FLOP baseline.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

from ..results import atomic_write_text, schema
from ..stats import Estimate
from . import flops as flop_gate
from .metrics import BY_NAME, GATED, Row, plain, run_rows, with_ratios, with_scaled

SCHEMA = 1
SAMPLES_KEPT = 256
# Devices whose reruns of one sweep agree well inside the gate's limits, so that one run's own samples
# may stand for a fresh process's where no between-run spread was measured: CUDA GPUs, whose
# graph-replayed times repeated within 1-2% between processes (docs/performance.md: a rerun on the H200
# gated PASS, 76 ok, against a baseline without repeats). On a CPU shared with other work they moved
# 1.7-2.3x between processes while each run's intervals were a few percent wide: there a difference
# past the limit, without --repeats on both sides, is "unjudged" (gate/compare.py), not a regression.
RERUNS_AGREE = ("cuda",)
REPO_BASELINES = Path(__file__).resolve().parents[2] / "profiles" / "baselines"


class BaselineError(ValueError):
    """A baseline that is missing, unreadable or not of the kind the results need (one line)."""


class MachineMismatch(ValueError):
    """Results measured on another GPU (or device) than the baseline (one line)."""


@dataclass
class Baseline:
    path: Path
    kind: str                   # "latency" or "flops"
    rows: dict                  # key -> metrics.Row
    device: Optional[str] = None
    gpu: Optional[str] = None
    request: Optional[dict] = None
    source: Optional[dict] = None

    @property
    def machine(self) -> str:
        return self.gpu or str(self.device or "any machine")

    @property
    def within_run_evidence(self) -> bool:
        """Whether a metric without between-run spread may be judged on one run's own samples."""
        return self.kind != "latency" or self.device in RERUNS_AGREE


def load(path: Path) -> Baseline:
    path = Path(path)
    if path.is_dir():
        raise BaselineError(f"baseline {path} is a directory, not a baseline file (profiles/baselines/<gpu>.json)")
    if path.exists() and not path.is_file():
        raise BaselineError(f"baseline {path} is not a regular file (a device, pipe or socket)")
    if not path.is_file():
        raise BaselineError(f"baseline {path} does not exist (write one with --update; see docs/gate.md)")
    try:
        doc = json.loads(path.read_text(), object_pairs_hook=_once)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BaselineError(f"baseline {path} is not readable JSON ({e})") from None
    except ValueError as e:
        raise BaselineError(f"baseline {path} is not a swimbench baseline: {e}") from None
    try:
        if isinstance(doc, dict) and "swimbench_baseline" not in doc and "convention" in doc:
            flop_gate.check_output(doc)            # a plain `swimbench flops --format json`
            return Baseline(path, "flops", flop_gate.flop_rows(doc["rows"]),
                            request=flop_gate.request_of(doc))
        if not isinstance(doc, dict) or doc.get("swimbench_baseline") != SCHEMA:
            raise ValueError(f"no \"swimbench_baseline\": {SCHEMA} field")
        rows = {k: _row(k, r, doc["kind"] == "latency") for k, r in doc["rows"].items()}
        if doc["kind"] == "latency":
            if not isinstance(doc["device"], str) or not isinstance(doc.get("gpu"), (str, type(None))):
                raise ValueError(f"device {doc['device']!r} and gpu {doc.get('gpu')!r} are not the names of "
                                 f"where it was measured")
            rows = with_ratios(with_scaled(rows, GATED), GATED)
            skipped = set((doc.get("source") or {}).get("skipped") or ())
            for r in rows.values():             # kept only to derive a ratio: not gated
                r.values = {n: e for n, e in r.values.items() if n not in skipped}
            return Baseline(path, "latency", rows, doc["device"], doc.get("gpu"), source=doc.get("source"))
        if doc["kind"] == "flops":
            return Baseline(path, "flops", rows, request=doc["request"], source=doc.get("source"))
        raise ValueError(f"unknown kind {doc['kind']!r}")
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        what = f"missing {e}" if isinstance(e, KeyError) else str(e)
        raise BaselineError(f"baseline {path} is not a swimbench baseline: {what}") from None


def _once(pairs) -> dict:
    """A JSON object whose names are all distinct: json keeps the last of a repeated name silently, and
    a row key twice (baselines merged by hand) would drop a configuration from the gate unseen."""
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"{k!r} appears twice in one object")
        out[k] = v
    return out


def _number(v) -> bool:
    """A JSON number (not a string of one, not true or false)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _row(key: str, r: dict, latency: bool) -> Row:
    values = {}
    if r["status"] not in ("ok", "oom", "error"):
        raise ValueError(f"row {key}: status {r['status']!r} is not one of ok, oom, error")
    for name, m in r["metrics"].items():
        samples = m.get("samples")
        kind = getattr(BY_NAME.get(name), "kind", "exact")
        value = float(m["value"]) if _number(m["value"]) else math.nan
        if not math.isfinite(value) or (kind != "exact" and value <= 0):
            raise ValueError(f"row {key}: {name} is {m['value']!r}, and a baseline value must be a finite "
                             f"number{'' if kind == 'exact' else ' > 0'}")
        lo, hi = m.get("ci_lo"), m.get("ci_hi")
        if any(b is not None and not (_number(b) and math.isfinite(b)) for b in (lo, hi)) or (
                lo is not None and hi is not None and not lo <= value <= hi):
            raise ValueError(f"row {key}: {name}'s interval [{lo!r}, {hi!r}] is not finite numbers around "
                             f"its value {value!r}")
        if samples is not None and not (isinstance(samples, list) and samples and all(
                _number(x) and math.isfinite(x) and (kind == "exact" or x > 0) for x in samples)):
            raise ValueError(f"row {key}: {name}'s samples are not a non-empty list of finite numbers"
                             f"{'' if kind == 'exact' else ' > 0'}")
        values[name] = Estimate(value, m.get("ci_lo"), m.get("ci_hi"),
                                None if samples is None else np.asarray(samples, dtype=float),
                                bool(m.get("between_runs", False)))
    identity = dict(r["identity"])
    if latency:             # as results columns' types: baselines before them wrote "True" for True
        identity = {k: schema.column(k).value(v) if k in schema.BY_NAME else v for k, v in identity.items()}
    return Row(key, identity, r["status"], values)


def _row_doc(row: Row, rng: np.random.Generator) -> dict:
    metrics = {}
    for name, e in row.values.items():
        if "/" in name:                            # ratios to dense: derived again on loading
            continue
        m = {"value": e.value, "ci_lo": e.lo, "ci_hi": e.hi, "between_runs": e.between_runs or None}
        scaled = row.values.get(getattr(BY_NAME.get(name), "scales", None))
        if e.samples is not None and (scaled is None or scaled.samples is None):    # else derived on loading
            s = e.samples
            if s.size > SAMPLES_KEPT:
                s = s[np.sort(rng.choice(s.size, SAMPLES_KEPT, replace=False))]
            m["samples"] = [float(f"{v:.6g}") for v in s]
        metrics[name] = {k: v for k, v in m.items() if v is not None}
    return {"identity": row.identity, "status": row.status, "metrics": metrics}


def latency_doc(run, skipped: Iterable[str] = ()) -> dict:
    """A baseline of every configuration of a run (`swimbench.results.reader.Run`), without the metrics
    named in `skipped`."""
    rng = np.random.default_rng(0)
    skipped = sorted(skipped)
    rows = run_rows(run, GATED)                   # all of them: a ratio needs its time
    # a skipped time stays in the file where a ratio that is not skipped is derived from it on loading
    # (`load` leaves it out of the gate, by the names recorded in source.skipped)
    needed = {m.of for m in GATED if m.kind == "ratio" and m.name not in skipped}
    for r in rows.values():
        r.values = {n: e for n, e in r.values.items() if n not in skipped or n in needed}
    env = run.env
    return {"swimbench_baseline": SCHEMA, "kind": "latency", "created": _now(),
            "source": {"run": str(run.path), "command": env.get("command"), "git": env.get("git"),
                       "profile": (run.meta.get("profile") or {}).get("name"),
                       "versions": env.get("versions"), "skipped": skipped},
            "device": run.device, "gpu": run.gpu,
            "rows": {k: _row_doc(r, rng) for k, r in rows.items()}}


def flops_doc(rows: list[dict], request: dict, source: str) -> dict:
    """A FLOP baseline of `swimbench flops` rows counted for `request` by the code at this commit."""
    from ..measure.env import git_state
    return {"swimbench_baseline": SCHEMA, "kind": "flops", "created": _now(),
            "source": {"from": source, "git": git_state()},
            "request": request,
            "rows": {k: {"identity": r.identity, "status": "ok",
                         "metrics": {n: {"value": plain(e.value)} for n, e in r.values.items()}}
                     for k, r in flop_gate.flop_rows(rows).items()}}


def without_spread(doc: dict) -> int:
    """How many timed metrics of a latency baseline document have no between-run spread (their run was
    measured without `latency --repeats`)."""
    return sum(1 for r in doc["rows"].values() for name, m in r["metrics"].items()
               if getattr(BY_NAME.get(name), "kind", None) == "timed" and BY_NAME[name].scales is None
               and not m.get("between_runs"))


def replacing(path: Path, doc: dict) -> Optional[tuple[str, str]]:
    """Why writing `doc` over the baseline at `path` needs --force, as ("kind" or "machine", why); None
    when it does not. The file holds the other kind of baseline, or latencies of another GPU or device,
    which an --update meant for this machine would silently lose. A missing or unreadable file is
    replaced freely (it gates nothing)."""
    try:
        old = load(path)
    except BaselineError:
        return None
    words = {"latency": "latencies", "flops": "FLOP counts"}
    if old.kind != doc["kind"]:
        return "kind", f"baseline {path} holds {words[old.kind]}, and RESULTS {words[doc['kind']]}"
    if doc["kind"] == "latency" and (old.device, old.gpu) != (doc["device"], doc.get("gpu")):
        return "machine", (f"baseline {path} is for {old.machine}, and RESULTS were measured on "
                           f"{doc.get('gpu') or doc['device']}")
    return None


def write(path: Path, doc: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, dumps(doc))


def dumps(doc: dict) -> str:
    """JSON with one line per configuration, so that a baseline's diff reads row by row."""
    head = [f" {json.dumps(k)}: {json.dumps(v)}" for k, v in doc.items() if k != "rows"]
    rows = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in doc["rows"].items()]
    return "{\n" + ",\n".join(head + [' "rows": {\n' + ",\n".join(rows) + "\n }"]) + "\n}\n"


def check_machine(baseline: Baseline, run) -> None:
    """Absolute times only compare on the same GPU model: anything else is refused."""
    if (baseline.device, baseline.gpu) != (run.device, run.gpu):
        raise MachineMismatch(f"{run.path} was measured on {run.machine} but baseline {baseline.path} "
                              f"is for {baseline.machine}: gate against that GPU's baseline "
                              f"(profiles/baselines/) or write one with --update")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
