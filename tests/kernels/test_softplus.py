"""The kernels' softplus (one exponential and a polynomial log1p) against float64, elementwise: every
scan, state update and Swimba's mixing kernel applies it to delta, so its error is every op's floor."""
import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from swimbench.kernels._ssm import _log1p_unit, _softplus


@triton.jit
def _apply(p_x, p_y, n, FN: tl.constexpr, BLOCK: tl.constexpr):
    o = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = o < n
    b_x = tl.load(p_x + o, mask=m, other=0.)
    if FN == 0:
        b_y = _softplus(b_x)
    else:
        b_y = _log1p_unit(b_x)
    tl.store(p_y + o, b_y, mask=m)


def _run(x: torch.Tensor, fn: int) -> torch.Tensor:
    y = torch.full_like(x, float("nan"))                     # poisoned: every element must be written
    _apply[(triton.cdiv(x.numel(), 1024),)](x, y, x.numel(), FN=fn, BLOCK=1024)
    return y


def _max_rel(y: torch.Tensor, ref: torch.Tensor) -> float:
    return ((y.double() - ref).abs() / ref.abs().clamp_min(1e-300)).max().item()


def test_softplus_relative_error_over_its_range():
    # random points spread over the range a delta bias and dt produce and far beyond, plus the edges of
    # the old piecewise formula (-5, 20) and the limits of fp32's exponential
    x = torch.cat([torch.randn(3001) * 4, torch.rand(2003) * 170 - 85,
                   torch.tensor([-87.0, -30.0, -5.0001, -5.0, -4.9999, -1e-6, 0.0, 1e-6, 19.99, 20.0, 20.01, 88.0])])
    y = _run(x, 0)
    assert not y.isnan().any()
    assert _max_rel(y, F.softplus(x.double())) < 2e-6


def test_log1p_polynomial_keeps_relative_accuracy_for_small_arguments():
    t = torch.cat([torch.rand(4001), 10 ** (-torch.rand(1999) * 30), torch.tensor([0.0, 1.0])])
    y = _run(t, 1)
    ref = torch.log1p(t.double())
    assert (y[t == 0] == 0).all()
    nz = t > 0
    assert _max_rel(y[nz], ref[nz]) < 1e-6


def test_softplus_propagates_nan():
    y = _run(torch.tensor([float("nan"), 1.0]), 0)
    assert y[0].isnan() and not y[1].isnan()
