"""The FLOP gate: the layer sizes and FLOP counts of `swimbench flops`, compared exactly. It needs no
GPU: the counts are recounted on the CPU from the request the baseline records."""
from __future__ import annotations

from ..stats import Estimate
from .metrics import FLOP_COLUMNS, Row


def check_output(data) -> None:
    """Raises ValueError unless `data` is the JSON that `swimbench flops --format json` writes."""
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list) or not data["rows"]:
        raise ValueError("no 'rows' list of `swimbench flops --format json`")
    for field in ("reference", "matched", "align", "seq", "batch"):
        if field not in data:
            raise ValueError(f"no {field!r} field of `swimbench flops --format json`")
    seen = set()
    for n, r in enumerate(data["rows"], 1):
        if not isinstance(r, dict):
            raise ValueError(f"row {n} is not an object")
        missing = [c for c in ("variant", "experts", "top_k", *FLOP_COLUMNS) if c not in r]
        if missing:
            raise ValueError(f"a row lacks {', '.join(missing)}")
        key = _key(r)
        if key in seen:             # one row per configuration: a second would replace the first, unseen
            raise ValueError(f"{key} is on two rows (row {n} repeats it)")
        seen.add(key)


def _key(r: dict) -> str:
    return f"{r['variant']}/E{r['experts']}/k{r['top_k']}"


def request_of(data: dict) -> dict:
    """The request behind an output of `swimbench flops --format json` (checked with check_output), in
    the form FlopsRequest.as_dict writes. Outputs written before they recorded it whole are read back
    from their rows and fields, with every field they do record (capacity factor and FFN width too)."""
    if isinstance(data.get("request"), dict):
        return dict(data["request"])
    rows = data["rows"]
    experts = list(dict.fromkeys(r["experts"] for r in rows if r["variant"] != "dense")) or [1]
    req = {"ref": dict(data["reference"]), "experts": experts, "top_k": max(r["top_k"] for r in rows),
           "variants": list(dict.fromkeys(r["variant"] for r in rows)), "seq": data["seq"],
           "batch": data["batch"], "match": data["matched"], "align": data["align"]}
    req.update({k: data[k] for k in ("capacity_factor", "ffn_mult") if k in data})
    return req


def _request(request: dict):
    from ..flops.table import FlopsRequest
    if "reference" in request and "ref" not in request:      # baselines written before as_dict
        request = {("ref" if k == "reference" else k): v for k, v in request.items()}
    return FlopsRequest.from_dict(request)


def same_request(a: dict, b: dict) -> bool:
    """Whether two recorded requests ask for the same counts, whichever form each was written in."""
    return _request(a) == _request(b)


def recount(request: dict) -> list[dict]:
    """The rows `swimbench flops` gives for `request` on the current code."""
    from ..flops.table import rows
    return rows(_request(request))


def flop_rows(rows: list[dict]) -> dict[str, Row]:
    out = {}
    for r in rows:
        key = _key(r)
        identity = {"variant": r["variant"], "experts": r["experts"], "top_k": r["top_k"]}
        out[key] = Row(key, identity, "ok", {c: Estimate(float(r[c])) for c in FLOP_COLUMNS})
    return out
