"""CUDA-graph capture of a forward or a decode step, so that its replay times the GPU's work, not
Python's launches.

On our H100 the official decode kernel takes about 150 us launched eagerly and 1.5 us replayed from a
graph: eager decode numbers measure the interpreter and the launch path, not the design. Prefill of
the routed layers is the same at short sequences: launching one MoE-Mamba forward takes the host
about 1.8 ms, while its GPU work at seq 2048 is a fraction of that (docs/performance.md).
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from .kernel_count import captured_kernels

_SIDE: dict[int, torch.cuda.Stream] = {}


def side_stream() -> torch.cuda.Stream:
    """One side stream per device for every capture's warm-up. cuBLAS keeps a workspace (32 MiB on
    Hopper) for each stream it has run on: a new stream per capture left one more allocated per
    point, up to the 32 streams of torch's pool, and inflated later points' peak memory by ~1 GiB."""
    index = torch.cuda.current_device()
    if index not in _SIDE:
        _SIDE[index] = torch.cuda.Stream()
    return _SIDE[index]


class Replay:
    """A captured call: calling it replays the graph; `kernels` is the graph's kernel count (None where
    it cannot be read). It holds the graph and so its memory pool."""

    def __init__(self, graph: torch.cuda.CUDAGraph, kernels: Optional[int]):
        self.graph, self.kernels = graph, kernels

    def __call__(self) -> None:
        self.graph.replay()


def capture(fn: Callable[[], object], warmup: int = 3) -> Replay:
    """Capture one call of `fn` into a CUDA graph and return its replay.

    The warm-up runs on a side stream first (as torch.cuda.graphs asks), which also keeps Triton's
    compilation and autotuning out of the capture. `fn` must work on static shapes and buffers and
    must not synchronize with the host; the graph keeps its tensors alive.
    """
    side = side_stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(max(1, warmup)):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    torch.cuda.empty_cache()       # a capture cannot free cached blocks: give the graph's pool room
    try:
        graph = torch.cuda.CUDAGraph(keep_graph=True)      # the graph stays readable: its kernels are counted
    except TypeError:                                      # torch < 2.8
        graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    kernels = captured_kernels(graph)
    if hasattr(graph, "instantiate"):
        graph.instantiate()        # kept graphs are instantiated here, not at their first replay
    torch.cuda.synchronize()
    return Replay(graph, kernels)
