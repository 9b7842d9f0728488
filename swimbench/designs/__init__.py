"""The designs swimbench compares, one module each, and the registry the rest of swimbench reads them from
(`registry.py`; how to add one: docs/contributing.md). Importing this package registers the built-in
designs, in the order tables and figures list them."""
from __future__ import annotations

from .registry import COMPONENTS, RECURRENCES, Design, bench_kernels, build_layer, get, names, register, unregister
from . import dense, swimba, separated, moe_mamba, rom  # noqa: E402,F401  (each registers itself)

__all__ = ["COMPONENTS", "RECURRENCES", "Design", "bench_kernels", "build_layer", "get", "names", "register",
           "unregister"]
