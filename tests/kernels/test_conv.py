"""The causal depthwise conv kernels (Triton interpreter) against their references: strided token-major
views as the layer passes them, sizes that are not powers of two, outputs poisoned, each dtype."""
import pytest
import torch

from swimbench.kernels.causal_conv1d.fused import causal_conv1d_fused, causal_conv1d_update_fused
from swimbench.kernels.causal_conv1d.naive import causal_conv1d_naive, causal_conv1d_update_naive

from ..helpers import REL_TOL, rel_err

DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def _in_proj_view(b, l, d, dtype):
    """x as the layer's view of in_proj's output: the first half of (b, l, 2d), row stride 2d."""
    return torch.randn(b, l, 2 * d).to(dtype)[..., :d]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("b,l,d,K", [(2, 45, 70, 4), (3, 2, 37, 3), (1, 33, 129, 4)])
def test_conv_matches_reference_on_a_view(poisoned, dtype, b, l, d, K):
    x = _in_proj_view(b, l, d, dtype)
    w, bias = torch.randn(d, K).to(dtype), torch.randn(d).to(dtype)
    y = causal_conv1d_fused(x, w, bias, True)
    ref = causal_conv1d_naive(x.float(), w.float(), bias.float(), True)
    assert y.shape == (b, l, d) and y.dtype == dtype and y.is_contiguous()
    assert rel_err(y, ref) < REL_TOL[dtype]


def test_conv_is_causal_and_optional_parts_switch_off(poisoned):
    """No bias, no SiLU: a plain causal conv; changing token t leaves every output before t unchanged."""
    x, w = torch.randn(2, 29, 37), torch.randn(37, 4)
    y = causal_conv1d_fused(x, w, None, False)
    assert rel_err(y, causal_conv1d_naive(x, w, None, False)) < REL_TOL[torch.float32]
    x2 = x.clone()
    x2[:, 17] += 1.0
    y2 = causal_conv1d_fused(x2, w, None, False)
    assert torch.equal(y2[:, :17], y[:, :17]) and not torch.equal(y2[:, 17:21], y[:, 17:21])


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_conv_step_matches_reference_in_place(poisoned, dtype):
    b, d, K = 3, 70, 4
    x = _in_proj_view(b, 1, d, dtype)[:, 0]
    w, bias = torch.randn(d, K).to(dtype), torch.randn(d).to(dtype)
    state = torch.randn(b, d, K).to(dtype)
    ref_state = state.clone()
    y = causal_conv1d_update_fused(x, state, w, bias, True)
    y_ref = causal_conv1d_update_naive(x, ref_state, w, bias, True)
    assert rel_err(y, y_ref) < REL_TOL[dtype]
    assert torch.equal(state, ref_state)          # a shift: exact


def test_steps_continue_the_prefill():
    """Prefill of l tokens, its last K inputs as the state, then steps: the same outputs as prefill of
    l + 3; the state view of a larger cache (every other batch row) is updated in place."""
    b, l, d, K = 2, 11, 37, 4
    x, w, bias = torch.randn(b, l + 3, d), torch.randn(d, K), torch.randn(d)
    full = causal_conv1d_fused(x, w, bias, True)
    cache = torch.randn(2 * b, d, K)
    other = cache[1::2].clone()
    state = cache[::2]
    state.copy_(x[:, l - K:l].transpose(1, 2))
    for t in range(l, l + 3):
        y = causal_conv1d_update_fused(x[:, t], state, w, bias, True)
        assert rel_err(y, full[:, t]) < REL_TOL[torch.float32]
    assert torch.equal(cache[1::2], other)
