"""Every documented option of `swimbench latency` at a small size, checked against the reference ops.

    python3 scripts/gpu_matrix.py                 # on a CUDA GPU: the whole matrix, ~1 minute on an H100
    python3 scripts/gpu_matrix.py --cpu           # tiny sizes, eager mode only, Triton's interpreter
    python3 scripts/gpu_matrix.py --cpu -v dense,swimba --dtype fp32     # a subset

The matrix: each registered design x routing (balanced, skewed, learned; designs without experts
have no routing) x dtype (bf16, fp16, fp32) x mode (graph: prefill and the decode step captured in
CUDA graphs and replayed, as `latency` times them; eager: plain calls) x stack depth (1, 2). Each
case builds the sweep point's model as `latency` does (`swimbench.measure.workload.build`), runs one
prefill and one decode step through the fused ops, and compares them with the same model run eagerly
on the pure-PyTorch reference ops (SWIMBENCH_KERNELS=reference, read on every op call by
`kernels/_dispatch.pick`): the prefill output, the decode step's output and the decode cache it
leaves. One line per case, then `N passed, M failed`; exit 1 on any failure. A case that raises
(a crash under graph capture, say) is a failure that shows the exception's first line.
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import time
import traceback
from contextlib import contextmanager

MODES = ("graph", "eager")
DTYPES = ("bf16", "fp16", "fp32")
ROUTINGS = ("balanced", "skewed", "learned")
DEPTHS = (1, 2)
# Relative error (Frobenius norm of the difference over the reference's) a case may show. Both sides
# run in the case's dtype; the fused kernels accumulate in fp32 as the references do, so what is
# left is rounding of the outputs and of the steps between the ops.
TOLERANCE = {"fp32": 1e-3, "fp16": 1e-2, "bf16": 5e-2}


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cpu", action="store_true",
                   help="run on the CPU at tiny sizes through Triton's interpreter (eager mode only)")
    p.add_argument("-v", "--variants", default=None, help="comma-separated designs (default: all registered)")
    p.add_argument("--dtype", default=",".join(DTYPES), help="comma-separated dtypes")
    p.add_argument("--routing", default=",".join(ROUTINGS), help="comma-separated routings")
    p.add_argument("--mode", default=None, help="comma-separated modes (default: graph,eager; eager on --cpu)")
    p.add_argument("--layers", default="1,2", help="comma-separated stack depths")
    return p.parse_args(argv)


def _list(text: str, allowed, what: str) -> list:
    out = [w for w in text.replace(",", " ").split() if w]
    bad = [w for w in out if w not in allowed]
    if bad or not out:
        sys.exit(f"gpu_matrix: {what} {','.join(bad) or repr(text)} is not allowed: expected one of "
                 f"{', '.join(map(str, allowed))}")
    return out


@contextmanager
def reference_ops():
    """The reference (pure-PyTorch) ops for every op called inside the block."""
    old = os.environ.get("SWIMBENCH_KERNELS")
    os.environ["SWIMBENCH_KERNELS"] = "reference"
    try:
        yield
    finally:
        if old is None:
            del os.environ["SWIMBENCH_KERNELS"]
        else:
            os.environ["SWIMBENCH_KERNELS"] = old


def rel(a, b) -> float:
    a, b = a.double(), b.double()
    den = b.norm().item()
    return (a - b).norm().item() / (den if den > 0 else 1.0)


def main(argv=None) -> int:
    args = parse(argv)
    if args.cpu:
        os.environ.setdefault("TRITON_INTERPRET", "1")      # before any kernel is defined
    import torch

    from swimbench import designs
    from swimbench.measure import workload
    from swimbench.measure.graphs import capture
    from swimbench.sweeps.spec import Point, Sweep

    if not args.cpu and not torch.cuda.is_available():
        sys.exit("gpu_matrix: no CUDA GPU here; --cpu runs the matrix at tiny sizes on the CPU")
    dev = torch.device("cpu" if args.cpu else "cuda")
    modes = _list(args.mode or ("eager" if args.cpu else "graph,eager"), MODES, "--mode")
    if args.cpu and "graph" in modes:
        sys.exit("gpu_matrix: --mode graph needs a CUDA GPU")
    variants = _list(args.variants or ",".join(designs.names()), designs.names(), "--variants")
    dtypes = _list(args.dtype, DTYPES, "--dtype")
    routings = _list(args.routing, ROUTINGS, "--routing")
    depths = [int(d) for d in _list(args.layers, [str(d) for d in DEPTHS], "--layers")]
    # small sizes: on the GPU the kernels' tiles are exercised with odd lengths; on the CPU the
    # interpreter runs every program instance in Python, so everything is tiny
    d_model, seq, batch, experts, top_k = (16, 9, 2, 4, 2) if args.cpu else (256, 67, 2, 4, 2)

    def cases():
        for v in variants:
            routed = designs.get(v).experts
            for routing in (routings if routed else routings[:1]):
                for dtype in dtypes:
                    for mode in modes:
                        for layers in depths:
                            yield v, (routing if routed else None), dtype, mode, layers

    passed = failed = 0
    t0 = time.perf_counter()
    for variant, routing, dtype, mode, layers in cases():
        routed = routing is not None
        name = (f"{variant:<10} {('routing=' + routing) if routed else '':<16} {dtype:<4} {mode:<5} "
                f"L={layers}")
        sweep = Sweep(d_model=d_model, expand=2, d_state=8 if args.cpu else 16, d_conv=4, dtype=dtype,
                      variants=(variant,), experts=(experts,), top_k=(top_k,), seq=(seq,),
                      batch=(batch,), layers=(layers,), routing=routing or "balanced",
                      capacity_factor=float(experts), comparator="off")
        point = Point(variant, experts if routed else 1, top_k if routed else 1, seq, batch, layers)
        t = time.perf_counter()
        try:
            errors = check(torch, workload, capture, point, sweep, dev, mode)
        except Exception as e:  # noqa: BLE001  (a crashing case is a failed case, the matrix goes on)
            failed += 1
            where = traceback.extract_tb(e.__traceback__)[-1]
            first = " ".join(f"{type(e).__name__}: {e}".split())[:200]
            print(f"FAIL  {name}  raised {first} ({os.path.basename(where.filename)}:{where.lineno})",
                  flush=True)
            continue
        tol = TOLERANCE[dtype]
        ok = all(err == err and err < tol for err in errors.values())      # NaN never passes
        passed, failed = passed + ok, failed + (not ok)
        text = ", ".join(f"{k} {v:.1e}" for k, v in errors.items())
        print(f"{'PASS' if ok else 'FAIL'}  {name}  {workload.scan_impl(variant, dev)} vs reference: "
              f"rel err {text} (< {tol:g})  {time.perf_counter() - t:.1f} s", flush=True)
    print(f"{passed} passed, {failed} failed  ({time.perf_counter() - t0:.0f} s, device={dev.type}"
          f"{' ' + torch.cuda.get_device_name(dev) if dev.type == 'cuda' else ''})", flush=True)
    return 1 if failed or not passed else 0


def check(torch, workload, capture, point, sweep, dev, mode: str) -> dict:
    """Relative errors of one case, the worst over the stack's layers: each layer's prefill output,
    decode-step output and decode cache against the reference ops on the same weights, the same
    input to that layer and the same starting cache. The stack runs whole, as `latency` runs it
    (model(x), model.step(x1, cache), each captured in one CUDA graph in graph mode); each layer is
    checked on the input the fused stack gave it, so that learned routing in a deeper layer sees the
    same tokens on both sides (a rounding difference upstream could otherwise flip a near tie of its
    top-k and fail a correct kernel)."""
    with torch.no_grad():
        model, _ = workload.build(point, sweep, dev, seed=0)
        dtype = workload.DTYPES[sweep.dtype]
        gen = torch.Generator(device=dev).manual_seed(1)
        x = torch.randn(point.batch, point.seq, sweep.d_model, device=dev, dtype=dtype, generator=gen)
        x1 = torch.randn(point.batch, 1, sweep.d_model, device=dev, dtype=dtype, generator=gen)
        start = workload.random_cache(model, point.batch)
        seen: dict = {}                  # (phase, layer) -> (its input, its output), as the stack ran

        def prefill():
            seen["prefill"] = {}
            model(x)

        def step():
            seen["decode"] = {}
            model.step(x1, cache)
        hooks = [layer.register_forward_hook(lambda m, args, y, i=i: seen["prefill"].__setitem__(i, (args[0], y)))
                 for i, layer in enumerate(model.layers)]
        for i, layer in enumerate(model.layers):          # the same for each layer's decode step
            layer.step = _recording(layer.step, lambda x_t, y, i=i: seen["decode"].__setitem__(i, (x_t, y)))
        cache = copy.deepcopy(start)
        if mode == "graph":
            capture(prefill, warmup=1).graph.replay()
            replay = capture(step, warmup=1)          # the warm-up calls advance the cache: restore it
            _restore(workload, cache, start)
            replay.graph.replay()
            torch.cuda.synchronize(dev)
        else:
            prefill()
            step()
        for h in hooks:
            h.remove()
        for layer in model.layers:
            del layer.step                      # the class's own step again
        errors = {"prefill": 0.0, "decode": 0.0, "state": 0.0}
        with reference_ops():
            for i, layer in enumerate(model.layers):
                x_i, y_i = seen["prefill"][i]
                errors["prefill"] = max(errors["prefill"], rel(y_i, layer(x_i)))
                want_cache = copy.deepcopy(start[i])
                x_t, y_t = seen["decode"][i]
                errors["decode"] = max(errors["decode"], rel(y_t, layer.step(x_t, want_cache)))
                for a, b in zip(workload._tensors(cache[i]), workload._tensors(want_cache)):
                    errors["state"] = max(errors["state"], rel(a, b))
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


if __name__ == "__main__":
    sys.exit(main())
