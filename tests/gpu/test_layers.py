"""Every design's layer at real size (D = 2048, bf16; was scripts/gpu_layers.py): decode steps continue a
prefill as the whole prefill would; one decode step captured in a CUDA graph and replayed gives the eager
step's output and state; our dense layer, loaded with the weights of mamba-ssm's Mamba, gives that module's
output on its CUDA scan."""
import pytest
import torch

from swimbench.config import Reference
from swimbench.designs import build_layer
from swimbench.flops.sizing import match

from ..helpers import rel_err
from .helpers import poison_

DEV, DT = "cuda", torch.bfloat16
REF = Reference(d_model=2048, expand=2, d_state=16, d_conv=4)
CASES = [("dense", 1, 1), ("swimba", 8, 2), ("separated", 4, 1), ("moe_mamba", 8, 1), ("rom", 8, 2)]
IDS = [f"{v}-E{E}-k{k}" for v, E, k in CASES]
LAYER_TOL = 2e-2                        # two bf16 computations of one layer (decode and prefill; ours and mamba-ssm's)
STEP_TOL, STATE_TOL = 1e-3, 1e-5        # graph-replayed step against the eager one


def layer_of(variant, E, k):
    # learned routing (a token's experts depend on the token alone, so decode must agree with prefill)
    # and a capacity no load can exceed (a dropped slot would differ between the two)
    cfg = match(variant, REF, E, k, capacity_factor=float(E)).cfg
    return build_layer(cfg, device=DEV, dtype=DT).eval(), cfg


@pytest.mark.parametrize("variant, E, k", CASES, ids=IDS)
@torch.no_grad()
def test_decode_reproduces_prefill(variant, E, k, b=2, l=300, prefix=257):
    layer, cfg = layer_of(variant, E, k)
    x = torch.randn(b, l, cfg.d_model, device=DEV, dtype=DT)
    full = layer(x)
    cache = layer.allocate_cache(b)
    layer(x[:, :prefix], cache)
    tail = torch.cat([layer.step(x[:, t:t + 1], cache) for t in range(prefix, l)], dim=1)
    assert rel_err(tail, full[:, prefix:]) < LAYER_TOL


@pytest.mark.parametrize("variant, E, k", CASES, ids=IDS)
@torch.no_grad()
def test_graph_replayed_step_equals_eager_step(variant, E, k, b=2, prefix=257):
    """One step captured in a CUDA graph, replayed on the same cache state as an eager step."""
    layer, cfg = layer_of(variant, E, k)
    x = torch.randn(b, prefix + 1, cfg.d_model, device=DEV, dtype=DT)
    cache = layer.allocate_cache(b)
    layer(x[:, :prefix], cache)
    snap = (cache.conv.clone(), cache.ssm.clone())

    def restore():
        cache.conv.copy_(snap[0])
        cache.ssm.copy_(snap[1])

    x_t = x[:, prefix:prefix + 1].clone()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(2):
            layer.step(x_t, cache)          # warm-up: Triton compilation outside the capture
    torch.cuda.current_stream().wait_stream(s)
    restore()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        y_graph = layer.step(x_t, cache)
    restore()
    poison_(y_graph)                        # the replay must write every element of its output
    g.replay()
    graph_state = cache.ssm.clone()
    restore()
    y_eager = layer.step(x_t, cache)
    assert rel_err(y_graph, y_eager) < STEP_TOL
    assert rel_err(graph_state, cache.ssm) < STATE_TOL


@torch.no_grad()
def test_dense_layer_matches_mamba_ssm_mamba_on_its_cuda_scan(mamba_cuda, b=2, l=1000):
    from swimbench.layers import DenseMamba
    m = mamba_cuda.Mamba()(d_model=REF.d_model, d_state=REF.d_state, d_conv=REF.d_conv, expand=REF.expand,
                           use_fast_path=False, device=DEV, dtype=DT)
    ours = DenseMamba(REF.dense(), device=DEV, dtype=DT).load_mamba(m)
    x = torch.randn(b, l, REF.d_model, device=DEV, dtype=DT)
    assert rel_err(ours(x), m(x)) < LAYER_TOL
