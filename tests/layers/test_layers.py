"""The three token mixers: agreement with mamba-ssm, decode against prefill, and the relations
between the designs that docs/layers.md states."""
import math

import pytest
import torch

from swimbench.layers import dispatch

from swimbench import mamba_ref
from swimbench.config import LayerConfig
from swimbench.kernels import selective_scan, swimba_scan
from swimbench.kernels.selective_scan.naive import selective_scan_naive
from swimbench.kernels.swimba_scan.naive import mix_streams
import torch.nn.functional as F

from swimbench.designs import build_layer
from swimbench.layers import DenseMamba
from swimbench.layers.router import Router

from ..helpers import rel_err

# Sizes that are not powers of two: D, Di, N, K, E, k.
SMALL = dict(d_model=24, d_inner=40, d_state=5, d_conv=3)
MOE = [("dense", 1, 1), ("swimba", 5, 2), ("swimba", 3, 1), ("separated", 3, 2), ("separated", 4, 1),
       ("moe_mamba", 3, 1), ("moe_mamba", 5, 2), ("rom", 3, 1), ("rom", 5, 2)]


def _cfg(variant, E=1, k=1, **kw):
    # Capacity large enough that no token is dropped: decode and prefill then see the same experts.
    return LayerConfig(variant, **{**SMALL, "capacity_factor": 8.0, **kw}, experts=E, top_k=k)


def _randomise(layer):
    """Non-trivial weights everywhere (the default init makes D = 1 and A identical per channel)."""
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return layer


@pytest.fixture
def mamba_reference_path(monkeypatch):
    """mamba-ssm's Mamba on its pure-PyTorch path: selective_scan_ref for the scan, the eager step."""
    if mamba_ref.mamba_ssm() is None:
        pytest.skip("mamba-ssm not installed")
    import mamba_ssm.modules.mamba_simple as ms
    monkeypatch.setattr(ms, "selective_scan_fn", mamba_ref.selective_scan_ref())
    monkeypatch.setattr(ms, "causal_conv1d_fn", None)
    monkeypatch.setattr(ms, "causal_conv1d_update", None)
    monkeypatch.setattr(ms, "selective_state_update", None)
    return mamba_ref.Mamba()


@pytest.mark.parametrize("dtype,kernels", [(torch.float32, "reference"), (torch.float64, "reference"),
                                          (torch.float32, "auto")])     # auto: our Triton conv and scan
def test_dense_matches_mamba_ssm(mamba_reference_path, dtype, kernels, monkeypatch):
    monkeypatch.setenv("SWIMBENCH_KERNELS", kernels)
    Mamba = mamba_reference_path
    m = Mamba(d_model=24, d_state=5, d_conv=3, expand=2, use_fast_path=False, dtype=dtype)
    m.A_log.data = m.A_log.data.to(dtype)
    m.D.data = m.D.data.to(dtype)
    _randomise(m)
    ours = DenseMamba(_cfg("dense", d_inner=48), dtype=dtype).load_mamba(m)
    x = torch.randn(3, 29, 24, dtype=dtype)
    with torch.no_grad():
        ref, out = m(x), ours(x)
    # Our scan computes in fp32 whatever the input dtype; mamba's reference does too.
    assert rel_err(out, ref) < 1e-5

    # Decode: mamba's eager step and ours from the same empty state, token by token.
    conv, ssm = m.allocate_inference_cache(3, 29, dtype=dtype)
    cache = ours.allocate_cache(3)
    with torch.no_grad():
        for t in range(6):
            ref_t, _, _ = m.step(x[:, t:t + 1], conv, ssm)
            out_t = ours.step(x[:, t:t + 1], cache)
            assert rel_err(out_t, ref_t) < 1e-5
            assert rel_err(cache.ssm, ssm) < 1e-5


