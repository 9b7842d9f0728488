"""Kernel-level benchmark and checks of the scan and state-update ops, beside mamba-ssm's kernels.

Used by `swimbench kernels` and the GPU suite (tests/gpu/test_kernels.py). For each case it reports the median time,
state updates per second (one state update = one token advancing one sequence's whole SSM state,
so b*l per scan and b per decode step), the fewest bytes the op must move (every input read once,
every output written once; a decode step reads and writes its state) and that over the measured
device-to-device copy bandwidth.

Scans and decode steps are replayed from a CUDA graph (`triton.testing.do_bench_cudagraph`,
medians), so that Python's launch cost stays out; steps rotate through enough state caches that
they cannot sit in L2.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import mamba_ref
from ..designs import bench_kernels

from ..kernels import _ssm
from ..kernels.accuracy import rel_err
from ..kernels.selective_scan import selective_scan
from ..kernels.selective_scan.naive import selective_scan_naive
from ..kernels.separated_scan import separated_scan
from ..kernels.separated_scan.naive import separated_scan_naive
from ..kernels.state_update import separated_state_update, selective_state_update, swimba_state_update
from ..kernels.state_update.naive import (separated_state_update_naive, selective_state_update_naive,
                                 swimba_state_update_naive)
from ..kernels.swimba_scan import swimba_scan
from ..kernels.swimba_scan.naive import mix_streams, swimba_scan_naive

KERNELS = bench_kernels()              # each recurrence the designs run (swimbench.designs), scan and step
SCANS = tuple(k for k in KERNELS if not k.endswith("-step"))
STEPS = tuple(k for k in KERNELS if k.endswith("-step"))
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


@dataclass(frozen=True)
class Case:
    """One kernel at one shape. `d_inner` is the per-expert width; dense ignores experts and top_k."""
    kernel: str
    batch: int
    length: int
    d_inner: int = 4096
    d_state: int = 16
    experts: int = 8
    top_k: int = 2
    dtype: str = "bf16"

    def __post_init__(self):
        if self.kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {', '.join(KERNELS)}")
        if self.kernel.endswith("-step"):
            object.__setattr__(self, "length", 1)
        if self.kernel.startswith("dense"):
            object.__setattr__(self, "experts", 1)
            object.__setattr__(self, "top_k", 1)
        if not 1 <= self.top_k <= self.experts:
            raise ValueError("top_k must be between 1 and experts")

    @property
    def design(self) -> str:
        return self.kernel.split("-")[0]

    @property
    def step(self) -> bool:
        return self.kernel.endswith("-step")

    @property
    def label(self) -> str:
        k = {"dense": "", "swimba": f" E{self.experts} k{self.top_k}", "separated": f" E{self.experts}"}[self.design]
        return f"{self.kernel}{k} b{self.batch}" + ("" if self.step else f" l{self.length}")


# ---------------------------------------------------------------------------------------------
# inputs


def _gates(scores: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Top-k renormalised softmax gates (fp32) and their expert ids (int64)."""
    g, idx = torch.softmax(scores.float(), -1).topk(k, dim=-1)
    return g / g.sum(-1, keepdim=True), idx


def make_inputs(case: Case, device, seed: Optional[int] = None) -> dict:
    """Random inputs shaped as the op wants them, drawn as a trained layer would see them:
    delta bias from mamba's dt init (softplus^-1 of U(1e-3, 1e-1)), A = -exp(A_log) in [-N, -1]."""
    gen = torch.Generator(device=device)
    gen.manual_seed(seed if seed is not None else torch.seed() % (1 << 62))
    dt_ = DTYPES[case.dtype]
    b, l, d, n, E, k = case.batch, case.length, case.d_inner, case.d_state, case.experts, case.top_k

    def rn(*shape, dtype=dt_, scale=1.0):
        return (torch.randn(*shape, device=device, generator=gen) * scale).to(dtype)

    def bias(*shape):
        dt0 = torch.rand(*shape, device=device, generator=gen) * (0.1 - 1e-3) + 1e-3
        return dt0 + torch.log(-torch.expm1(-dt0))            # softplus^-1

    def A(*shape):
        return -torch.exp(torch.rand(*shape, device=device, generator=gen) * math.log(n))

    lead = (b,) if case.step else (b, l)
    x = dict(u=rn(*lead, d), z=rn(*lead, d))
    if case.design == "dense":
        x.update(dt=rn(*lead, d, scale=0.5), A=A(d, n), B=rn(*lead, n), C=rn(*lead, n), D=rn(d, dtype=torch.float32),
                 bias=bias(d))
    elif case.design == "swimba":
        g, idx = _gates(torch.randn(*lead, E, device=device, generator=gen), k)
        x.update(dt=rn(*lead, k, d, scale=0.5), A=A(d, n), B=rn(*lead, k, n), C=rn(*lead, k, n), gates=g, idx=idx,
                 D=rn(d, dtype=torch.float32), bias=bias(E, d))
    else:
        g, idx = _gates(torch.randn(*lead, E, device=device, generator=gen), k)
        gates = torch.zeros(*lead, E, device=device).scatter_(-1, idx, g)
        x.update(dt=rn(*lead, E, d, scale=0.5), A=A(E, d, n), B=rn(*lead, E, n), C=rn(*lead, E, n), gates=gates,
                 D=rn(E, d, dtype=torch.float32), bias=bias(E, d))
    if case.step:
        G = E if case.design == "separated" else 1
        shape = (b, G, d, n) if case.design == "separated" else (b, d, n)
        x["state"] = torch.randn(*shape, device=device, generator=gen) * 0.5
    return x


