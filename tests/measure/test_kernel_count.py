"""Kernels per call: which graph nodes count, an unknown count, the point measurer's columns, and the
columns through the run directory, rows written before them included. The count on a GPU is checked
there, beside torch.profiler's: tests/gpu/test_kernel_count.py."""
from types import SimpleNamespace

import pandas as pd

from swimbench.measure import kernel_count, point
from swimbench.measure.point import PointMeasurer
from swimbench.results import COLUMNS, RunDir
from swimbench.results.reader import load_run
from swimbench.sweeps.spec import MeasureSettings, Sweep

from ..synthetic import rng_for

KERNEL_COLUMNS = ("prefill_kernels", "decode_kernels")
SWEEP = Sweep(d_model=16, d_state=4, variants=("dense", "swimba"), experts=(2,), top_k=(1,), seq=(8,), batch=(2,),
              dtype="fp32")
SETTINGS = MeasureSettings(budget_s=0.005, min_reps=3, warmup_reps=1, prefill="eager", decode="eager", energy=False)


class FakeDriver:
    """The three driver calls the count makes, over graphs given as {handle: [(node type, child)]}."""

    def __init__(self, graphs):
        self.graphs, self.nodes = graphs, {}

    def cuGraphGetNodes(self, graph, out, n):
        nodes = self.graphs[graph]
        if out is not None:
            for i, (kind, child) in enumerate(nodes):
                out[i] = 1000 * graph + i + 1
                self.nodes[1000 * graph + i + 1] = (kind, child)
        n._obj.value = len(nodes)
        return 0

    def cuGraphNodeGetType(self, node, kind):
        kind._obj.value = self.nodes[node][0]
        return 0

    def cuGraphChildGraphNodeGetGraph(self, node, child):
        child._obj.value = self.nodes[node][1]
        return 0


def test_kernel_nodes_are_counted_in_child_graphs_too_and_nothing_else():
    """Kernel nodes count; memcpy (1), memset (2), host (3), empty (5) and event nodes do not; a child
    graph's kernels count where its node stands."""
    rng = rng_for("graph-nodes")
    n_top, n_child = int(rng.integers(1, 40)), int(rng.integers(1, 40))
    others = [(int(k), None) for k in rng.choice([1, 2, 3, 5, 6, 7], size=int(rng.integers(1, 10)))]
    child = [(kernel_count.KERNEL, None)] * n_child + others
    top = [(kernel_count.KERNEL, None)] * n_top + others + [(kernel_count.CHILD_GRAPH, 2)]
    driver = FakeDriver({1: list(rng.permutation(top)), 2: list(rng.permutation(child))})
    driver.graphs = {g: [(int(k), c) for k, c in nodes] for g, nodes in driver.graphs.items()}
    assert kernel_count.graph_kernels(1, driver) == n_top + n_child


def test_a_failed_driver_call_is_an_unknown_count_not_a_failed_row(monkeypatch):
    class Failing(FakeDriver):
        def cuGraphGetNodes(self, graph, out, n):
            return 700                                     # CUDA_ERROR_ILLEGAL_ADDRESS, say
    monkeypatch.setattr(kernel_count, "_driver", lambda: Failing({}))
    assert kernel_count.captured_kernels(SimpleNamespace(raw_cuda_graph=lambda: 1)) is None
    assert kernel_count.captured_kernels(object()) is None          # a torch without kept graphs


def test_rows_take_the_count_of_the_graph_they_replay_and_none_when_eager():
    for p in SWEEP.points():
        row = PointMeasurer(SWEEP, SETTINGS, "cpu")(p).row
        assert row["prefill_kernels"] is None and row["decode_kernels"] is None
    assert point.kernels_of(SimpleNamespace(kernels=17)) == 17
    assert point.kernels_of(lambda: None) is None


def test_kernel_columns_round_trip_and_older_rows_read_empty(tmp_path):
    rng = rng_for("kernel-columns")
    assert {c: COLUMNS.count(c) for c in KERNEL_COLUMNS} == {c: 1 for c in KERNEL_COLUMNS}
    counts = {c: int(rng.integers(1, 500)) for c in KERNEL_COLUMNS}
    run = RunDir.create(tmp_path, "new")
    run.write_metadata({"points": ["dense/a", "cpu/b"], "environment": {"device": "cpu"}})
    res = run.results()
    # an ok row holds its configuration and its medians
    medians = {"experts": 1, "top_k": 1, "seq": 8, "batch": 1, "prefill_ms": 1.0, "decode_us": 2.0}
    res.put({"key": "dense/a", "status": "ok", "variant": "dense", "device": "cuda", **medians, **counts})
    res.put({"key": "cpu/b", "status": "ok", "variant": "dense", "device": "cpu", **medians,
             **{c: None for c in KERNEL_COLUMNS}})
    rows = load_run(run.path).rows.set_index("key")
    assert {c: rows.loc["dense/a", c] for c in KERNEL_COLUMNS} == counts
    assert rows.loc["cpu/b", list(KERNEL_COLUMNS)].isna().all()
    on_disk = pd.read_csv(run.path / run.RESULTS, dtype=str, keep_default_na=False).set_index("key")
    assert {c: on_disk.loc["dense/a", c] for c in KERNEL_COLUMNS} == {c: str(v) for c, v in counts.items()}
    assert (on_disk.loc["cpu/b", list(KERNEL_COLUMNS)] == "").all()       # integers, not 17.0; CPU empty

    # A run written before the columns existed: its rows read back without counts, and a resume
    # rewrites them with the columns empty.
    old = RunDir.create(tmp_path, "old")
    old.write_metadata({"points": ["dense/a"], "environment": {"device": "cpu"}})
    before = [c for c in COLUMNS if c not in KERNEL_COLUMNS]
    pd.DataFrame([{"key": "dense/a", "status": "ok", "variant": "dense", "experts": 1, "top_k": 1, "seq": 8,
                   "batch": 1, "prefill_ms": 1.5, "decode_us": 3.0}],
                 columns=before).to_csv(old.path / old.RESULTS, index=False)
    rows = load_run(old.path).rows
    assert rows[list(KERNEL_COLUMNS)].isna().all().all() and rows.loc[0, "prefill_ms"] == 1.5
    kept = old.results()
    kept.write()
    again = pd.read_csv(old.path / old.RESULTS, dtype=str, keep_default_na=False)
    assert list(again.columns) == COLUMNS and (again[list(KERNEL_COLUMNS)] == "").all().all()