@pytest.mark.parametrize("kernels", ["reference", "triton"])
@pytest.mark.parametrize("variant,E,k", MOE)
def test_decode_reproduces_prefill(variant, E, k, kernels, monkeypatch):
    # With "triton" the layer runs the fused kernels (interpreted here), prefill and decode alike. With
    # the gathered path's limit lowered to 8 slots, the prefills go through the sorted dispatch and the
    # steps (2 k slots) through the gathered one: the two paths must agree.
    monkeypatch.setenv("SWIMBENCH_KERNELS", "auto" if kernels == "triton" else "reference")
    monkeypatch.setattr(dispatch, "GATHER_SLOTS", 8)
    layer = _randomise(build_layer(_cfg(variant, E, k)))
    L = 13
    x = torch.randn(2, L, SMALL["d_model"])
    assert dispatch.path(2 * 7 * k) == "sorted" and dispatch.path(2 * k) == "gathered"
    with torch.no_grad():
        full = layer(x)
        cache = layer.allocate_cache(2)
        cache.ssm.fill_(float("nan"))        # step must not read a state that prefill did not write
        cache.conv.fill_(float("nan"))
        head = layer(x[:, :7], cache)
        tail = torch.cat([layer.step(x[:, t:t + 1], cache) for t in range(7, L)], dim=1)
        empty = layer.allocate_cache(2)
        steps = torch.cat([layer.step(x[:, t:t + 1], empty) for t in range(L)], dim=1)
    assert rel_err(head, full[:, :7]) < 1e-6
    assert rel_err(tail, full[:, 7:]) < 1e-5
    assert rel_err(steps, full) < 1e-5


def test_step_constants_follow_their_parameters():
    """A, D and the delta bias are kept between calls, and made again once a parameter changes."""
    layer = _randomise(build_layer(_cfg("swimba", 3, 1)))
    x = torch.randn(2, 1, SMALL["d_model"])
    with torch.no_grad():
        cache = layer.allocate_cache(2)
        state = torch.randn_like(cache.ssm)         # A acts on the state: from zero one step ignores it
        cache.ssm.copy_(state)
        y0 = layer.step(x, cache)
        A0 = layer.ssm_constants(layer.A_log, layer.D, layer.experts.dt_b)[0]
        assert A0 is layer.ssm_constants(layer.A_log, layer.D, layer.experts.dt_b)[0]
        layer.A_log.mul_(0.5)
        A1 = layer.ssm_constants(layer.A_log, layer.D, layer.experts.dt_b)[0]
        assert torch.allclose(A1, -torch.exp(layer.A_log))
        cache.zero_()
        cache.ssm.copy_(state)
        assert not torch.allclose(layer.step(x, cache), y0)
    # with autograd on, nothing is kept: gradients reach A_log
    layer.ssm_constants(layer.A_log, layer.D, layer.experts.dt_b)[0].sum().backward()
    assert layer.A_log.grad is not None


def _dense_and(variant):
    dense = _randomise(DenseMamba(_cfg("dense")))
    other = build_layer(_cfg(variant))
    with torch.no_grad():
        for name in ("in_proj", "conv1d", "out_proj"):
            getattr(other, name).load_state_dict(getattr(dense, name).state_dict())
        other.experts.x_w[0].copy_(dense.x_proj.weight.t())
        other.experts.dt_w[0].copy_(dense.dt_proj.weight.t())
        other.experts.dt_b[0].copy_(dense.dt_proj.bias)
        other.A_log.copy_(dense.A_log.expand_as(other.A_log))
        other.D.copy_(dense.D.expand_as(other.D))
    return dense, other


@pytest.mark.parametrize("variant", ["swimba", "separated"])
def test_one_expert_equals_dense(variant):
    dense, other = _dense_and(variant)
    x = torch.randn(2, 17, SMALL["d_model"])
    with torch.no_grad():
        assert rel_err(other(x), dense(x)) < 1e-6
        c1, c2 = dense.allocate_cache(2), other.allocate_cache(2)
        for t in range(4):
            assert rel_err(other.step(x[:, t:t + 1], c2), dense.step(x[:, t:t + 1], c1)) < 1e-6


