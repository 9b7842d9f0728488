"""A run directory shared by several processes (ranks of one sweep, docs/distributed.md): each writer's
rows survive the others' writes, rows read back stay as they were, samples are all appended."""
import multiprocessing as mp

import pandas as pd

from swimbench.results import Results, RunDir


def _row(key, **kw):
    return {"key": key, "status": "ok", "variant": key.split("/")[0], "prefill_ms": 1.25, **kw}


def test_writers_of_one_results_file_keep_each_others_rows(tmp_path):
    order = [f"v{i}/x" for i in range(7)]
    path = tmp_path / "results.csv"
    Results(path, order).put(_row(order[6], prefill_ms=3.0))          # a row from an earlier attempt
    a, b = Results(path, order, shared=True), Results(path, order, shared=True)
    for i in range(6):
        (a if i % 2 else b).put(_row(order[i], rank=i % 2))
    back = pd.read_csv(path)
    assert list(back["key"]) == order and back.loc[6, "prefill_ms"] == 3.0
    assert list(back["rank"][:6]) == [0, 1, 0, 1, 0, 1]
    b.put(_row(order[6], prefill_ms=4.5))                              # measured again: replaces it
    assert pd.read_csv(path).loc[6, "prefill_ms"] == 4.5
    a.reload()
    assert set(a.rows) == set(order) and a.frame()["prefill_ms"].tolist()[-1] == 4.5


def _append(path, rank, n):
    run = RunDir(path, shared=True)
    for i in range(n):
        run.append_samples(f"r{rank}/{i}", 1, {"prefill_ms": [float(i)] * 500})


def test_samples_appended_by_several_processes_are_all_there(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_append, args=(tmp_path, r, 15)) for r in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    got = RunDir(tmp_path).read_samples()
    assert sorted(got) == sorted(f"r{r}/{i}" for r in range(3) for i in range(15))
