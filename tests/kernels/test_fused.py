"""The Triton kernels (through Triton's interpreter on the CPU) against the pure-PyTorch references.

Fresh random inputs every run (the autouse fixture seeds from the run seed), sizes that are not
powers of two, every output buffer the kernels allocate poisoned with NaN first, each dtype, and
the relative error bounds of METHOD.md: the reference is computed in fp32 from the same
low-precision inputs.
"""
from functools import partial

import pytest
import torch

from swimbench.kernels import _ssm
from swimbench.kernels.selective_scan.fused import selective_scan_fused
from swimbench.kernels.selective_scan.naive import selective_scan_naive
from swimbench.kernels.separated_scan.fused import separated_scan_fused
from swimbench.kernels.separated_scan.naive import separated_scan_naive
from swimbench.kernels.state_update import fused as step_fused
from swimbench.kernels.state_update import naive as step_naive
from swimbench.kernels.swimba_scan.fused import swimba_scan_fused
from swimbench.kernels.swimba_scan.naive import swimba_scan_naive

from ..helpers import REL_TOL, STATE_TOL, rel_err

DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def _A(*shape):
    return -torch.exp(torch.rand(*shape) * 2.0)


def _gates(b, l, E, k):
    g, idx = torch.softmax(torch.randn(b, l, E), -1).topk(k, -1)
    return g / g.sum(-1, keepdim=True), idx


def _dense(b, l, d, n, dtype):
    return dict(u=torch.randn(b, l, d).to(dtype), delta=(torch.randn(b, l, d) * 0.5).to(dtype), A=_A(d, n),
                B=torch.randn(b, l, n).to(dtype), C=torch.randn(b, l, n).to(dtype), D=torch.randn(d),
                z=torch.randn(b, l, d).to(dtype), delta_bias=torch.randn(d) * 0.5)


def _swimba(b, l, d, n, E, k, dtype):
    g, idx = _gates(b, l, E, k)
    return dict(u=torch.randn(b, l, d).to(dtype), dt=(torch.randn(b, l, k, d) * 0.5).to(dtype), A=_A(d, n),
                B=torch.randn(b, l, k, n).to(dtype), C=torch.randn(b, l, k, n).to(dtype), gates=g, idx=idx,
                D=torch.randn(d), z=torch.randn(b, l, d).to(dtype), delta_bias=torch.randn(E, d) * 0.5)


def _separated(b, l, d, n, E, k, dtype):
    g, idx = _gates(b, l, E, k)
    return dict(u=torch.randn(b, l, d).to(dtype), dt=(torch.randn(b, l, E, d) * 0.5).to(dtype), A=_A(E, d, n),
                B=torch.randn(b, l, E, n).to(dtype), C=torch.randn(b, l, E, n).to(dtype),
                gates=torch.zeros(b, l, E).scatter_(-1, idx, g), D=torch.randn(E, d),
                z=torch.randn(b, l, d).to(dtype), delta_bias=torch.randn(E, d) * 0.5)


def _up(x: dict) -> dict:
    """The same inputs in fp32 for the reference (ids stay ints)."""
    return {k: (v.float() if v.is_floating_point() else v) for k, v in x.items()}


