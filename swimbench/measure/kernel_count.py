"""How many CUDA kernels one call launches: the kernel nodes of the CUDA graph its replay runs.

A decode step that launches 40 kernels cannot take less than 40 launches' worth of GPU time however
little each does, so the count says what fusing would gain. It is read from the captured graph (through
the driver API: a runtime graph handle is a driver CUgraph), so cuBLAS, Triton and torch kernels count
alike, copies and fills (memcpy and memset nodes) are left out, and it is the count of exactly what is
timed. It is not read with torch.profiler: CUPTI, once started, can slow every later launch of the
process by 10-20% (pytorch#144455), which would leak into the rows measured after it.
"""
from __future__ import annotations

import ctypes
from functools import lru_cache
from typing import Optional

KERNEL, CHILD_GRAPH = 0, 4          # CUgraphNodeType: CU_GRAPH_NODE_TYPE_KERNEL, CU_GRAPH_NODE_TYPE_GRAPH


@lru_cache(maxsize=1)
def _driver():
    lib = ctypes.CDLL("libcuda.so.1")
    lib.cuGraphGetNodes.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_size_t)]
    lib.cuGraphNodeGetType.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
    lib.cuGraphChildGraphNodeGetGraph.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
    return lib


def _ok(status: int, what: str) -> None:
    if status != 0:
        raise RuntimeError(f"{what} failed with CUresult {status}")


def graph_kernels(raw_graph: int, lib=None) -> int:
    """Kernel nodes of a CUgraph / cudaGraph_t handle, those of child graphs included."""
    lib = lib or _driver()
    n = ctypes.c_size_t(0)
    _ok(lib.cuGraphGetNodes(raw_graph, None, ctypes.byref(n)), "cuGraphGetNodes")
    nodes = (ctypes.c_void_p * n.value)()
    _ok(lib.cuGraphGetNodes(raw_graph, nodes, ctypes.byref(n)), "cuGraphGetNodes")
    count, kind = 0, ctypes.c_int(-1)
    for node in nodes[:n.value]:
        _ok(lib.cuGraphNodeGetType(node, ctypes.byref(kind)), "cuGraphNodeGetType")
        if kind.value == KERNEL:
            count += 1
        elif kind.value == CHILD_GRAPH:
            child = ctypes.c_void_p()
            _ok(lib.cuGraphChildGraphNodeGetGraph(node, ctypes.byref(child)), "cuGraphChildGraphNodeGetGraph")
            count += graph_kernels(child.value, lib)
    return count


def captured_kernels(graph) -> Optional[int]:
    """Kernel nodes of a torch.cuda.CUDAGraph captured with keep_graph=True; None where this torch or
    driver cannot say (a count is a diagnostic: it never fails a measurement)."""
    try:
        return graph_kernels(graph.raw_cuda_graph())
    except (AttributeError, OSError, RuntimeError):
        return None