@pytest.mark.parametrize("E,k", [(64, 4), (5, 2), (7, 1)])
def test_swimba_layer_equals_hand_mixed_reference(E, k, triton_ops):
    """The layer's Swimba core (dispatch, mixing kernel, dense scan: Triton, interpreted) against the
    definition computed token by token: each chosen expert's x_proj and dt_proj, delta mixed after
    softplus, B and C mixed, then the dense recurrence."""
    layer = _randomise(build_layer(_cfg("swimba", E, k)))
    cfg = layer.cfg
    R, N = cfg.dt_rank, cfg.d_state
    x = torch.randn(2, 17, SMALL["d_model"])
    with torch.no_grad():
        out = layer(x)
        x_in, z = layer.in_proj(x).chunk(2, dim=-1)
        xc = F.silu(F.conv1d(F.pad(x_in.transpose(1, 2), (cfg.d_conv - 1, 0)), layer.conv1d.weight,
                             layer.conv1d.bias, groups=cfg.d_inner)).transpose(1, 2)
        gates, idx = layer.router(xc)
        ex = layer.experts
        dbl = torch.einsum("bld,blkdr->blkr", xc, ex.x_w[idx])                   # (b, l, k, R + 2N)
        dt = torch.einsum("blkr,blkrd->blkd", dbl[..., :R], ex.dt_w[idx])
        delta, Bm, Cm = mix_streams(dt, dbl[..., R:R + N], dbl[..., R + N:], gates, idx, ex.dt_b, True)
        y, _ = selective_scan_naive(xc, delta, -torch.exp(layer.A_log), Bm, Cm, layer.D, z)
        ref = layer.out_proj(y)
    assert rel_err(out, ref) < 1e-5


@pytest.mark.parametrize("E,k", [(3, 3), (5, 2)])
def test_linearity_relation(E, k, triton_ops):
    """Experts that differ only in B, gates acting on the input: E separated trajectories driven by
    g_e * u sum to the one Swimba trajectory driven by B = sum_e g_e B^e (docs/layers.md)."""
    b, l, d, n = 2, 19, 21, 6
    u = torch.randn(b, l, d)
    dt = torch.randn(b, l, d)
    A = -torch.rand(d, n) - 0.1
    Bs = torch.randn(b, l, E, n)
    C = torch.randn(b, l, n)
    gates, idx = torch.softmax(torch.randn(b, l, E), -1).topk(k, dim=-1)
    gates = gates / gates.sum(-1, keepdim=True)
    bias = torch.randn(d).expand(E, d).contiguous()             # shared delta: same dt and bias
    chosen = torch.gather(Bs, 2, idx.unsqueeze(-1).expand(-1, -1, -1, n))
    swimba = swimba_scan(u, dt.unsqueeze(2).expand(-1, -1, k, -1).contiguous(), A, chosen,
                         C.unsqueeze(2).expand(-1, -1, k, -1).contiguous(), gates, idx,
                         delta_bias=bias, delta_softplus=True)
    g_dense = torch.zeros(b, l, E).scatter(-1, idx, gates)
    separated = sum(selective_scan(u * g_dense[..., e:e + 1], dt, A, Bs[:, :, e].contiguous(), C,
                                   delta_bias=bias[0], delta_softplus=True) for e in range(E))
    assert rel_err(swimba, separated) < 1e-5


