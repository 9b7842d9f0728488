"""The FLOP gate: the layer sizes and FLOP counts of `swimbench flops`, compared exactly. It needs no
GPU: the counts are recounted on the CPU from the request the baseline records."""
from __future__ import annotations

from ..config import Reference
from ..stats import Estimate
from .metrics import FLOP_COLUMNS, Row

REQUEST_FIELDS = ("reference", "experts", "top_k", "variants", "seq", "batch", "match", "align")


def check_output(data) -> None:
    """Raises ValueError unless `data` is the JSON that `swimbench flops --format json` writes."""
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list) or not data["rows"]:
        raise ValueError("no 'rows' list of `swimbench flops --format json`")
    for field in ("reference", "matched", "align", "seq", "batch"):
        if field not in data:
            raise ValueError(f"no {field!r} field of `swimbench flops --format json`")
    for r in data["rows"]:
        missing = [c for c in ("variant", "experts", "top_k", *FLOP_COLUMNS) if c not in r]
        if missing:
            raise ValueError(f"a row lacks {', '.join(missing)}")


def request_of(data: dict) -> dict:
    """The request behind an output of `swimbench flops --format json` (checked with check_output)."""
    rows = data["rows"]
    experts = list(dict.fromkeys(r["experts"] for r in rows if r["variant"] != "dense")) or [1]
    return {"reference": dict(data["reference"]), "experts": experts,
            "top_k": max(r["top_k"] for r in rows),
            "variants": list(dict.fromkeys(r["variant"] for r in rows)),
            "seq": data["seq"], "batch": data["batch"], "match": data["matched"], "align": data["align"]}


def recount(request: dict) -> list[dict]:
    """The rows `swimbench flops` gives for `request` on the current code."""
    from ..flops.table import FlopsRequest, rows
    req = FlopsRequest(Reference(**request["reference"]), tuple(request["experts"]), request["top_k"],
                       tuple(request["variants"]), request["seq"], request["batch"], request["match"],
                       request["align"])
    return rows(req)


def flop_rows(rows: list[dict]) -> dict[str, Row]:
    out = {}
    for r in rows:
        key = f"{r['variant']}/E{r['experts']}/k{r['top_k']}"
        identity = {"variant": r["variant"], "experts": r["experts"], "top_k": r["top_k"]}
        out[key] = Row(key, identity, "ok", {c: Estimate(float(r[c])) for c in FLOP_COLUMNS})
    return out
