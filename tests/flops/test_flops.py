"""FLOP counting three ways, FLOP matching and parameter counts."""
import pytest

from swimbench import designs
from swimbench.config import LayerConfig, Reference
from swimbench.flops.analytic import COMPONENTS, flops_per_token, macs_per_token, params
from swimbench.flops.counters import count_fvcore, count_torch
from swimbench.flops.sizing import match
from swimbench.flops.table import FlopsRequest, rows
from swimbench.designs import build_layer

DEFAULT_EXPERTS = (1, 2, 4, 8, 16, 32, 64)
MATMUL_OPS = ("linear", "matmul", "bmm", "mm", "addmm", "einsum", "conv", "grouped", "swimbench")


@pytest.fixture(scope="module")
def default_table():
    req = FlopsRequest(Reference(), DEFAULT_EXPERTS, 1, designs.names(), seq=8, batch=2, match="prefill", align=8)
    return rows(req)


def test_default_table_counters_agree_and_match(default_table):
    assert len(default_table) == 1 + (len(designs.names()) - 1) * len(DEFAULT_EXPERTS)
    for r in default_table:
        counts = [r["flops_analytic"], r["flops_fvcore"], r["flops_torch"]]
        assert max(counts) - min(counts) <= 0.01 * max(counts), r
        assert abs(r["mismatch_pct"]) < 1.0, r
        assert r["d_inner"] % 8 == 0
        assert sum(r["components"].values()) == r["flops_analytic"]


def test_default_table_scaling(default_table):
    sep = [r for r in default_table if r["variant"] == "separated"]
    swi = [r for r in default_table if r["variant"] == "swimba"]
    # Matched FLOPs: separated must shrink d_inner as E grows; Swimba barely moves (router only).
    assert [r["d_inner"] for r in sep] == sorted((r["d_inner"] for r in sep), reverse=True)
    assert sep[-1]["d_inner"] < 0.3 * sep[0]["d_inner"]
    assert min(r["d_inner"] for r in swi) > 0.95 * 4096
    # Swimba adds parameters, not active ones; separated activates all of them.
    assert swi[-1]["params_total"] > 3 * swi[-1]["params_active"]
    assert all(r["params_total"] == r["params_active"] for r in sep)


def test_nothing_we_run_is_counted_as_zero(default_table):
    for r in default_table:
        for op in r["fvcore_uncounted_ops"]:
            assert not any(m in op for m in MATMUL_OPS), (r["variant"], op)


@pytest.mark.parametrize("phase", ["prefill", "decode"])
@pytest.mark.parametrize("variant,E,k", [("dense", 1, 1), ("swimba", 5, 2), ("swimba", 7, 3),
                                         ("separated", 3, 2), ("separated", 6, 1), ("moe_mamba", 1, 1),
                                         ("moe_mamba", 5, 2), ("rom", 1, 1), ("rom", 6, 2)])
def test_counters_agree_exactly_on_odd_sizes(variant, E, k, phase):
    cfg = LayerConfig(variant, d_model=200, d_inner=392, d_state=7, d_conv=3, experts=E, top_k=k,
                      routing="balanced")
    layer = build_layer(cfg)
    analytic = flops_per_token(cfg, phase)
    fv = count_fvcore(layer, phase, batch=3, seq=11)
    tc = count_torch(layer, phase, batch=3, seq=11)
    assert fv.flops_per_token == analytic
    assert tc.flops_per_token == analytic


@pytest.mark.parametrize("variant,E,k", [("dense", 1, 1), ("swimba", 5, 2), ("separated", 3, 2),
                                         ("moe_mamba", 4, 1), ("rom", 5, 2)])
def test_params_match_module(variant, E, k):
    cfg = LayerConfig(variant, d_model=72, d_inner=136, d_state=9, d_conv=4, experts=E, top_k=k)
    total, active = params(cfg)
    assert total == sum(p.numel() for p in build_layer(cfg).parameters())
    # Inactive: what the E - k experts a token does not use hold.
    inactive = {"swimba": 136 * (cfg.dt_rank + 18) + cfg.dt_rank * 136 + 136,   # x_proj_e, dt_proj_e
                "rom": 72 * 2 * 136 + 136 * 72,                                 # in_proj_e, out_proj_e
                "moe_mamba": 2 * 72 * cfg.d_ff}.get(variant, 0)                 # FFN_e
    assert total - active == (E - k) * inactive


def test_components_cover_the_layer():
    cfg = LayerConfig("swimba", d_model=64, d_inner=128, experts=4, top_k=2)
    macs = macs_per_token(cfg)
    assert set(macs) == set(COMPONENTS)
    assert macs["router"] == 128 * 4 and macs["x_proj"] == 2 * 128 * (cfg.dt_rank + 32)
    assert macs_per_token(cfg.with_(experts=1, top_k=1))["router"] == 0


@pytest.mark.parametrize("phase", ["prefill", "decode"])
@pytest.mark.parametrize("align", [1, 8, 32])
def test_matching_picks_the_closest_aligned_width(phase, align):
    ref = Reference(d_model=512, expand=2, d_state=16, d_conv=4)
    target = flops_per_token(ref.dense(), phase)
    for variant, E, k in [("swimba", 16, 2), ("separated", 8, 1), ("moe_mamba", 8, 1), ("rom", 8, 2)]:
        s = match(variant, ref, E, k, phase, align)
        assert s.target == target and s.cfg.d_inner % align == 0
        err = abs(s.flops_per_token - target)
        for other in (s.cfg.d_inner - align, s.cfg.d_inner + align):
            if other >= align:
                assert err <= abs(flops_per_token(s.cfg.with_(d_inner=other), phase) - target)
        if align == 1:
            assert abs(s.mismatch_pct) < 0.05


def test_dense_matches_itself():
    s = match("dense", Reference(d_model=96, expand=3))
    assert s.cfg.d_inner == 288 and s.mismatch_pct == 0.0