@pytest.mark.parametrize("l,kernels", [(3000, "reference"), (300, "auto")])   # auto: the Triton kernel
def test_swimba_state_bounded(monkeypatch, l, kernels):
    """Mixed delta is a convex combination of softplus outputs, so delta >= 0, the decay lies in
    (0, 1], and |h| <= sup|B u| * (1/|A| + max delta) for every channel and state. Long sequences
    on the reference; a shorter one through the Triton kernel (interpreted: slow per token)."""
    monkeypatch.setenv("SWIMBENCH_KERNELS", kernels)
    b, d, n, E, k = 2, 11, 5, 4, 2
    u = torch.rand(b, l, d) * 2 - 1                               # bounded input
    dt = torch.randn(b, l, k, d) * 4                              # large, both signs
    B = torch.rand(b, l, k, n) * 2 - 1
    C = torch.rand(b, l, k, n) * 2 - 1
    A = -torch.rand(d, n) * 3 - 0.05
    gates = torch.softmax(torch.randn(b, l, k), -1)
    idx = torch.randint(0, E, (b, l, k))
    bias = torch.randn(E, d)
    delta, Bm, _ = mix_streams(dt, B, C, gates, idx, bias, True)
    assert (delta >= 0).all()
    decay = torch.exp(delta.unsqueeze(-1) * A)
    assert ((decay > 0) & (decay <= 1)).all()
    bound = (u.abs().amax(1)[:, :, None] * Bm.abs().amax(1)[:, None, :]       # (b, d, n)
             * (1 / A.abs() + delta.amax(1)[:, :, None]))
    for stop in (l // 3, l):
        y, h = swimba_scan(u[:, :stop].contiguous(), dt[:, :stop].contiguous(), A, B[:, :stop].contiguous(),
                           C[:, :stop].contiguous(), gates[:, :stop].contiguous(), idx[:, :stop].contiguous(),
                           delta_bias=bias, return_last_state=True)
        assert torch.isfinite(y).all()
        assert (h.abs() <= bound * (1 + 1e-5)).all()


def test_layers_share_config_and_dtype():
    for variant, E, k in MOE:
        layer = build_layer(_cfg(variant, E, k), dtype=torch.bfloat16)
        core = layer.mamba if variant == "moe_mamba" else layer
        assert core.conv1d.weight.dtype == torch.bfloat16
        assert core.A_log.dtype == torch.float32          # kept in fp32, as mamba-ssm does
        assert layer.allocate_cache(3).ssm.dtype == torch.float32
        assert layer.cfg.variant == variant


@pytest.mark.parametrize("K,N", [(16, 24), (5, 3)])             # aligned: grouped GEMM; not: the loop
def test_grouped_mm_matches_per_expert_products(K, N):
    from swimbench.layers.dispatch import grouped_mm
    counts = torch.tensor([4, 0, 7, 1, 0])                         # empty experts included
    x, w = torch.randn(int(counts.sum()), K), torch.randn(len(counts), K, N)
    out = grouped_mm(x, w, counts.cumsum(0).to(torch.int32))
    ref = torch.cat([xe @ w[e] for e, xe in enumerate(x.split(counts.tolist()))])
    assert rel_err(out, ref) < 1e-6


def test_grouped_mm_without_a_grouped_gemm_syncs_nothing_and_zeroes_dropped_rows():
    """The fp16/fp32 GPU fallback: no host sync (capturable), rows past the last group (dropped) zero."""
    from swimbench.layers.dispatch import grouped_mm_masked
    counts = torch.tensor([3, 0, 6, 2])
    x, w = torch.randn(int(counts.sum()) + 4, 9), torch.randn(len(counts), 9, 7)
    out = grouped_mm_masked(x, w, counts.cumsum(0).to(torch.int32))
    ref = torch.cat([xe @ w[e] for e, xe in enumerate(x[:-4].split(counts.tolist()))])
    assert rel_err(out[:-4], ref) < 1e-6 and torch.all(out[-4:] == 0)
    # meta tensors hold no data: any read of the bounds to the host (what graph capture cannot do)
    # raises on them, as the per-group loop does
    meta = [t.to("meta") for t in (x, w, counts.cumsum(0).to(torch.int32))]
    assert grouped_mm_masked(*meta).shape == out.shape
    with pytest.raises(NotImplementedError):
        meta[2].tolist()


@pytest.mark.parametrize("T,k,E,cf", [(37, 1, 5, None), (37, 2, 7, 1.0), (50, 1, 4, 0.6), (23, 2, 300, 1.25)])
def test_dispatch_matches_slot_by_slot_reference(T, k, E, cf):
    """Groups hold each expert's slots in slot order, the first `capacity` of them when a capacity
    is set; dropped slots sit after every group with keep False; gather/mm/scatter round-trip.
    Skewed ids, so that some experts overflow; E = 300 takes the int16 sort keys."""
    from swimbench.layers.dispatch import Dispatch
    idx = (torch.rand(T, k) ** 3 * E).long()
    d = Dispatch.build(idx, E, cf)
    flat = idx.reshape(-1).tolist()
    cap = max(1, math.ceil(cf * T * k / E)) if cf is not None else T * k
    groups = [[s for s in range(T * k) if flat[s] == e][:cap] for e in range(E)]
    kept = [s for g in groups for s in g]
    order = d.order.tolist()
    assert sorted(order) == list(range(T * k))
    assert d.offs.tolist() == torch.tensor([len(g) for g in groups]).cumsum(0).tolist()
    assert order[:len(kept)] == kept
    if cf is None:
        assert d.keep is None
    else:
        assert d.keep.squeeze(-1).tolist() == [True] * len(kept) + [False] * (T * k - len(kept))
    x, w = torch.randn(T, 8), torch.randn(E, 8, 16)
    y = d.scatter(d.mm(d.gather(x), w))                            # (T, k, 16)
    for s in range(T * k):
        t, j = divmod(s, k)
        if s in kept:
            assert rel_err(y[t, j], x[t] @ w[flat[s]]) < 1e-5
        else:
            assert (y[t, j] == 0).all()


def test_rom_one_expert_equals_dense():
    dense = _randomise(DenseMamba(_cfg("dense")))
    rom = build_layer(_cfg("rom"))
    with torch.no_grad():
        for name in ("conv1d", "x_proj", "dt_proj"):
            getattr(rom, name).load_state_dict(getattr(dense, name).state_dict())
        rom.A_log.copy_(dense.A_log)
        rom.D.copy_(dense.D)
        rom.in_w[0].copy_(dense.in_proj.weight.t())
        rom.out_w[0].copy_(dense.out_proj.weight.t())
        x = torch.randn(2, 17, SMALL["d_model"])
        assert rel_err(rom(x), dense(x)) < 1e-6
        c1, c2 = dense.allocate_cache(2), rom.allocate_cache(2)
        for t in range(3):
            assert rel_err(rom.step(x[:, t:t + 1], c2), dense.step(x[:, t:t + 1], c1)) < 1e-6


def test_moe_mamba_one_expert_equals_mamba_with_dense_ffn():
    layer = _randomise(build_layer(_cfg("moe_mamba")))
    x = torch.randn(2, 17, SMALL["d_model"])
    with torch.no_grad():
        m = layer.mamba(x)
        h = x + m
        ffn = F.gelu(h @ layer.ffn.w1[0]) @ layer.ffn.w2[0]
        assert rel_err(layer(x), m + ffn) < 1e-6


def test_switch_ffn_drops_past_capacity():
    """Top-1 over 4 experts, a router that sends every token to expert 0: capacity cf * T / E keeps
    the first tokens, and the rest get a zero update (they pass through on the residual)."""
    layer = build_layer(_cfg("moe_mamba", 4, 1, capacity_factor=1.0))
    ffn = layer.ffn
    with torch.no_grad():
        ffn.router.proj.weight.zero_()
        ffn.router.proj.weight[0].fill_(1.0)
        h = torch.rand(1, 12, SMALL["d_model"]) + 0.1              # positive: expert 0 wins everywhere
        out = ffn(h)
    capacity = 12 // 4
    assert (out[0, capacity:] == 0).all()                          # dropped: the residual passes
    assert (out[0, :capacity].abs().sum(-1) > 0).all()


@pytest.mark.parametrize("E,k", [(4, 1), (7, 2), (8, 1)])
def test_forced_routing_balance(E, k):
    x = torch.randn(3, 40, 16)
    balanced = Router(16, E, k, "balanced")
    gates, idx = balanced(x)
    counts = torch.bincount(idx.flatten(), minlength=E)
    assert counts.max() - counts.min() <= 1                        # every expert the same load
    assert (idx.sort(-1).values.diff(dim=-1) > 0).all()            # k distinct experts per token
    assert torch.allclose(gates.sum(-1), torch.ones(()))
    _, skew = Router(16, E, k, "skewed")(x)
    share = torch.bincount(skew[..., 0].flatten(), minlength=E).float() / skew[..., 0].numel()
    assert abs(share[0] - E ** (-1 / 3)) < 0.05                    # the power law's head
    assert (skew.sort(-1).values.diff(dim=-1) > 0).all()