# ---------------------------------------------------------------------------------------------
# the ops, ours, the references and mamba-ssm's


def ours(case: Case, x: dict, state: Optional[Tensor] = None, last: bool = False):
    """Our op on `x` (through torch.ops.swimbench, so dispatch is exercised). Steps update `state`
    (default x['state']) in place and return y; scans return y, or (y, final state) with `last`."""
    if case.step:
        s = x["state"] if state is None else state
        if case.design == "dense":
            return selective_state_update(s, x["u"], x["dt"], x["A"], x["B"], x["C"], x["D"], x["z"], x["bias"], True)
        if case.design == "swimba":
            return swimba_state_update(s, x["u"], x["dt"], x["A"], x["B"], x["C"], x["gates"], x["idx"], x["D"],
                                       x["z"], x["bias"], True)
        return separated_state_update(s, x["u"], x["dt"], x["A"], x["B"], x["C"], x["gates"], x["D"], x["z"],
                                      x["bias"], True)
    if case.design == "dense":
        return selective_scan(x["u"], x["dt"], x["A"], x["B"], x["C"], x["D"], x["z"], x["bias"], True, last)
    if case.design == "swimba":
        return swimba_scan(x["u"], x["dt"], x["A"], x["B"], x["C"], x["gates"], x["idx"], x["D"], x["z"], x["bias"],
                           True, last)
    return separated_scan(x["u"], x["dt"], x["A"], x["B"], x["C"], x["gates"], x["D"], x["z"], x["bias"], True,
                          last)


def naive(case: Case, x: dict, state: Optional[Tensor] = None):
    """The pure-PyTorch reference: scans return (y, final state); steps update `state` and return y."""
    if case.step:
        s = x["state"].clone() if state is None else state
        if case.design == "dense":
            return selective_state_update_naive(s, x["u"], x["dt"], x["A"], x["B"], x["C"], x["D"], x["z"],
                                                x["bias"], True)
        if case.design == "swimba":
            return swimba_state_update_naive(s, x["u"], x["dt"], x["A"], x["B"], x["C"], x["gates"], x["idx"],
                                             x["D"], x["z"], x["bias"], True)
        return separated_state_update_naive(s, x["u"], x["dt"], x["A"], x["B"], x["C"], x["gates"], x["D"], x["z"],
                                            x["bias"], True)
    if case.design == "dense":
        return selective_scan_naive(x["u"], x["dt"], x["A"], x["B"], x["C"], x["D"], x["z"], x["bias"], True, True)
    if case.design == "swimba":
        return swimba_scan_naive(x["u"], x["dt"], x["A"], x["B"], x["C"], x["gates"], x["idx"], x["D"], x["z"],
                                 x["bias"], True, True)
    return separated_scan_naive(x["u"], x["dt"], x["A"], x["B"], x["C"], x["gates"], x["D"], x["z"], x["bias"],
                                True, True)


def _cm(t: Tensor) -> Tensor:
    """Token-major (b, l, c) to mamba's channel-major (b, c, l)."""
    return t.transpose(1, 2).contiguous()


def _mamba_streams(case: Case, x: dict, e: Optional[int]) -> dict:
    """The inputs one mamba-ssm call sees: a dense layer's own; Swimba's mixed on the host (delta already
    through bias and softplus); expert e's for the separated design. The last two in fp32, since mamba-ssm
    wants delta, B and C in u's dtype and rounding the mixed values would blur the comparison."""
    if case.design == "dense":
        return dict(u=x["u"], dt=x["dt"], A=x["A"], B=x["B"], C=x["C"], D=x["D"], z=x["z"], bias=x["bias"], sp=True)
    if case.design == "swimba":
        delta, Bm, Cm = mix_streams(x["dt"], x["B"], x["C"], x["gates"], x["idx"], x["bias"], True)
        # zero bias rather than none: mamba-ssm 2.3.2's state update indexes dt_bias unconditionally
        return dict(u=x["u"].float(), dt=delta, A=x["A"], B=Bm, C=Cm, D=x["D"], z=x["z"].float(),
                    bias=torch.zeros_like(x["D"]), sp=False)
    return dict(u=x["u"].float(), dt=x["dt"][..., e, :].float(), A=x["A"][e], B=x["B"][..., e, :].float(),
                C=x["C"][..., e, :].float(), D=x["D"][e], z=None, bias=x["bias"][e], sp=True)


