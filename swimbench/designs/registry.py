"""What a design is, and the registry every other part of swimbench reads designs from.

A design declares, in one module of this package (or anywhere, through `register`): its name, its label
and colour in figures, its layer class, its configuration rules, its analytic multiply-adds and
parameters per component, the recurrence ops it calls, and the kernel-benchmark cases of those ops.
The CLI's choices, FLOP matching and counting, the workload, `swimbench kernels`, `report` and `gate`
read it here; nothing else names a design.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Union

if TYPE_CHECKING:
    from ..config import LayerConfig

# Components of a token mixer, in the order tables list them (docs/flops.md). A design counts the ones it
# has; the others are zero.
COMPONENTS = ("in_proj", "conv", "router", "x_proj", "dt_proj", "mixing", "scan", "gate", "out_proj", "ffn")

# The recurrence ops behind each family of scan kernels: (prefill op, decode op), each the fused version's
# module under swimbench.kernels and its name. The reference beside each runs where Triton does not.
RECURRENCES = {
    "dense": ((".selective_scan.fused", "selective_scan_fused"),
              (".state_update.fused", "selective_state_update_fused")),
    "swimba": ((".swimba_scan.fused", "swimba_scan_fused"),
               (".state_update.fused", "swimba_state_update_fused")),
    "separated": ((".separated_scan.fused", "separated_scan_fused"),
                  (".state_update.fused", "separated_state_update_fused")),
}


def bench_kernels() -> tuple[str, ...]:
    """The kernel benchmark's cases: each recurrence's scan, then each one's decode step."""
    return tuple(RECURRENCES) + tuple(f"{r}-step" for r in RECURRENCES)


def _no_rules(cfg: "LayerConfig") -> None:
    return None


@dataclass(frozen=True)
class Design:
    name: str                                   # the variant name in flags, profiles and result rows
    label: str                                  # in figures and tables
    color: str                                  # matplotlib colour in every figure
    layer: Union[str, type]                     # the nn.Module class, or "module:Class" imported on first use
    macs: Callable[["LayerConfig"], dict]       # multiply-adds per token, component -> count (COMPONENTS)
    params: Callable[["LayerConfig"], tuple]    # (total, active per token) parameters
    summary: str = ""                           # one line, for help texts and docs
    experts: bool = True                        # takes experts and top-k (False: E = k = 1)
    recurrence: str = "dense"                   # the scan kernels it runs: a key of RECURRENCES
    rules: Callable[["LayerConfig"], None] = _no_rules   # raises ValueError for a configuration it refuses
    default: bool = True                        # in the default sweeps and tables

    def layer_class(self) -> type:
        if isinstance(self.layer, str):
            module, _, name = self.layer.partition(":")
            return getattr(importlib.import_module(module), name)
        return self.layer

    def check(self, cfg: "LayerConfig") -> None:
        """This design's rules for a configuration, beyond LayerConfig's own."""
        if not self.experts and (cfg.experts, cfg.top_k) != (1, 1):
            raise ValueError(f"{self.name} has no experts: experts=1, top_k=1")
        self.rules(cfg)

    @property
    def bench_kernels(self) -> tuple[str, str]:
        """The kernel-benchmark cases of the ops it calls: its recurrence's scan and decode step."""
        return (self.recurrence, f"{self.recurrence}-step")


_DESIGNS: dict[str, Design] = {}


def register(design: Design, replace: bool = False) -> Design:
    if design.recurrence not in RECURRENCES:
        raise ValueError(f"recurrence must be one of {', '.join(RECURRENCES)}")
    if design.name in _DESIGNS and not replace:
        raise ValueError(f"a design named {design.name!r} is registered already")
    _DESIGNS[design.name] = design
    return design


def unregister(name: str) -> None:
    _DESIGNS.pop(name, None)


def names(default_only: bool = False) -> tuple[str, ...]:
    """Registered design names in registration order (the built-in ones first)."""
    return tuple(n for n, d in _DESIGNS.items() if d.default or not default_only)


def get(name: str) -> Design:
    try:
        return _DESIGNS[name]
    except KeyError:
        raise ValueError(f"variant must be one of {', '.join(names())}") from None


def build_layer(cfg: "LayerConfig", device=None, dtype=None):
    """The layer of a configuration, checked against its design's rules."""
    design = get(cfg.variant)
    design.check(cfg)
    return design.layer_class()(cfg, device=device, dtype=dtype)