SCANS = {
    # name: (inputs(b, l, d, n, dtype), fused, naive)
    "dense": (lambda b, l, d, n, dt: _dense(b, l, d, n, dt), selective_scan_fused, selective_scan_naive),
    # the shared kernel's in-register mix (MIX); the layer's mix-then-scan runs the dense scan after the
    # mixing kernel, and tests/kernels/test_swimba_mix.py checks it, chunked too
    "swimba": (lambda b, l, d, n, dt: _swimba(b, l, d, n, 5, 2, dt), partial(swimba_scan_fused, mode="in-register"),
               swimba_scan_naive),
    "separated": (lambda b, l, d, n, dt: _separated(b, l, d, n, 3, 2, dt), separated_scan_fused,
                  separated_scan_naive),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("design", SCANS)
@pytest.mark.parametrize("chunks, b, l, d, n", [(1, 2, 23, 37, 5), (4, 1, 45, 70, 16)],
                         ids=["single-pass", "chunked"])
def test_scan_matches_reference(poisoned, design, dtype, chunks, b, l, d, n):
    make, fused, naive = SCANS[design]
    x = make(b, l, d, n, dtype)
    # 45 tokens in 4 chunks of 12: the last chunk is short; d = 70 over blocks of 32 leaves a partial block
    with _ssm.tuned(chunks=chunks, block_d=32 if chunks > 1 else None):
        y, h = fused(**x, delta_softplus=True, return_last_state=True)
    y_ref, h_ref = naive(**_up(x), delta_softplus=True, return_last_state=True)
    assert y.dtype == dtype and y.shape == x["u"].shape and h.shape == h_ref.shape
    assert rel_err(y, y_ref) < REL_TOL[dtype]
    assert rel_err(h, h_ref) < STATE_TOL


@pytest.mark.parametrize("design", SCANS)
def test_scan_without_options_or_final_state(poisoned, design):
    """No D, z, bias or softplus, no final state: the paths the flags switch off."""
    make, fused, naive = SCANS[design]
    x = make(2, 23, 37, 16, torch.float32)
    for key in ("D", "z", "delta_bias"):
        x.pop(key)
    x["delta" if design == "dense" else "dt"] = x["delta" if design == "dense" else "dt"].abs()
    y, h = fused(**x, delta_softplus=False, return_last_state=False)
    y_ref, _ = naive(**x, delta_softplus=False)
    assert h is None
    assert rel_err(y, y_ref) < REL_TOL[torch.float32]


def test_empty_sequence_gives_zero_state():
    x = _dense(2, 0, 37, 5, torch.float32)
    y, h = selective_scan_fused(**x, delta_softplus=True, return_last_state=True)
    assert y.shape == (2, 0, 37) and torch.equal(h, torch.zeros(2, 37, 5))


def _step_inputs(design, b, d, n, E, k, dtype):
    """One token's inputs (the scan inputs at l = 1, squeezed) and a random fp32 state."""
    if design == "dense":
        x = _dense(b, 1, d, n, dtype)
        x = dict(u=x["u"][:, 0], dt=x["delta"][:, 0], A=x["A"], B=x["B"][:, 0], C=x["C"][:, 0], D=x["D"],
                 z=x["z"][:, 0], dt_bias=x["delta_bias"])
        return x, torch.randn(b, d, n)
    x = (_swimba if design == "swimba" else _separated)(b, 1, d, n, E, k, dtype)
    x = {key: (v[:, 0] if v.dim() > 1 and v.shape[:2] == (b, 1) else v) for key, v in x.items()}
    x["dt_bias"] = x.pop("delta_bias")
    return x, torch.randn(b, E, d, n) if design == "separated" else torch.randn(b, d, n)


STEPS = {"dense": (step_fused.selective_state_update_fused, step_naive.selective_state_update_naive),
         "swimba": (step_fused.swimba_state_update_fused, step_naive.swimba_state_update_naive),
         "separated": (step_fused.separated_state_update_fused, step_naive.separated_state_update_naive)}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("design", STEPS)
def test_step_matches_reference_in_place(poisoned, design, dtype):
    fused, naive = STEPS[design]
    x, state = _step_inputs(design, 3, 70, 16, 5, 2, dtype)
    ref_state = state.clone()
    y = fused(state, **x, dt_softplus=True)
    y_ref = naive(ref_state, **_up(x), dt_softplus=True)
    assert y.dtype == dtype
    assert rel_err(y, y_ref) < REL_TOL[dtype]
    assert rel_err(state, ref_state) < STATE_TOL


def test_step_on_a_strided_cache_updates_it_in_place():
    """A state that is a view into a larger cache (here every other batch row) is still updated in place."""
    fused, naive = STEPS["dense"]
    x, _ = _step_inputs("dense", 3, 37, 5, 1, 1, torch.float32)
    cache = torch.randn(6, 37, 5)
    before = cache.clone()
    view = cache[::2]
    ref = before[::2].clone()
    y = fused(view, **x)
    y_ref = naive(ref, **x)
    assert rel_err(y, y_ref) < REL_TOL[torch.float32]
    assert rel_err(cache[::2], ref) < STATE_TOL
    assert torch.equal(cache[1::2], before[1::2])


def test_decode_continues_the_scan():
    """The scan's final state seeds decode: scan(l) then one step equals scan(l + 1)."""
    x = _dense(2, 24, 37, 5, torch.float32)
    y_all, h_all = selective_scan_fused(**x, delta_softplus=True, return_last_state=True)
    head = {k: (v[:, :23] if v.dim() == 3 else v) for k, v in x.items()}
    _, h = selective_scan_fused(**head, delta_softplus=True, return_last_state=True)
    y_last = step_fused.selective_state_update_fused(h, x["u"][:, 23], x["delta"][:, 23], x["A"], x["B"][:, 23],
                                                     x["C"][:, 23], x["D"], x["z"][:, 23], x["delta_bias"], True)
    assert rel_err(y_last, y_all[:, 23]) < REL_TOL[torch.float32]
    assert rel_err(h, h_all) < STATE_TOL


def test_plan_chunks_long_sequences_only_when_programs_are_few():
    cpu = torch.device("cpu")
    few = _ssm.plan(1, 8192, 4096, 16, cpu)
    many = _ssm.plan(64, 8192, 4096, 16, cpu)
    short = _ssm.plan(1, 100, 4096, 16, cpu)
    assert few.chunks > 1 and many.chunks == 1 and short.chunks == 1
    with _ssm.tuned(chunks=3, block_d=64):
        p = _ssm.plan(64, 8192, 4096, 16, cpu)
        assert (p.chunks, p.block_d) == (3, 64)
    assert _ssm.plan(64, 8192, 4096, 16, cpu) == many
    with pytest.raises(TypeError):
        with _ssm.tuned(bogus=1):
            pass


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("rank", [4, 3], ids=["word-aligned", "odd-offset"])
@pytest.mark.parametrize("chunks", [1, 3])
def test_scan_and_step_read_views_in_place(poisoned, dtype, rank, chunks):
    """As the dense layer calls them: z a view of in_proj's output (row stride 2d), B and C views of
    x_proj's (row stride rank + 2n, after the dt columns). An odd rank puts B and C off 4-byte words,
    so 16-bit values cannot be read in pairs; both layouts must give the reference's answer."""
    b, l, d, n = 2, 31, 70, 16
    x = _dense(b, l, d, n, dtype)
    xz = torch.randn(b, l, 2 * d).to(dtype)
    dbl = torch.randn(b, l, rank + 2 * n).to(dtype)
    x.update(z=xz[..., d:], B=dbl[..., rank:rank + n], C=dbl[..., rank + n:])
    with _ssm.tuned(chunks=chunks, block_d=32 if chunks > 1 else None):
        y, h = selective_scan_fused(**x, delta_softplus=True, return_last_state=True)
    y_ref, h_ref = selective_scan_naive(**_up(x), delta_softplus=True, return_last_state=True)
    assert rel_err(y, y_ref) < REL_TOL[dtype] and rel_err(h, h_ref) < STATE_TOL
    state, ref_state = h_ref.clone(), h_ref.clone()
    t = l - 1
    y1 = step_fused.selective_state_update_fused(state, x["u"][:, t], x["delta"][:, t], x["A"], x["B"][:, t],
                                                 x["C"][:, t], x["D"], x["z"][:, t], x["delta_bias"], True)
    y1_ref = step_naive.selective_state_update_naive(ref_state, *(_up(x)[k][:, t] for k in ("u", "delta")),
                                                     x["A"], *(_up(x)[k][:, t] for k in ("B", "C")), x["D"],
                                                     _up(x)["z"][:, t], x["delta_bias"], True)
    assert rel_err(y1, y1_ref) < REL_TOL[dtype] and rel_err(state, ref_state) < STATE_TOL
