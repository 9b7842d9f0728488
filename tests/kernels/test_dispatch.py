"""The custom ops (torch.ops.swimbench.*) run the Triton kernels under TRITON_INTERPRET=1, and the
reference without it on CPU tensors."""
import importlib

import pytest
import torch

import swimbench.kernels as K
from swimbench.kernels import _dispatch

from ..helpers import REL_TOL, rel_err
from .test_fused import _dense, _separated, _step_inputs, _swimba

@pytest.fixture(autouse=True)
def _through_the_ops(triton_ops):
    """These tests are about the ops' dispatch to the Triton kernels."""


# op -> (fused module, name of the shared launcher it calls, call through the public op, reference)
OPS = {
    "selective_scan": ("selective_scan", "ssm_scan"),
    "swimba_scan": ("swimba_scan", "swimba_mix_fused"),      # mix-then-scan, its default
    "separated_scan": ("separated_scan", "ssm_scan"),
    "selective_state_update": ("state_update", "ssm_step"),
    "swimba_state_update": ("state_update", "ssm_step"),
    "separated_state_update": ("state_update", "ssm_step"),
}


def _call(op: str):
    """Call the public op on fresh inputs; returns (output, a callable recomputing it with the reference)."""
    if op.endswith("_scan"):
        design = {"selective_scan": "dense", "swimba_scan": "swimba", "separated_scan": "separated"}[op]
        x = {"dense": _dense(2, 23, 37, 5, torch.float32),
             "swimba": _swimba(2, 23, 37, 5, 3, 2, torch.float32),
             "separated": _separated(2, 23, 37, 5, 3, 2, torch.float32)}[design]
        naive = importlib.import_module(f"swimbench.kernels.{op}.naive")
        ref = getattr(naive, f"{op}_naive")
        return getattr(K, op)(**x, delta_softplus=True), lambda: ref(**x, delta_softplus=True)[0]
    design = op.split("_")[0].replace("selective", "dense")
    x, state = _step_inputs(design, 3, 37, 5, 3, 2, torch.float32)
    ref_state = state.clone()
    naive = importlib.import_module("swimbench.kernels.state_update.naive")
    return getattr(K, op)(state, **x), lambda: getattr(naive, f"{op}_naive")(ref_state, **x)


@pytest.mark.parametrize("op", OPS)
def test_op_routes_to_the_triton_kernel_when_interpreting(monkeypatch, op):
    assert _dispatch.interpreting()
    package, launcher = OPS[op]
    fused = importlib.import_module(f"swimbench.kernels.{package}.fused")
    calls = []
    real = getattr(fused, launcher)
    monkeypatch.setattr(fused, launcher, lambda *a, **k: calls.append(op) or real(*a, **k))
    y, reference = _call(op)
    assert calls == [op]
    assert rel_err(y, reference()) < REL_TOL[torch.float32]


def test_conv_and_mix_ops_route_to_their_kernels(monkeypatch):
    """The ops added for the strided layer forward dispatch like the others."""
    from swimbench.kernels.causal_conv1d import fused as conv_fused
    from swimbench.kernels.causal_conv1d import naive as conv_naive
    from swimbench.kernels.swimba_mix import fused as mix_fused
    from swimbench.kernels.swimba_mix import naive as mix_naive
    calls = []
    for mod, name in ((conv_fused, "causal_conv1d_fused"), (conv_fused, "causal_conv1d_update_fused"),
                      (mix_fused, "swimba_mix_fused")):
        real = getattr(mod, name)
        monkeypatch.setattr(mod, name, lambda *a, _r=real, _n=name, **k: calls.append(_n) or _r(*a, **k))
    _dispatch.load_fused.cache_clear()
    x, w, b = torch.randn(2, 9, 13), torch.randn(13, 1, 3), torch.randn(13)
    assert rel_err(K.causal_conv1d(x, w, b), conv_naive.causal_conv1d_naive(x, w[:, 0], b)) < 1e-6
    state, ref_state = torch.randn(2, 13, 3), None
    ref_state = state.clone()
    y = K.causal_conv1d_update(x[:, 0], state, w, b)
    assert rel_err(y, conv_naive.causal_conv1d_update_naive(x[:, 0], ref_state, w[:, 0], b)) < 1e-6
    pos = torch.randperm(10).view(5, 2)
    args = (torch.randn(10, 13), torch.randn(10, 4), torch.randn(10, 4), pos, torch.rand(5, 2),
            torch.randint(0, 3, (5, 2)), torch.randn(3, 13))
    delta, bc = K.swimba_mix(*args)
    d_ref, bc_ref = mix_naive.swimba_mix_naive(*args)
    assert rel_err(delta, d_ref) < 1e-6 and rel_err(bc, bc_ref) < 1e-6
    assert calls == ["causal_conv1d_fused", "causal_conv1d_update_fused", "swimba_mix_fused"]
    _dispatch.load_fused.cache_clear()


def test_cpu_tensors_take_the_reference_without_the_interpreter(monkeypatch):
    from swimbench.kernels.selective_scan.naive import selective_scan_naive
    u = torch.randn(1, 3, 4)
    picked = _dispatch.pick(selective_scan_naive, ".selective_scan.fused", "selective_scan_fused", u)
    assert picked.__name__ == "selective_scan_fused"                  # interpreter on (conftest)
    monkeypatch.setenv("SWIMBENCH_KERNELS", "reference")
    picked = _dispatch.pick(selective_scan_naive, ".selective_scan.fused", "selective_scan_fused", u)
    assert picked is selective_scan_naive
    # Without the interpreter, CPU tensors take the reference. Triton reads TRITON_INTERPRET once per
    # process, so only our dispatch's view of it is changed here.
    monkeypatch.delenv("SWIMBENCH_KERNELS")
    monkeypatch.setattr(_dispatch, "interpreting", lambda: False)
    picked = _dispatch.pick(selective_scan_naive, ".selective_scan.fused", "selective_scan_fused", u)
    assert picked is selective_scan_naive


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("k,N", [(1, 45), (3, 1100), (2, 7)])
def test_combine_kernel_and_op_are_the_gate_weighted_sum(dtype, k, N):
    from swimbench.kernels.combine.fused import combine_fused
    gates = torch.softmax(torch.randn(37, k), -1)
    values = torch.randn(37, k, N).to(dtype)
    ref = sum(gates[:, j:j + 1].double() * values[:, j].double() for j in range(k))
    out = torch.full((37, N), float("nan"), dtype=dtype)          # poisoned: every element written
    combine_fused(gates, values, out=out)
    assert rel_err(out, ref) < REL_TOL[dtype]
    via_op = K.combine(gates, values)                            # through the op: the same kernel
    assert via_op.dtype == dtype and torch.equal(via_op, out)
