"""Expert-parallel layers against the single-process layers on GPUs, under NCCL (docs/distributed.md). Run as
ranks of torchrun (scripts/gpu_distributed.sh): on every rank, for every routed design at E = 8 and 64 (and
an expert count the ranks do not divide), the prefill output and a decode step of the expert-parallel layer
equal the single-process layer's on all ranks' inputs; MoE-Mamba also with a capacity that drops slots.

fp32 (grouped GEMMs as a loop; no TF32): every value within 1e-4 of the largest. bf16 (torch's grouped
GEMM, the path the benchmark times): within 2e-2 of the largest; over several ranks, a rank's router runs on
fewer rows than the single process's, where a GEMM may round a logit differently and flip a near tie of
the top-k, so up to 2% of the tokens may differ there (the fraction is printed). Prints one line per
configuration on rank 0; exits 1 on a mismatch."""
import copy
import os
import sys

import torch

from swimbench import distributed
from swimbench.config import LayerConfig
from swimbench.designs import build_layer
from swimbench.layers.parallel import ExpertParallel

world = distributed.join(os.environ.get("BACKEND", "nccl"), alone=True)
cuda = world.backend == "nccl"                         # BACKEND=gloo: the same on the CPU (a dry run)
if cuda:
    torch.cuda.set_device(world.local_rank)
dev = torch.device("cuda", world.local_rank) if cuda else torch.device("cpu")
assert all(os.environ[k] == v for k, v in distributed.SAFE_ENV.items())

base = dict(d_model=512, d_inner=1000, d_state=16, d_conv=4, routing="learned")
configs = [LayerConfig(v, experts=E, top_k=k, **base) for v in ("moe_mamba", "rom", "swimba")
           for E, k in ((8, 1), (64, 2), (13, 2))]
configs.append(LayerConfig("moe_mamba", experts=8, top_k=2, capacity_factor=0.5, **base))
b, l = 2, 300                                          # per rank
failed = 0
for (i, cfg), dtype in [(c, d) for d in (torch.float32, torch.bfloat16) for c in enumerate(configs)]:
    torch.manual_seed(1000 + i)
    layer = build_layer(cfg, device=dev, dtype=dtype).eval()
    x = torch.randn(world.size * b, l, cfg.d_model, device=dev, dtype=dtype)
    x_t = torch.randn(world.size * b, 1, cfg.d_model, device=dev, dtype=dtype)
    with torch.inference_mode():
        cache = layer.allocate_cache(world.size * b)
        want, want_t = layer(x, cache), layer.step(x_t, cache)
    ep = ExpertParallel(copy.deepcopy(layer))
    mine = slice(world.rank * b, (world.rank + 1) * b)
    with torch.inference_mode():
        ep_cache = ep.allocate_cache(b)
        got, got_t = ep(x[mine], ep_cache), ep.step(x_t[mine], ep_cache)
    tol = 1e-4 if dtype == torch.float32 else 2e-2
    errs = []
    for name, g, w in (("prefill", got, want[mine]), ("decode", got_t, want_t[mine])):
        g, w = g.float().reshape(-1, g.shape[-1]), w.float().reshape(-1, w.shape[-1])
        off = (g - w).abs().amax(-1) / w.abs().max().clamp(min=1e-6)        # per token, over the largest value
        share = (off > tol).float().mean().item()
        errs.append(f"{name} {off.max().item():.2e} ({100 * share:.2f}% of tokens off)")
        allowed = 0.02 if dtype == torch.bfloat16 and world.size > 1 else 0.0
        if share > allowed:
            failed += 1
    line = torch.tensor([failed], device=dev)
    torch.distributed.all_reduce(line)
    if world.lead:
        print(f"{str(dtype)[6:]:8s} {cfg.variant:9s} E={cfg.experts:2d} k={cfg.top_k} cf={cfg.capacity_factor}: "
              f"largest error over largest value, rank 0: {', '.join(errs)}; mismatches so far, all ranks: "
              f"{int(line)}", flush=True)
    del layer, ep
total = torch.tensor([failed], device=dev)
torch.distributed.all_reduce(total)
if world.lead:
    print(f"world size {world.size} ({world.backend}): {'OK' if int(total) == 0 else f'{int(total)} MISMATCHES'}")
distributed.leave()
sys.exit(1 if int(total) else 0)
