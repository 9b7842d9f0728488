"""Expert-parallel layers against the single-process layers under NCCL (docs/distributed.md; was
scripts/gpu_distributed_check.py): for every routed design at E = 8 and 64, and 13 (an expert count the
ranks do not divide), the prefill output and a decode step of the expert-parallel layer equal the
single-process layer's on all ranks' inputs; MoE-Mamba also with a capacity that drops slots.

In the GPU suite this is a process group of one rank (the exchange with itself). The same tests run as
the ranks of torchrun on several GPUs (scripts/gpu_distributed.sh, MULTI=1):

    python3 -m torch.distributed.run --nproc-per-node 2 -m pytest tests/gpu/test_distributed.py -q

fp32 (grouped GEMMs as a loop; no TF32): every value within 1e-4 of the largest. bf16 (torch's grouped
GEMM, the path the benchmark times): within 2e-2 of the largest; over several ranks a rank's router runs
on fewer rows than the single process's, where a GEMM may round a logit differently and flip a near tie
of the top-k, so up to 2% of the tokens may differ there."""
import copy
import os

import pytest
import torch

from swimbench.config import LayerConfig

BASE = dict(d_model=512, d_inner=1000, d_state=16, d_conv=4, routing="learned")
CONFIGS = [LayerConfig(v, experts=E, top_k=k, **BASE) for v in ("moe_mamba", "rom", "swimba")
           for E, k in ((8, 1), (64, 2), (13, 2))]
CONFIGS.append(LayerConfig("moe_mamba", experts=8, top_k=2, capacity_factor=0.5, **BASE))
DTYPES = {"fp32": (torch.float32, 1e-4), "bf16": (torch.bfloat16, 2e-2)}
PER_RANK_BATCH, LENGTH = 2, 300


def config_id(cfg):
    cf = f"-cf{cfg.capacity_factor:g}" if cfg.capacity_factor < 1 else ""
    return f"{cfg.variant}-E{cfg.experts}-k{cfg.top_k}{cf}"


@pytest.fixture(scope="module")
def world():
    """The process group torchrun describes, or one of this process alone, under NCCL, left at the end."""
    from swimbench import distributed
    world = distributed.join("nccl", alone=True)
    torch.cuda.set_device(world.local_rank)
    yield world
    distributed.leave()


def device_of(world):
    """Each rank's GPU (a gloo world, as in a dry run on the CPU: the CPU)."""
    return torch.device("cuda", world.local_rank) if world.backend == "nccl" else torch.device("cpu")


def test_every_rank_runs_without_nvlink_multicast(world):
    from swimbench import distributed
    assert world.backend == "nccl"
    assert {k: os.environ.get(k) for k in distributed.SAFE_ENV} == distributed.SAFE_ENV


@pytest.mark.parametrize("cfg", CONFIGS, ids=[config_id(c) for c in CONFIGS])
@pytest.mark.parametrize("dtype", DTYPES)
def test_expert_parallel_layer_equals_the_single_process_layer(world, dtype, cfg):
    from swimbench.designs import build_layer
    from swimbench.layers.parallel import ExpertParallel
    dist = torch.distributed
    dt, tol = DTYPES[dtype]
    dev = device_of(world)
    seed = torch.randint(0, 2**62, (1,), device=dev)
    dist.broadcast(seed, 0)                 # every rank builds the same layer and draws the same inputs
    torch.manual_seed(int(seed))
    b = PER_RANK_BATCH
    layer = build_layer(cfg, device=dev, dtype=dt).eval()
    x = torch.randn(world.size * b, LENGTH, cfg.d_model, device=dev, dtype=dt)
    x_t = torch.randn(world.size * b, 1, cfg.d_model, device=dev, dtype=dt)
    with torch.inference_mode():
        cache = layer.allocate_cache(world.size * b)
        want, want_t = layer(x, cache), layer.step(x_t, cache)
    ep = ExpertParallel(copy.deepcopy(layer))
    mine = slice(world.rank * b, (world.rank + 1) * b)
    with torch.inference_mode():
        ep_cache = ep.allocate_cache(b)
        got, got_t = ep(x[mine], ep_cache), ep.step(x_t[mine], ep_cache)
    allowed = 0.02 if dt == torch.bfloat16 and world.size > 1 else 0.0
    shares = {}
    for name, g, w in (("prefill", got, want[mine]), ("decode", got_t, want_t[mine])):
        g, w = g.float().reshape(-1, g.shape[-1]), w.float().reshape(-1, w.shape[-1])
        off = (g - w).abs().amax(-1) / w.abs().max().clamp(min=1e-6)       # per token, over the largest value
        shares[name] = (off > tol).float().mean().item()
    # every rank learns every rank's verdict, so that all fail together and none waits in a collective
    worst = torch.tensor([max(shares.values())], device=dev)
    dist.all_reduce(worst, op=dist.ReduceOp.MAX)
    assert worst.item() <= allowed, (f"tokens off by more than {tol:g} of the largest value, worst rank: "
                                     f"{100 * worst.item():.2f}% (this rank: {shares})")
