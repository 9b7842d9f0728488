"""The FLOP comparison: one row per (variant, experts), counted three ways at matched FLOPs."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch

from .. import designs
from ..config import Reference
from .analytic import macs_per_token
from .counters import count_fvcore, count_torch
from .sizing import match

AGREEMENT_PCT = 1.0   # the three counters must agree within this


@dataclass(frozen=True)
class FlopsRequest:
    ref: Reference
    experts: tuple[int, ...]
    top_k: int
    variants: tuple[str, ...]
    seq: int
    batch: int
    match: str          # "prefill" or "decode": which FLOPs are matched
    align: int
    capacity_factor: float = 1.25
    ffn_mult: int = 1

    def as_dict(self) -> dict:
        """What `swimbench flops --format json` records and the FLOP gate recounts from: every field."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["ref"] = asdict(self.ref)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "FlopsRequest":
        """The request `as_dict` wrote; fields it lacks (written before they existed) take their defaults."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown request fields: {', '.join(sorted(unknown))}")
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        kw["ref"] = Reference(**d["ref"])
        return cls(**kw)


_SMALL = 1 << 22


def counting_layer(cfg):
    """The layer to trace for counting, with balanced routing (the analytic model's load: no token
    dropped). Counts depend on shapes and routing only, so large expert stacks (a 64-expert RoM has
    1.6 B parameters) are left as fresh, untouched allocations, which read as zero pages and cost
    neither time nor memory; small tensors, which may reuse freed memory, get ordinary values so
    no denormal garbage slows the arithmetic."""
    with torch.device("meta"):
        layer = designs.build_layer(cfg.with_(routing="balanced"))
    layer = layer.to_empty(device="cpu").eval()
    with torch.no_grad():
        for p in layer.parameters():
            if p.numel() < _SMALL:
                p.normal_(0, 0.02)
    return layer


def rows(req: FlopsRequest, on_row=None) -> list[dict]:
    """Build, size and count each layer; `on_row(row)` is called as each row completes."""
    out = []
    for variant in req.variants:
        for E in (req.experts if designs.get(variant).experts else (1,)):
            k = min(req.top_k, E)
            sized = match(variant, req.ref, E, k, req.match, req.align,
                          capacity_factor=req.capacity_factor, ffn_mult=req.ffn_mult)
            layer = counting_layer(sized.cfg)
            fv = count_fvcore(layer, req.match, req.batch, req.seq)
            tc = count_torch(layer, req.match, req.batch, req.seq)
            counts = [sized.flops_per_token, fv.flops_per_token, tc.flops_per_token]
            spread = 100.0 * (max(counts) - min(counts)) / max(counts)
            row = {
                "variant": variant, "experts": E, "top_k": k, "d_inner": sized.cfg.d_inner,
                "params_total": sized.params_total, "params_active": sized.params_active,
                "flops_analytic": sized.flops_per_token, "flops_fvcore": fv.flops_per_token,
                "flops_torch": tc.flops_per_token, "mismatch_pct": sized.mismatch_pct,
                "counters_agree": spread <= AGREEMENT_PCT,
                "components": {c: 2 * m for c, m in macs_per_token(sized.cfg, req.match).items()},
                "fvcore_by_op": fv.by_op, "torch_by_op": tc.by_op,
                "fvcore_uncounted_ops": fv.uncounted,
            }
            out.append(row)
            if on_row:
                on_row(row)
    return out
