"""The small-batch decode path at real sizes (bf16, D = 2048, FLOP-matched as `swimbench latency` sizes
layers; was `scripts/gpu_decode.py checks`): gather_mm and route against their references at the layers'
shapes; every design's graph-replayed step equal to its eager step bit for bit, output and cache, at
batches around the gathered path's tile; decode on the gathered path continuing a prefill on the sorted
one."""
import pytest
import torch

from swimbench.config import ROUTINGS, Reference
from swimbench.designs import build_layer
from swimbench.flops.sizing import match

from ..helpers import rel_err
from .helpers import poison_, poisoned

DEV, DT = "cuda", torch.bfloat16
REF = Reference(d_model=2048, expand=2, d_state=16, d_conv=4)
OP_TOL = 1e-2                  # gather_mm and route's gates against their fp32 references (bf16 outputs)
DECODE_TOL = 2e-2              # bf16 decode against bf16 prefill, relative

# gather_mm at the layers' shapes, (name, K, N); the Swimba ones at its E = 8, k = 2 width (None: Di)
SHAPES = [("swimba x_proj", None, 160), ("swimba dt_proj", 128, None), ("rom in_proj", 2048, 8184),
          ("rom out_proj", 4092, 2048), ("ffn w1", 2048, 4096), ("ffn w2", 4096, 2048)]
SLOTS = [(1, 1), (1, 2), (16, 2), (32, 2), (13, 3)]             # (tokens, k)
DESIGNS = [("dense", 1, 1), ("swimba", 8, 1), ("swimba", 8, 2), ("separated", 4, 2), ("moe_mamba", 8, 1),
           ("moe_mamba", 16, 2), ("rom", 8, 1), ("rom", 2, 2)]
STEP_CASES = [(v, E, k, routing, b) for v, E, k in DESIGNS for routing in (("balanced",) if E == 1 else ROUTINGS)
              for b in (1, 16, 33)]


def swimba_width() -> int:
    return match("swimba", REF, 8, 2).cfg.d_inner


def layer_of(variant, E, k, routing="balanced"):
    cfg = match(variant, REF, E, k, routing=routing).cfg
    return build_layer(cfg, device=DEV, dtype=DT).eval(), cfg


def random_cache(layer, b):
    cache = layer.allocate_cache(b)
    for t in (cache.conv, cache.ssm):
        t.normal_()
    return cache


@pytest.mark.parametrize("per_slot", [False, True], ids=["token-rows", "slot-rows"])
@pytest.mark.parametrize("T, k", SLOTS, ids=[f"T{T}-k{k}" for T, k in SLOTS])
@pytest.mark.parametrize("name, K, N", SHAPES, ids=[s[0].replace(" ", "-") for s in SHAPES])
@torch.no_grad()
def test_gather_mm_at_the_layers_shapes(name, K, N, T, k, per_slot):
    """Within OP_TOL of the reference, and a second call equal bit for bit (the split-K fix-up leaves its
    counters as it found them); 13 tokens with capacity 2 drop slots."""
    from swimbench.kernels.gather_mm.fused import gather_mm_fused
    from swimbench.kernels.gather_mm.naive import gather_mm_naive
    K, N = K or swimba_width(), N or swimba_width()
    x = torch.randn(T * k if per_slot else T, K, device=DEV, dtype=DT)
    w = torch.randn(8, K, N, device=DEV, dtype=DT) / K ** 0.5
    idx = torch.randint(0, 8, (T, k), device=DEV)
    cap, gelu = (2 if T == 13 else 0), name == "ffn w1"
    with poisoned():
        out = gather_mm_fused(x, w, idx, cap, gelu)
        again = gather_mm_fused(x, w, idx, cap, gelu)
    assert rel_err(out, gather_mm_naive(x, w, idx, cap, gelu)) < OP_TOL
    assert torch.equal(out, again)


ROUTES = [(1, 8, 1), (16, 16, 2), (8192, 8, 2)]               # (tokens, experts, k)


@pytest.mark.parametrize("T, E, k", ROUTES, ids=[f"T{T}-E{E}-k{k}" for T, E, k in ROUTES])
@pytest.mark.parametrize("mode", ROUTINGS)
@torch.no_grad()
def test_route_matches_its_reference(mode, T, E, k):
    """Forced modes choose exactly the reference's experts; learned at least 99% of tokens alike (a
    near-tie of bf16 logits may swap); the gates of the tokens that chose alike within OP_TOL."""
    from swimbench.kernels.route.fused import route_fused
    from swimbench.kernels.route.naive import route_naive
    Di = swimba_width()
    x = torch.randn(T, Di, device=DEV, dtype=DT)
    w = torch.randn(E, Di, device=DEV, dtype=DT) / Di ** 0.5
    with poisoned():
        g, i = route_fused(x, w, k, mode)
    gr, ir = route_naive(x, w, k, mode)
    same = (i == ir).all(-1)
    assert same.float().mean().item() >= (0.99 if mode == "learned" else 1.0)
    assert (g[same] - gr[same]).abs().max().item() < OP_TOL


@pytest.mark.parametrize("variant, E, k, routing, b", STEP_CASES,
                         ids=[f"{v}-E{E}-k{k}-{r}-b{b}" for v, E, k, r, b in STEP_CASES])
@torch.no_grad()
def test_graph_step_equals_eager_step_bit_for_bit(variant, E, k, routing, b):
    """Batches 1, 16 and 33 put k = 1 and 2 on either side of the gathered path's slots (a race between a
    kernel's programs shows as a last-bit difference here, never on the CPU's interpreter)."""
    from swimbench.measure.graphs import capture
    layer, cfg = layer_of(variant, E, k, routing)
    x = torch.randn(b, 1, cfg.d_model, device=DEV, dtype=DT)
    cache = random_cache(layer, b)
    snap = (cache.conv.clone(), cache.ssm.clone())
    out = {}
    g = capture(lambda: out.__setitem__("y", layer.step(x, cache)))
    cache.conv.copy_(snap[0]), cache.ssm.copy_(snap[1])
    poison_(out["y"])                       # the replay must write every element of its output
    g()
    torch.cuda.synchronize()
    graph = (out["y"].clone(), cache.conv.clone(), cache.ssm.clone())
    cache.conv.copy_(snap[0]), cache.ssm.copy_(snap[1])
    eager = (layer.step(x, cache), cache.conv, cache.ssm)
    for what, a, e in zip(("output", "conv cache", "ssm cache"), graph, eager):
        assert torch.equal(a, e), f"{what} differs (graph of {g.kernels} kernels)"


@pytest.mark.parametrize("variant, E, k", DESIGNS, ids=[f"{v}-E{E}-k{k}" for v, E, k in DESIGNS])
@torch.no_grad()
def test_decode_on_the_gathered_path_reproduces_prefill_on_the_sorted_one(variant, E, k):
    """Learned routing (a token's experts depend on it alone); MoE-Mamba with a capacity no load exceeds."""
    layer, cfg = layer_of(variant, E, k, "learned")
    if variant == "moe_mamba":
        layer.ffn.capacity_factor = float(E)
    x = torch.randn(2, 90, cfg.d_model, device=DEV, dtype=DT)
    full = layer(x)
    cache = layer.allocate_cache(2)
    layer(x[:, :70], cache)
    tail = torch.cat([layer.step(x[:, t:t + 1], cache) for t in range(70, 90)], dim=1)
    assert rel_err(tail, full[:, 70:]) < DECODE_TOL
