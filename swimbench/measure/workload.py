"""What is timed for one sweep point: the layer (or a stack of layers) at its FLOP-matched size, its
inputs, its decode cache, the FLOPs it does and the fewest bytes it must move."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
from torch import Tensor

from .. import designs
from ..config import LayerConfig
from ..flops.analytic import flops_per_token, params
from ..flops.sizing import match
from ..kernels._dispatch import interpreting, load_fused, reference_forced
from ..sweeps.spec import COMPARATOR, Point, Sweep

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}

def scan_impl(variant: str, device) -> str:
    """Which implementation the scan ops run here: triton, triton-interpreter or reference."""
    if variant == COMPARATOR:
        return "mamba_ssm"
    cuda = torch.device(device).type == "cuda"

    def one(module, name):
        if (cuda or interpreting()) and not reference_forced() and load_fused(module, name) is not None:
            return "triton" if cuda else "triton-interpreter"
        return "reference"
    # the (prefill, decode) recurrence ops the variant's design declares it calls
    pre, dec = (one(*m) for m in designs.RECURRENCES[designs.get(variant).recurrence])
    return pre if pre == dec else f"prefill={pre},decode={dec}"


class Stack(nn.Module):
    """n token mixers in sequence, each with a residual connection; a single layer runs alone, so
    that `--layers 1` times exactly one layer's forward."""

    def __init__(self, layers: list[nn.Module]):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> Tensor:
        if len(self.layers) == 1:
            return self.layers[0](x)
        for layer in self.layers:
            x = x + layer(x)
        return x

    def allocate_cache(self, batch: int) -> list:
        return [layer.allocate_cache(batch) for layer in self.layers]

    def step(self, x: Tensor, caches: list) -> Tensor:
        if len(self.layers) == 1:
            return self.layers[0].step(x, caches[0])
        for layer, cache in zip(self.layers, caches):
            x = x + layer.step(x, cache)
        return x


class MambaSsmLayer(nn.Module):
    """mamba-ssm's own Mamba (mamba_simple) behind our forward / allocate_cache / step interface."""

    def __init__(self, cfg: LayerConfig, device=None, dtype=None):
        super().__init__()
        from .. import mamba_ref
        self.m = mamba_ref.Mamba()(d_model=cfg.d_model, d_state=cfg.d_state, d_conv=cfg.d_conv,
                                   expand=cfg.d_inner // cfg.d_model, layer_idx=0, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        return self.m(x)

    def allocate_cache(self, batch: int):
        return self.m.allocate_inference_cache(batch, 1)

    def step(self, x: Tensor, cache) -> Tensor:
        return self.m.step(x, *cache)[0]


@dataclass(frozen=True)
class Sizing:
    cfg: LayerConfig
    flops_per_token: int        # one layer, prefill (decode does the same operations per token)
    decode_flops_per_token: int
    mismatch_pct: float
    params_total: int
    params_active: int


def _options(sweep: Sweep) -> dict:
    return {"routing": sweep.routing, "capacity_factor": sweep.capacity_factor, "ffn_mult": sweep.ffn_mult}


def size(point: Point, sweep: Sweep) -> Sizing:
    """The layer of a point: FLOP-matched to the dense reference (prefill), or at expand * d_model."""
    ref = sweep.reference()
    variant = "dense" if point.variant == COMPARATOR else point.variant
    if sweep.match:
        s = match(variant, ref, point.experts, point.top_k, "prefill", sweep.align, **_options(sweep))
        cfg, mismatch, (total, active) = s.cfg, s.mismatch_pct, (s.params_total, s.params_active)
    else:
        cfg = LayerConfig(variant, sweep.d_model, sweep.expand * sweep.d_model, sweep.d_state,
                          sweep.d_conv, experts=point.experts, top_k=point.top_k, **_options(sweep))
        dense = flops_per_token(ref.dense(), "prefill")
        mismatch = 100.0 * (flops_per_token(cfg, "prefill") - dense) / dense
        total, active = params(cfg)
    return Sizing(cfg, flops_per_token(cfg, "prefill"), flops_per_token(cfg, "decode"), mismatch,
                  total, active)


def _tensors(obj):
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            yield from _tensors(o)
    elif hasattr(obj, "__dict__"):
        for o in vars(obj).values():
            yield from _tensors(o)


def nbytes(obj) -> int:
    """Bytes of every tensor in a tensor, a cache object or a (nested) list of them."""
    return sum(t.numel() * t.element_size() for t in _tensors(obj))


def weight_bytes(layer: nn.Module, tokens: int) -> int:
    """Weights one call must read: all of them, except the routed experts no token can choose (at
    most tokens * k distinct experts are used; layers that dispatch name their expert stacks)."""
    total = nbytes(list(layer.parameters()))
    cfg: Optional[LayerConfig] = getattr(layer, "cfg", None)
    if cfg is not None and hasattr(layer, "expert_parameters"):
        per_expert = nbytes(layer.expert_parameters()) / cfg.experts
        unused = max(0, cfg.experts - tokens * cfg.top_k)
        total -= int(unused * per_expert)
    return total


def min_bytes(model: Stack, x: Tensor, cache=None) -> int:
    """The fewest bytes one call must move through device memory: each layer's weights read once,
    its input read once and its output written once; a decode step also reads and writes its cache.
    Intermediates (streams, states of a prefill) are left out: a fused kernel need not store them."""
    tokens = x.shape[0] * x.shape[1]
    act = 2 * x.numel() * x.element_size()
    cache_bytes = 2 * nbytes(cache) if cache is not None else 0
    return sum(weight_bytes(layer, tokens) + act for layer in model.layers) + cache_bytes


def build(point: Point, sweep: Sweep, device, seed: int) -> tuple[Stack, Sizing]:
    """The model of a point, built from `seed` so that every run times the same weights."""
    sizing = size(point, sweep)
    dtype = DTYPES[sweep.dtype]
    torch.manual_seed(seed)
    if point.variant == COMPARATOR:
        layers = [MambaSsmLayer(sizing.cfg, device=device, dtype=dtype) for _ in range(point.layers)]
    else:
        layers = [designs.build_layer(sizing.cfg, device=device, dtype=dtype) for _ in range(point.layers)]
    return Stack(layers).eval(), sizing


def random_cache(model: Stack, batch: int):
    """A decode cache holding random values (never time on zeros: they can run faster than data)."""
    cache = model.allocate_cache(batch)
    for t in _tensors(cache):
        t.normal_()
    return cache
