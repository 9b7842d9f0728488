"""The doctor's kernel checks: every op of the `swimbench` torch.library namespace, called as the layers
call it, on this device, against its pure-PyTorch reference.

Each check draws fresh random inputs at sizes that are not powers of two (partial tiles, a chunked scan),
in each dtype, fills every buffer the op allocates with NaN before it runs (an element it fails to write
shows up), and bounds the relative error by `swimbench.kernels.accuracy`. The list of ops is the
namespace itself: an op registered without a check here is a failed check, not a forgotten one.

On a CPU the Triton kernels run only through Triton's interpreter, which must be switched on before
any kernel is defined: `python -m swimbench.doctor.ops --device cpu` runs these checks in a process of
their own with TRITON_INTERPRET=1 (swimbench/doctor/engine.py starts it), one JSON line per op.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import torch

from .result import FAIL, PASS, Result

NAMESPACE = "swimbench"
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class Sizes:
    """The shapes of one run of the checks. None of them is a power of two: blocks end part-full."""
    b: int              # scan batch
    l: int              # scan length of the single-pass scan
    l_chunked: int      # scan length of the chunked scan
    chunks: int         # its chunks, pinned: the plan chunks only long sequences at small batch
    block_d: Optional[int]  # its channel block, pinned (None: the plan's), so that d ends in a partial block
    d: int              # channels
    n: int              # states per channel
    E: int              # experts
    k: int              # experts per token
    step_b: int         # decode batch
    K: int              # conv width
    T: int              # tokens of the routing ops (T k <= 64: gather_mm's slots)
    Kd: int             # routed projections' input width
    N: int              # routed projections' output width
    dtypes: tuple = tuple(DTYPES)


# On a GPU the chunked scan is the plan's own choice at this length (2 chunks at b=2, d=200 on an H100);
# the interpreter runs every program in Python, so its sizes are tiny, and two dtypes.
ON_GPU = Sizes(b=2, l=77, l_chunked=301, chunks=2, block_d=None, d=200, n=16, E=5, k=2, step_b=3, K=4, T=23,
               Kd=262, N=70)
INTERPRETED = Sizes(b=2, l=5, l_chunked=9, chunks=2, block_d=None, d=37, n=5, E=3, k=2, step_b=3, K=4, T=11,
                    Kd=45, N=19, dtypes=("fp32", "bf16"))


@dataclass(frozen=True)
class Compared:
    """One output of one case: its relative error and the bound it must stay within (0: exactly equal)."""
    case: str
    err: float
    tol: float

    @property
    def ok(self) -> bool:
        return self.err == self.err and self.err <= self.tol      # NaN is never ok


@dataclass(frozen=True)
class OpCheck:
    op: str
    fused: tuple[str, str]      # the op's Triton implementation (module, function), as the op picks it
    naive: Callable             # its reference
    run: Callable               # (sizes, dtype, device, generator) -> list[Compared]


CHECKS: dict[str, OpCheck] = {}


def check(op: str, fused: tuple[str, str], naive: Callable):
    def register(fn):
        CHECKS[op] = OpCheck(op, fused, naive, fn)
        return fn
    return register


def registered_ops() -> list[str]:
    """Every op of the namespace, as the dispatcher holds them once swimbench.kernels is imported."""
    from .. import kernels  # noqa: F401  (registers the ops)
    prefix = NAMESPACE + "::"
    return sorted({name[len(prefix):].split(".")[0] for name in torch._C._dispatch_get_all_op_names()
                   if name.startswith(prefix)})


# ---------------------------------------------------------------------------------------------------
# how each op runs: poisoned buffers, the production dispatch

@contextlib.contextmanager
def poisoned():
    """torch.empty, empty_like and Tensor.new_empty hand out NaN-filled (floats) or -2^30-filled (ints)
    tensors: an element a kernel fails to write, or a workspace slot it reads first, shows up."""
    empty, empty_like = torch.empty, torch.empty_like
    own = torch.Tensor.__dict__.get("new_empty")
    new_empty = torch.Tensor.new_empty

    def fill(t):
        if t.is_floating_point():
            return t.fill_(float("nan"))
        return t.fill_(-(1 << 30)) if t.dtype in (torch.int32, torch.int64) else t

    torch.empty = lambda *a, **k: fill(empty(*a, **k))
    torch.empty_like = lambda *a, **k: fill(empty_like(*a, **k))
    torch.Tensor.new_empty = lambda self, *a, **k: fill(new_empty(self, *a, **k))
    try:
        yield
    finally:
        torch.empty, torch.empty_like = empty, empty_like
        if own is None:
            del torch.Tensor.new_empty
        else:
            torch.Tensor.new_empty = own


@contextlib.contextmanager
def production_dispatch():
    """The ops pick as they do in a run (SWIMBENCH_KERNELS unset), whatever this process was given."""
    from ..kernels._dispatch import KERNELS_ENV
    saved = os.environ.pop(KERNELS_ENV, None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ[KERNELS_ENV] = saved


def _picked(c: OpCheck, like: torch.Tensor) -> Optional[str]:
    """None when the op takes its Triton kernel on `like`'s device, else why not."""
    from ..kernels._dispatch import load_fused, pick
    module, name = c.fused
    module = "." + module.split(".kernels.", 1)[1] if ".kernels." in module else module
    with production_dispatch():
        fused = load_fused(module, name)
        if fused is None:
            try:
                getattr(importlib.import_module(module, "swimbench.kernels"), name)
            except Exception as e:  # noqa: BLE001  (the reason the op falls back)
                return f"its Triton implementation does not import ({_one_line(e)})"
            return "its Triton implementation does not import"
        if pick(c.naive, module, name, like) is not fused:
            return f"it takes the reference on {like.device} (Triton runs on CUDA, or under TRITON_INTERPRET=1)"
    return None


