"""swimbench::gather_mm and swimbench::route, the small-batch routed path: the Triton kernels
(interpreted) against their references, on fresh random inputs at sizes that are not powers of two,
outputs poisoned; the gathered path against the sorted dispatch it replaces."""
import pytest
import torch

import swimbench.kernels as K
from swimbench.kernels import _split
from swimbench.kernels.gather_mm.fused import gather_mm_fused
from swimbench.kernels.gather_mm.naive import gather_mm_naive, kept
from swimbench.kernels.route.fused import route_fused
from swimbench.kernels.route.naive import MODES, forced, route_naive
from swimbench.layers.dispatch import Dispatch, Gathered, capacity_of, path

from ..helpers import REL_TOL, rel_err

DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def _inputs(T, k, E, Kd, N, per_slot, dtype):
    x = torch.randn(T * k if per_slot else T, Kd).to(dtype)
    w = (torch.randn(E, Kd, N) / Kd ** 0.5).to(dtype)
    return x, w, torch.randint(0, E, (T, k))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("T,k,E,Kd,N,per_slot", [(1, 1, 7, 301, 45, False), (3, 2, 5, 262, 70, False),
                                                  (5, 2, 3, 200, 33, True), (11, 3, 6, 129, 17, True),
                                                  (21, 3, 16, 75, 160, False)])
def test_gather_mm_matches_reference(poisoned, dtype, T, k, E, Kd, N, per_slot):
    x, w, idx = _inputs(T, k, E, Kd, N, per_slot, dtype)
    out = gather_mm_fused(x, w, idx)
    assert out.shape == (T * k, N) and out.dtype == dtype
    assert rel_err(out, gather_mm_naive(x, w, idx)) < REL_TOL[dtype]


@pytest.mark.parametrize("split", [1, 2, 3])
def test_gather_mm_split_k_sums_every_part_once_and_resets_its_counters(poisoned, split):
    """The K split's partial sums are added by the last program of each block; the counters it leaves
    behind are zero, so a second call (as a graph replay would) gives the same bits."""
    x, w, idx = _inputs(2, 2, 5, 517, 37, False, torch.float32)
    first = gather_mm_fused(x, w, idx, SPLIT=split, BK=64)
    assert rel_err(first, gather_mm_naive(x, w, idx)) < REL_TOL[torch.float32]
    assert torch.equal(first, gather_mm_fused(x, w, idx, SPLIT=split, BK=64))
    assert _split.all_zero()


@pytest.mark.parametrize("cf", [0.5, 1.0, 1.25])
def test_gather_mm_capacity_and_gelu(poisoned, cf):
    T, k, E = 13, 2, 4
    x, w, idx = _inputs(T, k, E, 90, 41, False, torch.float32)
    idx[:, 0] = 1                                 # overload expert 1 so that slots drop
    cap = capacity_of(cf, T * k, E)
    out = gather_mm_fused(x, w, idx, cap, True)
    keep = kept(idx, E, cap)
    assert (~keep).any()
    assert torch.all(out[~keep] == 0)
    assert rel_err(out, gather_mm_naive(x, w, idx, cap, True)) < REL_TOL[torch.float32]


@pytest.mark.parametrize("gelu,cf", [(False, None), (True, 1.0)])
def test_gathered_path_equals_sorted_dispatch(gelu, cf):
    """Both dispatches give the same slots in token order, drops included."""
    T, k, E = 9, 2, 5
    x, w, idx = _inputs(T, k, E, 47, 23, False, torch.float32)
    idx[:5, 0] = 2
    g, s = Gathered.build(idx, E, cf), Dispatch.build(idx, E, cf)
    a = g.scatter(g.mm(g.gather(x), w, gelu=gelu))
    b = s.scatter(s.mm(s.gather(x), w, gelu=gelu))
    assert rel_err(a, b) < REL_TOL[torch.float32]
    rows = g.positions()
    assert torch.equal(rows, torch.arange(T * k).view(T, k))


def test_dispatch_path_rule():
    assert path(1) == "gathered" and path(64) == "gathered" and path(65) == "sorted"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("T,Kd,E,k", [(1, 100, 8, 1), (37, 130, 5, 2), (70, 43, 3, 3), (19, 64, 17, 4)])
@pytest.mark.parametrize("split", [0, 1, 3])
def test_route_matches_reference(poisoned, mode, dtype, T, Kd, E, k, split):
    x = torch.randn(T, Kd).to(dtype)
    w = (torch.randn(E, Kd) / Kd ** 0.5).to(dtype)
    g, i = route_fused(x, w, k, mode, split)
    assert _split.all_zero()
    _, ir = route_naive(x, w, k, mode)
    assert i.dtype == torch.int64 and g.dtype == torch.float32
    assert torch.allclose(g.sum(-1), torch.ones(T), atol=1e-6)
    assert ((i >= 0) & (i < E)).all()
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    probs = torch.softmax((x.float() @ w.float().t()), -1)
    chosen = probs.gather(-1, i)
    if mode == "learned":
        # the k largest weights, up to the logits' rounding (near-ties may swap), each expert once
        assert (chosen >= probs.topk(k, -1).values[:, -1:] - tol).all()
        assert (i.sort(-1).values.diff(dim=-1) > 0).all()
    else:
        assert torch.equal(i, ir)             # forced: the pattern, whatever the logits
    assert (g - chosen / chosen.sum(-1, keepdim=True)).abs().max().item() < tol


@pytest.mark.parametrize("E,k", [(2, 1), (8, 2), (7, 3)])
def test_forced_patterns(E, k):
    bal = forced(5 * E, E, k, "balanced", "cpu")
    assert torch.equal(torch.bincount(bal.reshape(-1), minlength=E), torch.full((E,), 5 * k))
    sk = forced(4000, E, k, "skewed", "cpu")
    counts = torch.bincount(sk[:, 0], minlength=E).float() / 4000
    assert abs(counts[0].item() - E ** (-1 / 3)) < 0.02
    assert (sk[:, 1:] == (sk[:, :1] + torch.arange(1, k)) % E).all()


def test_ops_dispatch_to_kernels(triton_ops, monkeypatch):
    from swimbench.kernels import _dispatch
    from swimbench.kernels.gather_mm import fused as gf
    from swimbench.kernels.route import fused as rf
    calls = []
    for mod, name in ((gf, "gather_mm_fused"), (rf, "route_fused")):
        real = getattr(mod, name)
        monkeypatch.setattr(mod, name, lambda *a, _r=real, _n=name, **kw: calls.append(_n) or _r(*a, **kw))
    _dispatch.load_fused.cache_clear()
    x, w, idx = _inputs(3, 2, 4, 33, 19, False, torch.float32)
    assert rel_err(K.gather_mm(x, w, idx), gather_mm_naive(x, w, idx)) < REL_TOL[torch.float32]
    g, i = K.route(x, torch.randn(4, 33), 2, "learned")
    assert calls == ["gather_mm_fused", "route_fused"] and g.shape == (3, 2) and i.shape == (3, 2)
    _dispatch.load_fused.cache_clear()
    with pytest.raises(ValueError, match="mode must be one of"):
        K.route(x, torch.randn(4, 33), 2, "nope")