def mamba(case: Case, x: dict) -> Optional[Callable]:
    """mamba-ssm's kernel for the dense design on inputs laid out for it (transposed here, outside any
    timing): a call of no argument for a scan, of the state for a step; None where not importable."""
    if case.design != "dense" or not x["u"].is_cuda:
        return None
    if case.step:
        fn = mamba_ref.selective_state_update()
        if fn is None:
            return None
        return lambda s: fn(s, x["u"], x["dt"], x["A"], x["B"], x["C"], D=x["D"], z=x["z"], dt_bias=x["bias"],
                            dt_softplus=True)
    fn = mamba_ref.selective_scan_fn()
    if fn is None:
        return None
    u, dt, B, C, z = (_cm(x[k]) for k in ("u", "dt", "B", "C", "z"))
    return lambda: fn(u, dt, x["A"], B, C, D=x["D"], z=z, delta_bias=x["bias"], delta_softplus=True)


def mamba_reference(case: Case, x: dict, state: Optional[Tensor] = None) -> Optional[Tensor]:
    """y of every design computed with mamba-ssm's kernels (scan: CUDA selective_scan_fn; step: Triton
    selective_state_update), None where they are not importable. Steps update `state` in place."""
    if case.step:
        fn = mamba_ref.selective_state_update()
        if fn is None:
            return None
        s = x["state"].clone() if state is None else state
        if case.design != "separated":
            m = _mamba_streams(case, x, None)
            return fn(s, m["u"], m["dt"], m["A"], m["B"], m["C"], D=m["D"], z=m["z"], dt_bias=m["bias"],
                      dt_softplus=m["sp"])
        y = 0.0
        for e in range(case.experts):
            m = _mamba_streams(case, x, e)
            y_e = fn(s[:, e], m["u"], m["dt"], m["A"], m["B"], m["C"], D=m["D"], dt_bias=m["bias"], dt_softplus=True)
            y = y + x["gates"][:, e, None] * y_e.float()
        return y * F.silu(x["z"].float())
    fn = mamba_ref.selective_scan_fn()
    if fn is None:
        return None

    def one(m):
        bias = m["bias"].float() if m["bias"] is not None else None
        y = fn(_cm(m["u"]), _cm(m["dt"]), m["A"], _cm(m["B"]), _cm(m["C"]), D=m["D"],
               z=_cm(m["z"]) if m["z"] is not None else None, delta_bias=bias, delta_softplus=m["sp"])
        return y.transpose(1, 2)

    if case.design != "separated":
        return one(_mamba_streams(case, x, None))
    y = sum(x["gates"][..., e, None] * one(_mamba_streams(case, x, e)).float() for e in range(case.experts))
    return y * F.silu(x["z"].float())


# ---------------------------------------------------------------------------------------------
# checks


def check(case: Case, device, with_mamba: bool = True, seed: Optional[int] = None) -> dict:
    """Relative errors of our op against the reference (y, and the final or updated state), and of y
    against mamba-ssm's kernels where importable."""
    x = make_inputs(case, device, seed)
    row = dict(case=case.label)
    if case.step:
        s = x["state"].clone()
        y = ours(case, x, state=s)
        s_ref = x["state"].clone()
        y_ref = naive(case, x, state=s_ref)
        row.update(y_vs_naive=rel_err(y, y_ref), state_vs_naive=rel_err(s, s_ref))
    else:
        y, h = ours(case, x, last=True)
        y_ref, h_ref = naive(case, x)
        row.update(y_vs_naive=rel_err(y, y_ref), state_vs_naive=rel_err(h, h_ref))
    if with_mamba and x["u"].is_cuda:
        y_m = mamba_reference(case, x)
        if y_m is not None:
            row.update(y_vs_mamba=rel_err(y, y_m), mamba_vs_naive=rel_err(y_m, y_ref))
    return row


# ---------------------------------------------------------------------------------------------
# timing


