"""Every documented option of `swimbench latency` at a small size, against the reference ops (was
scripts/gpu_matrix.py): each registered design x routing (designs without experts have none) x dtype x
mode (graph: prefill and the decode step captured in CUDA graphs and replayed, as `latency` times them;
eager: plain calls) x stack depth. Each case builds the sweep point's model as `latency` does
(`swimbench.measure.workload.build`), runs one prefill and one decode step through the fused ops, and
compares every layer's prefill output, decode-step output and the decode cache it leaves with the same
layer run eagerly on the pure-PyTorch reference ops (SWIMBENCH_KERNELS=reference, which
`kernels/_dispatch.pick` reads on every op call), on the same weights, input and starting cache."""
import copy

import pytest
import torch

from swimbench import designs
from swimbench.config import ROUTINGS
from swimbench.sweeps.spec import DTYPES, TIMING_MODES, Point, Sweep

from ..helpers import rel_err
from .helpers import poison_

DEV = "cuda"
DEPTHS = (1, 2)
# Relative error a case may show. Both sides run in the case's dtype; the fused kernels accumulate in
# fp32 as the references do, so what is left is rounding of the outputs and of the steps between the ops.
TOLERANCE = {"fp32": 1e-3, "fp16": 1e-2, "bf16": 5e-2}
# On the GPU the kernels' tiles meet odd lengths: D, seq, batch, experts, top-k
D_MODEL, SEQ, BATCH, EXPERTS, TOP_K = 256, 67, 2, 4, 2


def cases():
    for v in designs.names():
        for routing in (ROUTINGS if designs.get(v).experts else (None,)):
            for dtype in DTYPES:
                for mode in TIMING_MODES:
                    for layers in DEPTHS:
                        yield pytest.param(v, routing, dtype, mode, layers,
                                           id="-".join(str(p) for p in (v, routing, dtype, mode, f"L{layers}")
                                                       if p is not None))


@pytest.mark.parametrize("variant, routing, dtype, mode, layers", list(cases()))
def test_option_matches_the_reference_ops(monkeypatch, variant, routing, dtype, mode, layers):
    routed = routing is not None
    sweep = Sweep(d_model=D_MODEL, expand=2, d_state=16, d_conv=4, dtype=dtype, variants=(variant,),
                  experts=(EXPERTS,), top_k=(TOP_K,), seq=(SEQ,), batch=(BATCH,), layers=(layers,),
                  routing=routing or "balanced", capacity_factor=float(EXPERTS), comparator="off")
    point = Point(variant, EXPERTS if routed else 1, TOP_K if routed else 1, SEQ, BATCH, layers)
    errors = errors_of(monkeypatch, point, sweep, torch.device(DEV), mode)
    tol = TOLERANCE[dtype]
    assert all(e == e and e < tol for e in errors.values()), f"relative errors {errors} (< {tol:g})"


@torch.no_grad()
def errors_of(monkeypatch, point, sweep, dev, mode: str) -> dict:
    """Relative errors of one case, the worst over the stack's layers: each layer's prefill output,
    decode-step output and decode cache against the reference ops on the same weights, the same input to
    that layer and the same starting cache. The stack runs whole, as `latency` runs it (model(x),
    model.step(x1, cache), each captured in one CUDA graph in graph mode); each layer is checked on the
    input the fused stack gave it, so that learned routing in a deeper layer sees the same tokens on both
    sides (a rounding difference upstream could otherwise flip a near tie of its top-k and fail a correct
    kernel)."""
    from swimbench.measure import workload
    from swimbench.measure.graphs import capture
    model, _ = workload.build(point, sweep, dev, seed=int(torch.randint(0, 2**31, ())))
    dtype = workload.DTYPES[sweep.dtype]
    x = torch.randn(point.batch, point.seq, sweep.d_model, device=dev, dtype=dtype)
    x1 = torch.randn(point.batch, 1, sweep.d_model, device=dev, dtype=dtype)
    start = workload.random_cache(model, point.batch)
    seen: dict = {}                  # phase -> layer -> (its input, its output), as the stack ran

    def prefill():
        seen["prefill"] = {}
        model(x)

    def step():
        seen["decode"] = {}
        model.step(x1, cache)

    def poison_outputs(phase):       # what the replay must write
        for _, y in seen[phase].values():
            poison_(y)

    hooks = [layer.register_forward_hook(lambda m, args, y, i=i: seen["prefill"].__setitem__(i, (args[0], y)))
             for i, layer in enumerate(model.layers)]
    for i, layer in enumerate(model.layers):          # the same for each layer's decode step
        layer.step = _recording(layer.step, lambda x_t, y, i=i: seen["decode"].__setitem__(i, (x_t, y)))
    cache = copy.deepcopy(start)
    if mode == "graph":
        replay = capture(prefill, warmup=1)
        poison_outputs("prefill")
        replay()
        replay = capture(step, warmup=1)          # the warm-up calls advance the cache: restore it
        _restore(workload, cache, start)
        poison_outputs("decode")
        replay()
        torch.cuda.synchronize(dev)
    else:
        prefill()
        step()
    for h in hooks:
        h.remove()
    for layer in model.layers:
        del layer.step                      # the class's own step again
    errors = {"prefill": 0.0, "decode": 0.0, "state": 0.0}
    with monkeypatch.context() as m:
        m.setenv("SWIMBENCH_KERNELS", "reference")
        for i, layer in enumerate(model.layers):
            x_i, y_i = seen["prefill"][i]
            errors["prefill"] = max(errors["prefill"], rel_err(y_i, layer(x_i)))
            want_cache = copy.deepcopy(start[i])
            x_t, y_t = seen["decode"][i]
            errors["decode"] = max(errors["decode"], rel_err(y_t, layer.step(x_t, want_cache)))
            for a, b in zip(workload._tensors(cache[i]), workload._tensors(want_cache)):
                errors["state"] = max(errors["state"], rel_err(a, b))
    return errors


def _recording(step, record):
    def call(x_t, layer_cache):
        y = step(x_t, layer_cache)
        record(x_t, y)
        return y
    return call


def _restore(workload, cache, start) -> None:
    for t, t0 in zip(workload._tensors(cache), workload._tensors(start)):
        t.copy_(t0)
