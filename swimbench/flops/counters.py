"""FLOPs counted from what a layer actually runs, by fvcore and by torch's FlopCounterMode.

Both know matrix products and convolutions; neither knows our custom scan ops nor torch's grouped
GEMM, so both get those formulas here (the scan ops' from swimbench.kernels.flops). fvcore counts one per multiply-add;
FlopCounterMode counts two. Results here are FLOPs (2 x MACs) per token.
"""
from __future__ import annotations

import inspect
import warnings
from collections import Counter
from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode, register_flop_formula

from torch import nn

from ..kernels import flops as opf
from ..layers.base import Cache


@dataclass
class Count:
    flops_per_token: float
    by_op: dict = field(default_factory=dict)       # FLOPs per token per operator
    uncounted: list = field(default_factory=list)   # operators the counter saw but gave no count


# --- the custom ops' formulas, in MACs, from shapes -------------------------------------------
def _scan(u, A, D, z, **_):
    return opf.selective_scan_macs(u, A, D is not None, z is not None)


def _swimba(u, A, dt, D, z, **_):
    return opf.swimba_scan_macs(u, A, dt, D is not None, z is not None)


def _separated(u, A, D, z, **_):
    return opf.separated_scan_macs(u, A, D is not None, z is not None)


def _combine(gates, values, **_):
    return opf.combine_op_macs(gates, values)


def _gather_mm(w, idx, **_):
    return opf.gather_mm_macs(w, idx)


def _route(x, weight, **_):
    return opf.route_macs(x, weight)


def _conv(x, weight, **_):
    return opf.conv_macs(x, weight)


def _mix(dt, B, pos, **_):
    return opf.swimba_mix_macs(dt, B, pos)


# op name -> its formula. A formula names the op's arguments it reads as the op's schema names them; their
# positions are read from the schema, so an op's signature is written down once, where it is defined.
_FORMULAS = {
    "combine": _combine, "gather_mm": _gather_mm, "route": _route,
    "causal_conv1d": _conv, "causal_conv1d_update": _conv, "swimba_mix": _mix,
    "selective_scan": _scan, "swimba_scan": _swimba, "separated_scan": _separated,
    "selective_state_update": _scan, "swimba_state_update": _swimba, "separated_state_update": _separated,
}


def _positions(name: str, fn) -> dict[str, int]:
    """Where each argument `fn` reads sits in the swimbench::name schema."""
    schema = [a.name for a in getattr(torch.ops.swimbench, name).default._schema.arguments]
    wanted = [p for p in inspect.signature(fn).parameters if p != "_"]
    missing = [p for p in wanted if p not in schema]
    if missing:
        raise TypeError(f"the formula of swimbench::{name} reads {missing}, which its schema {schema} lacks")
    return {p: schema.index(p) for p in wanted}


_OPS = {name: (fn, _positions(name, fn)) for name, fn in _FORMULAS.items()}


def _formula_args(args, where):
    return {name: args[pos] if pos < len(args) else None for name, pos in where.items()}


def _grouped_mm(a, b, **_):
    """torch._grouped_mm, 2-D x 3-D: every row of a meets one (K, N) expert matrix."""
    return int(a[0]) * int(a[1]) * int(b[-1])


def _register_torch_formulas():
    register_flop_formula(torch.ops.aten._grouped_mm)(
        lambda a, b, *args, out_shape=None, **kw: 2 * _grouped_mm(a, b))
    for name, (fn, where) in _OPS.items():
        def formula(*args, out_shape=None, _fn=fn, _where=where, **kwargs):
            return 2 * _fn(**_formula_args(args, _where))
        register_flop_formula(getattr(torch.ops.swimbench, name))(formula)


_register_torch_formulas()


def _fvcore_handles():
    from fvcore.nn.jit_handles import get_shape

    def handle(fn, where):
        return lambda inputs, outputs: fn(**_formula_args([get_shape(v) for v in inputs], where))
    handles = {f"swimbench::{name}": handle(fn, where) for name, (fn, where) in _OPS.items()}
    handles["aten::_grouped_mm"] = handle(_grouped_mm, dict(a=0, b=1))
    return handles


# --- running a layer under each counter -------------------------------------------------------
class _Step(torch.nn.Module):
    """layer.step as a module with tensor-only inputs, for jit tracing."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x: Tensor, conv: Tensor, ssm: Tensor) -> Tensor:
        return self.layer.step(x, Cache(conv, ssm))


def _inputs(layer: nn.Module, phase: str, batch: int, seq: int):
    p = next(layer.parameters())
    if phase == "prefill":
        return layer, (torch.randn(batch, seq, layer.cfg.d_model, dtype=p.dtype, device=p.device),), batch * seq
    cache = layer.allocate_cache(batch)
    x = torch.randn(batch, 1, layer.cfg.d_model, dtype=p.dtype, device=p.device)
    return _Step(layer), (x, cache.conv, cache.ssm), batch


@torch.no_grad()
def count_fvcore(layer: nn.Module, phase: str = "prefill", batch: int = 1, seq: int = 64) -> Count:
    from fvcore.nn import FlopCountAnalysis

    module, inputs, tokens = _inputs(layer, phase, batch, seq)
    fa = FlopCountAnalysis(module, inputs).set_op_handle(**_fvcore_handles())
    fa.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        total = fa.total()
        by_op = {op: 2 * n / tokens for op, n in fa.by_operator().items()}
        uncounted = sorted(fa.unsupported_ops())
    return Count(2 * total / tokens, by_op, uncounted)


@torch.no_grad()
def count_torch(layer: nn.Module, phase: str = "prefill", batch: int = 1, seq: int = 64) -> Count:
    module, inputs, tokens = _inputs(layer, phase, batch, seq)
    with FlopCounterMode(display=False) as fc:
        module(*inputs)
    by_op = Counter({str(op): n / tokens for op, n in fc.get_flop_counts()["Global"].items()})
    return Count(fc.get_total_flops() / tokens, dict(by_op))
