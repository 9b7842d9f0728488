"""Expert parallelism on the CPU: gloo, 2 and 3 processes spawned here (torch.multiprocessing, a free port on
127.0.0.1). On every rank, the expert-parallel layer's prefill output and decode step equal the single-process
layer's on the concatenation of all ranks' inputs, for every routed design, uneven expert blocks and capacity
drops included."""
import copy
import os

import pytest
import torch
import torch.multiprocessing as mp

from swimbench import distributed
from swimbench.config import LayerConfig
from swimbench.designs import build_layer
from swimbench.layers.dispatch import Dispatch
from swimbench.layers.parallel import SUPPORTED, ExpertParallel

TOL = dict(rtol=1e-4, atol=1e-5)


def _configs(world: int):
    """Sizes that are not powers of two; expert counts that do not divide among the ranks (and one with
    fewer experts than ranks, where a rank holds none)."""
    base = dict(d_model=20, d_inner=36, d_state=5, d_conv=3, routing="learned")
    out = [LayerConfig("moe_mamba", experts=7, top_k=2, capacity_factor=0.6, **base),   # drops slots
           LayerConfig("moe_mamba", experts=5, top_k=1, capacity_factor=8.0, **base),   # drops none
           LayerConfig("rom", experts=7, top_k=2, **base),
           LayerConfig("swimba", experts=7, top_k=3, **base),
           LayerConfig("swimba", experts=2, top_k=1, **base)]
    assert world == 2 or any(c.experts < world for c in out)
    return out


def _check(rank: int, world: int, port: int, seed: int):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    w = distributed.join("gloo")
    assert (w.rank, w.size, w.backend) == (rank, world, "gloo")
    assert all(os.environ[k] == v for k, v in distributed.SAFE_ENV.items())
    try:
        for i, cfg in enumerate(_configs(world)):
            torch.manual_seed(seed + i)                      # the same weights and inputs on every rank
            layer = build_layer(cfg)
            b, l = 2, 9                                      # per rank
            x = torch.randn(world * b, l, cfg.d_model)
            x_t = torch.randn(world * b, 1, cfg.d_model)
            cache = layer.allocate_cache(world * b)
            want = layer(x, cache)
            want_t = layer.step(x_t, cache)
            ep = ExpertParallel(copy.deepcopy(layer))
            mine = slice(rank * b, (rank + 1) * b)
            ep_cache = ep.allocate_cache(b)
            got = ep(x[mine], ep_cache)
            got_t = ep.step(x_t[mine], ep_cache)
            torch.testing.assert_close(got, want[mine], **TOL, msg=f"{cfg.variant} E={cfg.experts} prefill")
            torch.testing.assert_close(got_t, want_t[mine], **TOL, msg=f"{cfg.variant} E={cfg.experts} decode")
            torch.testing.assert_close(ep_cache.ssm, cache.ssm[mine], **TOL)
            # each rank holds only its block of experts
            held = sum(p.numel() for p in ep.parameters())
            assert held < sum(p.numel() for p in layer.parameters()) or cfg.experts < world
            if cfg.variant == "moe_mamba" and cfg.capacity_factor < 1:
                # the capacity really dropped slots, and not only on one rank's tokens
                _, idx = layer.ffn.router((x + layer.mamba(x)).reshape(-1, cfg.d_model))
                kept = Dispatch.build(idx, cfg.experts, cfg.capacity_factor).keep
                assert 0 < int(kept.sum()) < idx.numel()
    finally:
        distributed.leave()


@pytest.mark.parametrize("world", [2, 3])
def test_expert_parallel_layers_equal_the_single_process_layer(world):
    mp.spawn(_check, args=(world, distributed.free_port(), int(torch.randint(0, 2 ** 30, ()))), nprocs=world)


def test_the_tested_configurations_cover_every_routed_design():
    assert {c.variant for c in _configs(3)} == set(SUPPORTED)


def test_replicated_and_refused_layers():
    layer = build_layer(LayerConfig("dense", d_model=12, d_inner=20, d_state=3))
    with pytest.raises(ValueError, match="expert parallelism applies"):
        ExpertParallel(layer)
    x = torch.randn(2, 5, 12)
    torch.testing.assert_close(ExpertParallel(layer, mode="replicated")(x), layer(x))
    with pytest.raises(ValueError, match="mode"):
        ExpertParallel(layer, mode="sideways")


@pytest.mark.parametrize("n,size", [(8, 3), (7, 2), (2, 3), (64, 8), (5, 5)])
def test_expert_blocks_and_shares(n, size):
    sizes = distributed.blocks(n, size)
    assert sum(sizes) == n and max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)
    items = list(range(n * 3 + 1))
    shares = [distributed.share(items, r, size) for r in range(size)]
    assert sorted(i for s in shares for i in s) == items
    assert max(map(len, shares)) - min(map(len, shares)) <= 1