def copy_bandwidth(device, nbytes: int = 1 << 30) -> float:
    """Bytes per second of a large device-to-device copy, counting bytes read and written; measured
    where the latency run measures it (swimbench.measure.ceilings)."""
    from .ceilings import copy_gbps
    return copy_gbps(device, nbytes) * 1e9


def min_bytes(case: Case, x: dict) -> int:
    """Each input read once and each output written once (y; a step's state is read and written)."""
    read = sum(t.nbytes for t in x.values())
    return read + x["u"].nbytes + (x["state"].nbytes if case.step else 0)


_WARMUP_MS = 200


def _l2_bytes(device) -> int:
    return getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 50 << 20)


def time_ms(case: Case, x: dict, fn: Callable, rep_ms: int = 100) -> float:
    """Median milliseconds of fn(), replayed from a CUDA graph. A scan is a few launches whose Python
    side (the custom op, Triton's argument binding) outlasts the GPU's work at short lengths (H200,
    2026-12-01: the dense scan at b1 l2048 timed 0.316 ms by events around eager calls); a graph
    replays only the GPU's part. Steps rotate through copies of the state (so that 4x the L2 size
    separates two visits of one copy); fn takes the state then."""
    from triton.testing import do_bench, do_bench_cudagraph
    # 200 ms of warm-up: after seconds of compiling the GPU idles at low clocks, and 25 ms did not bring
    # them up (H100, 2026-11-23: the first case timed ran 19% slower than the same case timed again)
    if not case.step:
        do_bench(fn, warmup=_WARMUP_MS, rep=1)          # compiles and autotunes before the capture
        return do_bench_cudagraph(fn, rep=rep_ms, return_mode="median")
    sets = max(1, min(1024, math.ceil(4 * _l2_bytes(x["state"].device) / x["state"].nbytes)))
    states = [x["state"].clone() for _ in range(sets)]
    turn = [0]

    def step():
        s = states[turn[0] % sets]
        turn[0] += 1
        return fn(s)

    do_bench(step, warmup=_WARMUP_MS, rep=1)
    ms = do_bench_cudagraph(step, rep=rep_ms, return_mode="median")
    states.clear()
    return ms


def _row(case: Case, impl: str, ms: float, nbytes: int, copy_bw: float, plan: str = "") -> dict:
    """flops: 2 x the op's multiply-adds (kernels/flops.py; the inputs always carry D and z), one
    token per state update."""
    from ..kernels.flops import selective_scan_macs, separated_scan_macs, swimba_scan_macs
    updates = case.batch * case.length
    u, d, n = (updates, case.d_inner), case.d_inner, case.d_state
    macs = {"dense": lambda: selective_scan_macs(u, (d, n), True, True),
            "swimba": lambda: swimba_scan_macs(u, (d, n), (updates, case.top_k, d), True, True),
            "separated": lambda: separated_scan_macs(u, (case.experts, d, n), True, True)}[case.design]()
    return dict(kernel=case.kernel, impl=impl, **{k: v for k, v in asdict(case).items() if k != "kernel"},
                ms=ms, us=ms * 1e3, state_updates_per_s=updates / (ms * 1e-3), bytes=nbytes, flops=2 * macs,
                gbps=nbytes / (ms * 1e-3) / 1e9, frac_copy_bw=nbytes / (ms * 1e-3) / copy_bw, plan=plan)


def describe_plan(case: Case, device) -> str:
    """The block and chunk choice `_ssm.plan` makes for this case, as text."""
    p = _ssm.plan(case.batch, case.length, case.d_inner, 1 << (case.d_state - 1).bit_length(), torch.device(device))
    return f"bd{p.block_d} w{p.num_warps} c{p.chunks}"


def bench(case: Case, device, copy_bw: float, with_mamba: bool = True, rep_ms: int = 100,
          seed: Optional[int] = None) -> list[dict]:
    """Rows for our op and, for the dense design where importable, mamba-ssm's kernel."""
    x = make_inputs(case, device, seed)
    nbytes = min_bytes(case, x)
    rows = []
    fn = (lambda s: ours(case, x, state=s)) if case.step else (lambda: ours(case, x))
    rows.append(_row(case, "swimbench", time_ms(case, x, fn, rep_ms), nbytes, copy_bw, describe_plan(case, device)))
    m = mamba(case, x) if with_mamba else None
    if m is not None:
        rows.append(_row(case, f"mamba-ssm {mamba_ref.version()}", time_ms(case, x, m, rep_ms), nbytes, copy_bw))
    return rows


__all__ = ["Case", "KERNELS", "SCANS", "STEPS", "DTYPES", "make_inputs", "ours", "naive", "mamba", "mamba_reference",
           "check", "rel_err", "copy_bandwidth", "min_bytes", "time_ms", "bench", "describe_plan"]