def _one_line(e: BaseException, limit: int = 300) -> str:
    text = " ".join(f"{type(e).__name__}: {e}".split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _where(e: BaseException) -> str:
    frames = traceback.extract_tb(e.__traceback__)
    return f" at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno}" if frames else ""


def run_one(c: OpCheck, device: torch.device, sizes: Sizes, seed: int) -> Result:
    t0 = time.perf_counter()
    name = f"kernel {c.op}"
    probe = torch.empty(0, device=device)
    why = _picked(c, probe)
    if why is not None:
        return Result(FAIL, name, f"the op does not run Triton here: {why}", time.perf_counter() - t0,
                      {"op": c.op, "seed": seed})
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    compared: list[tuple[str, Compared]] = []
    try:
        for label in sizes.dtypes:
            dtype = DTYPES[label]
            with production_dispatch():
                for got in c.run(sizes, dtype, device, gen):
                    compared.append((label, got))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    except Exception as e:  # noqa: BLE001  (a kernel that raises is a failed check; the others go on)
        return Result(FAIL, name, f"raised {_one_line(e)}{_where(e)}", time.perf_counter() - t0,
                      {"op": c.op, "seed": seed})
    took = time.perf_counter() - t0
    data = {"op": c.op, "impl": "triton", "seed": seed, "sizes": sizes.__dict__,
            "comparisons": [{"dtype": dt, "case": x.case, "err": x.err, "tol": x.tol, "ok": x.ok}
                            for dt, x in compared]}
    bad = [(dt, x) for dt, x in compared if not x.ok]
    if bad:
        words = "; ".join(f"{dt} {x.case} {_err(x.err)} > {x.tol:.0e}" if x.tol else f"{dt} {x.case} differs"
                          for dt, x in bad[:3])
        more = f" (+{len(bad) - 3} more)" if len(bad) > 3 else ""
        return Result(FAIL, name, f"{len(bad)} of {len(compared)} outputs off their bound: {words}{more}", took,
                      data)
    bounded = [(dt, x) for dt, x in compared if x.tol > 0]
    dt, worst = max(bounded, key=lambda p: p[1].err / p[1].tol) if bounded else (None, None)
    detail = f"{len(compared)} outputs within bound, {', '.join(sizes.dtypes)}"
    if worst is not None:
        detail += f"; worst {dt} {worst.case} {_err(worst.err)} ({worst.err / worst.tol:.0%} of {worst.tol:.0e})"
    return Result(PASS, name, detail, took, data)


def _err(x: float) -> str:
    return "nan/inf" if x != x or x == float("inf") else f"{x:.1e}"


def run(device, seed: int, sizes: Optional[Sizes] = None) -> Iterator[Result]:
    """A result per op of the namespace (its check's, or a failure where it has none), then a failure
    per check whose op is not registered."""
    device = torch.device(device)
    sizes = sizes or (ON_GPU if device.type == "cuda" else INTERPRETED)
    ops = registered_ops()
    for i, op in enumerate(ops):
        if op not in CHECKS:
            yield Result(FAIL, f"kernel {op}", f"no doctor check for {NAMESPACE}::{op} (add one to "
                                               f"swimbench/doctor/ops.py)", None, {"op": op})
            continue
        # Triton launches on the current device: make it the one the inputs live on
        with torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext():
            result = run_one(CHECKS[op], device, sizes, seed + i)
        yield result
    for op in sorted(set(CHECKS) - set(ops)):
        yield Result(FAIL, f"kernel {op}", f"checked, but {NAMESPACE}::{op} is not a registered op", None,
                     {"op": op})


# ---------------------------------------------------------------------------------------------------
# inputs

class _Draw:
    """Fresh random tensors on one device from one generator."""

    def __init__(self, device, gen: torch.Generator):
        self.device, self.gen = device, gen

    def randn(self, *shape, dtype=torch.float32, scale=1.0):
        return (torch.randn(*shape, device=self.device, generator=self.gen) * scale).to(dtype)

    def rand(self, *shape):
        return torch.rand(*shape, device=self.device, generator=self.gen)

    def randint(self, hi, *shape):
        return torch.randint(0, hi, shape, device=self.device, generator=self.gen)

    def gates(self, T, E, k):
        """Top-k renormalised softmax gates (T, k) fp32 and their expert ids (T, k) int64."""
        g, idx = torch.softmax(self.randn(T, E), -1).topk(k, -1)
        return g / g.sum(-1, keepdim=True), idx


def _up(x: dict) -> dict:
    """The same inputs in fp32 for the reference (ids and None stay as they are)."""
    return {k: (v.float() if isinstance(v, torch.Tensor) and v.is_floating_point() else v) for k, v in x.items()}


def _rel(case, got, ref, tol):
    from ..kernels.accuracy import rel_err
    if got.shape != ref.shape:
        return Compared(f"{case} shape {tuple(got.shape)} != {tuple(ref.shape)}", float("inf"), tol)
    return Compared(case, rel_err(got, ref), tol)


def _exact(case, got, ref):
    return Compared(case, 0.0 if got.shape == ref.shape and torch.equal(got, ref) else float("inf"), 0.0)


def _tols(dtype):
    from ..kernels.accuracy import REL_TOL, STATE_TOL
    return REL_TOL[dtype], STATE_TOL


# ---------------------------------------------------------------------------------------------------
# the SSM ops: scans and decode steps, on swimbench.measure.kernel_bench's inputs (as a trained layer's)

def _case(kernel: str, sizes: Sizes, dtype, length: int):
    from ..measure.kernel_bench import DTYPES as NAMES, Case
    label = next(k for k, v in NAMES.items() if v == dtype)
    b = sizes.step_b if kernel.endswith("-step") else sizes.b
    return Case(kernel, b, length, d_inner=sizes.d, d_state=sizes.n, experts=sizes.E, top_k=sizes.k, dtype=label)


def _scan_lengths(sizes: Sizes):
    from ..kernels import _ssm
    pinned = _ssm.tuned(chunks=sizes.chunks, **({} if sizes.block_d is None else {"block_d": sizes.block_d}))
    return (("single-pass", sizes.l, _ssm.tuned(chunks=1)), (f"{sizes.chunks}-chunk", sizes.l_chunked, pinned))


def _scan(kernel: str, sizes: Sizes, dtype, device, gen, rounded_streams: bool = False) -> list:
    from ..measure import kernel_bench as kb
    tol, s_tol = _tols(dtype)
    if rounded_streams and dtype != torch.float32:
        s_tol = tol
    out = []
    for label, length, pinned in _scan_lengths(sizes):
        case = _case(kernel, sizes, dtype, length)
        x = kb.make_inputs(case, device, seed=int(torch.randint(0, 1 << 62, (1,), generator=gen, device=device)))
        with pinned, poisoned():
            y, h = kb.ours(case, x, last=True)
        y_ref, h_ref = kb.naive(case, _up(x))
        out += [_rel(f"{label} y", y, y_ref, tol), _rel(f"{label} state", h, h_ref, s_tol)]
    return out


def _step(kernel: str, sizes: Sizes, dtype, device, gen) -> list:
    from ..measure import kernel_bench as kb
    tol, s_tol = _tols(dtype)
    case = _case(kernel, sizes, dtype, 1)
    x = kb.make_inputs(case, device, seed=int(torch.randint(0, 1 << 62, (1,), generator=gen, device=device)))
    state, ref_state = x["state"].clone(), x["state"].clone()
    with poisoned():
        y = kb.ours(case, x, state=state)
    y_ref = kb.naive(case, _up(x), state=ref_state)
    return [_rel("y", y, y_ref, tol), _rel("state in place", state, ref_state, s_tol)]


def _ssm_op(op: str, kernel: str, folder: str, fused: str, naive_name: str, **kw):
    naive = getattr(importlib.import_module(f"swimbench.kernels.{folder}.naive"), naive_name)
    runner = _step if kernel.endswith("-step") else _scan

    @check(op, (f"swimbench.kernels.{folder}.fused", fused), naive)
    def _run(sizes, dtype, device, gen):
        return runner(kernel, sizes, dtype, device, gen, **kw)


_ssm_op("selective_scan", "dense", "selective_scan", "selective_scan_fused", "selective_scan_naive")
# Swimba's scan mixes the k streams into one delta, B and C rounded once to the dtype, as a dense layer's
# are (swimba_mix), then runs the dense scan: its fp32 state carries that rounding, so it is held to the
# dtype's bound, not to the bound of a state computed from unrounded inputs.
_ssm_op("swimba_scan", "swimba", "swimba_scan", "swimba_scan_fused", "swimba_scan_naive",
        rounded_streams=True)
_ssm_op("separated_scan", "separated", "separated_scan", "separated_scan_fused", "separated_scan_naive")
_ssm_op("selective_state_update", "dense-step", "state_update", "selective_state_update_fused",
        "selective_state_update_naive")
_ssm_op("swimba_state_update", "swimba-step", "state_update", "swimba_state_update_fused",
        "swimba_state_update_naive")
_ssm_op("separated_state_update", "separated-step", "state_update", "separated_state_update_fused",
        "separated_state_update_naive")


# ---------------------------------------------------------------------------------------------------
# the conv, the routing path and Swimba's mixing

from ..kernels.causal_conv1d.naive import causal_conv1d_naive, causal_conv1d_update_naive  # noqa: E402
from ..kernels.combine.naive import combine_naive  # noqa: E402
from ..kernels.gather_mm.naive import gather_mm_naive  # noqa: E402
from ..kernels.route.naive import route_naive  # noqa: E402
from ..kernels.swimba_mix.naive import swimba_mix_naive  # noqa: E402


def _in_proj_view(r: _Draw, lead: tuple, d: int, dtype):
    """x as a layer passes it: the first half of in_proj's (..., 2d) output, row stride 2d."""
    return r.randn(*lead, 2 * d, dtype=dtype)[..., :d]


@check("causal_conv1d", ("swimbench.kernels.causal_conv1d.fused", "causal_conv1d_fused"), causal_conv1d_naive)
def _conv(sizes, dtype, device, gen):
    from ..kernels import causal_conv1d
    r = _Draw(device, gen)
    x = _in_proj_view(r, (sizes.b, sizes.l_chunked), sizes.d, dtype)
    w, bias = r.randn(sizes.d, sizes.K, dtype=dtype), r.randn(sizes.d, dtype=dtype)
    with poisoned():
        y = causal_conv1d(x, w, bias, True)
    return [_rel("y", y, causal_conv1d_naive(x.float(), w.float(), bias.float(), True), _tols(dtype)[0])]


@check("causal_conv1d_update", ("swimbench.kernels.causal_conv1d.fused", "causal_conv1d_update_fused"),
       causal_conv1d_update_naive)
def _conv_step(sizes, dtype, device, gen):
    from ..kernels import causal_conv1d_update
    r = _Draw(device, gen)
    x = _in_proj_view(r, (sizes.step_b,), sizes.d, dtype)
    w, bias = r.randn(sizes.d, sizes.K, dtype=dtype), r.randn(sizes.d, dtype=dtype)
    state = r.randn(sizes.step_b, sizes.d, sizes.K, dtype=dtype)
    ref_state = state.clone()
    with poisoned():
        y = causal_conv1d_update(x, state, w, bias, True)
    y_ref = causal_conv1d_update_naive(x, ref_state, w, bias, True)
    return [_rel("y", y, y_ref, _tols(dtype)[0]), _exact("state shifted in place", state, ref_state)]


@check("combine", ("swimbench.kernels.combine.fused", "combine_fused"), combine_naive)
def _combine(sizes, dtype, device, gen):
    from ..kernels import combine
    r = _Draw(device, gen)
    gates, _ = r.gates(sizes.T, sizes.E, sizes.k)
    values = r.randn(sizes.T, sizes.k, sizes.d, dtype=dtype)
    with poisoned():
        out = combine(gates, values)
    return [_rel("out", out, combine_naive(gates, values.float()), _tols(dtype)[0])]


@check("gather_mm", ("swimbench.kernels.gather_mm.fused", "gather_mm_fused"), gather_mm_naive)
def _gather_mm(sizes, dtype, device, gen):
    from ..kernels import gather_mm
    from ..layers.dispatch import capacity_of
    r = _Draw(device, gen)
    T, k, E = sizes.T, sizes.k, sizes.E
    w = r.randn(E, sizes.Kd, sizes.N, dtype=dtype, scale=sizes.Kd ** -0.5)
    out = []
    # a routed projection's slots (one row per token), and MoE-Mamba's FFN (one row per slot, capacity, GELU)
    for case, rows, capped in (("projection", T, False), ("ffn, capacity and gelu", T * k, True)):
        x = r.randn(rows, sizes.Kd, dtype=dtype)
        idx = r.randint(E, T, k)
        cap = 0
        if capped:
            idx[:, 0] = 1                                       # overload expert 1 so that slots drop
            cap = capacity_of(1.0, T * k, E)
        with poisoned():
            got = gather_mm(x, w, idx, cap, capped)
        out.append(_rel(case, got, gather_mm_naive(x.float(), w.float(), idx, cap, capped), _tols(dtype)[0]))
    return out


@check("route", ("swimbench.kernels.route.fused", "route_fused"), route_naive)
def _route(sizes, dtype, device, gen):
    from ..kernels import route
    r = _Draw(device, gen)
    tol = _tols(dtype)[0]
    x = r.randn(sizes.T, sizes.Kd, dtype=dtype)
    w = r.randn(sizes.E, sizes.Kd, dtype=dtype, scale=sizes.Kd ** -0.5)
    probs = torch.softmax(x.float() @ w.float().t(), -1)
    out = []
    for mode in ("learned", "balanced"):
        with poisoned():
            g, idx = route(x, w, sizes.k, mode)
        _, idx_ref = route_naive(x, w, sizes.k, mode)
        chosen = probs.gather(-1, idx.clamp(0, sizes.E - 1))
        out.append(_rel(f"{mode} gates", g, chosen / chosen.sum(-1, keepdim=True), tol))
        if mode == "learned":
            # the k largest weights up to the logits' rounding (near-ties may swap), each expert once
            top = bool((chosen >= probs.topk(sizes.k, -1).values[:, -1:] - tol).all()
                       and (idx.sort(-1).values.diff(dim=-1) > 0).all())
            out.append(Compared("learned ids: the top k, each once", 0.0 if top else float("inf"), 0.0))
        else:
            out.append(_exact(f"{mode} ids", idx, idx_ref))
    return out


@check("swimba_mix", ("swimbench.kernels.swimba_mix.fused", "swimba_mix_fused"), swimba_mix_naive)
def _swimba_mix(sizes, dtype, device, gen):
    from ..kernels import swimba_mix
    r = _Draw(device, gen)
    T, k, d, n, E = sizes.T, sizes.k, sizes.d, sizes.n, sizes.E
    gates, idx = r.gates(T, E, k)
    perm = r.rand(T * k).argsort()                                    # rows in the dispatch's order
    pos = torch.empty_like(perm).scatter_(0, perm, torch.arange(T * k, device=device)).view(T, k)
    dbl = r.randn(T * k, 3 + 2 * n, dtype=dtype)                      # x_proj's output: dt rank 3, B, C
    x = dict(dt=r.randn(T * k, d, dtype=dtype, scale=0.5), B=dbl[:, 3:3 + n], C=dbl[:, 3 + n:], pos=pos,
             gates=gates, idx=idx, delta_bias=r.randn(E, d, scale=0.5))
    with poisoned():
        delta, bc = swimba_mix(**x, delta_softplus=True)
    d_ref, bc_ref = swimba_mix_naive(**_up(x), delta_softplus=True)
    tol = _tols(dtype)[0]
    return [_rel("delta", delta, d_ref, tol), _rel("B and C", bc, bc_ref, tol)]


def main(argv=None) -> int:
    """The checks of this process's device, one JSON line per op (what the engine reads)."""
    p = argparse.ArgumentParser(prog="python -m swimbench.doctor.ops")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    for result in run(args.device, args.seed):
        print(json.dumps(result.as_dict()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
