"""Run directories: atomic writes, the results table, samples and the power trace."""
import json
import os

import pandas as pd
import pytest

from swimbench.measure.energy import PowerSample
from swimbench.results import COLUMNS, Results, RunDir, atomic_write_text


def _row(key, status="ok", **kw):
    return {"key": key, "status": status, "variant": key.split("/")[0], "prefill_ms": 1.5, **kw}


def test_atomic_write_replaces_whole_and_leaves_no_temporary(tmp_path):
    p = tmp_path / "results.csv"
    atomic_write_text(p, "a\n1\n")
    atomic_write_text(p, "a\n2\n")
    assert p.read_text() == "a\n2\n"
    assert sorted(os.listdir(tmp_path)) == ["results.csv"]


def test_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    p = tmp_path / "results.csv"
    atomic_write_text(p, "old,complete\n")

    def crash(src, dst):                            # dies between writing the temporary and the rename
        raise OSError("disk gone")
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        atomic_write_text(p, "new,half" * 1000)
    assert p.read_text() == "old,complete\n"
    assert sorted(os.listdir(tmp_path)) == ["results.csv"]


def test_results_written_after_each_row_in_sweep_order(tmp_path):
    order = ["dense/a", "swimba/b", "separated/c"]
    res = Results(tmp_path / "results.csv", order)
    for i, key in enumerate(reversed(order)):       # rows arrive out of order
        res.put(_row(key, status="oom" if key == "swimba/b" else "ok"))
        on_disk = pd.read_csv(tmp_path / "results.csv")
        assert len(on_disk) == i + 1                # the file is complete after every row
        assert list(on_disk.columns[:len(COLUMNS)]) == COLUMNS
    assert list(on_disk["key"]) == order
    res.put(_row("dense/a", status="error", error="boom"))
    assert res.done_keys() == {"swimba/b", "separated/c"}   # error rows are measured again


def test_reloaded_rows_are_rewritten_verbatim(tmp_path):
    res = Results(tmp_path / "results.csv", ["x/1", "x/2"])
    res.put(_row("x/1", prefill_ms=0.1 + 0.2, decode_samples=7, error=None))
    before = (tmp_path / "results.csv").read_text().splitlines()
    again = Results(tmp_path / "results.csv", ["x/1", "x/2"])
    again.put(_row("x/2"))
    after = (tmp_path / "results.csv").read_text().splitlines()
    assert after[:2] == before                      # header and the kept row, byte for byte
    assert again.done_keys() == {"x/1", "x/2"}


def test_rundir_create_existing_metadata_samples_power(tmp_path):
    a, b = RunDir.create(tmp_path, "cpu"), RunDir.create(tmp_path, "cpu")
    assert a.path != b.path and a.path.name.endswith("-cpu") and a.path.parent == tmp_path
    with pytest.raises(FileNotFoundError):
        RunDir.existing(a.path)                     # no metadata yet: not a run directory
    a.write_metadata({"status": "running", "n": 3})
    assert RunDir.existing(a.path).read_metadata() == {"status": "running", "n": 3}
    a.append_samples("k1", 1, {"prefill_ms": [1.0, 2.0]})
    a.append_samples("k1", 2, {"prefill_ms": [3.0]})
    assert a.read_samples()["k1"] == {"key": "k1", "attempt": 2, "prefill_ms": [3.0]}
    a.append_power([PowerSample(1.0, 1700000000.0, 101.5, None, "idle")])
    a.append_power([PowerSample(2.0, 1700000001.0, 300.25, 310.0, "k1/prefill")])
    trace = pd.read_csv(a.file(a.POWER))
    assert list(trace.columns) == ["unix_time", "power_w", "instant_w", "label"]
    assert list(trace["power_w"]) == [101.5, 300.25] and trace["instant_w"].isna().tolist() == [True, False]
    assert json.loads(a.file(a.SAMPLES).read_text().splitlines()[0])["attempt"] == 1


def test_a_handed_over_commit_wins_over_the_trees_git(monkeypatch):
    """A device machine gets a copy of the tree, sometimes with a stale .git: the commit passed in
    SWIMBENCH_GIT_COMMIT is the one recorded; without it, git's own view."""
    from swimbench.measure.env import git_state
    monkeypatch.delenv("SWIMBENCH_GIT_COMMIT", raising=False)
    here = git_state()
    assert here["commit"] is None or (here["source"] == "git" and len(here["commit"]) == 40)
    monkeypatch.setenv("SWIMBENCH_GIT_COMMIT", "0123abc")
    assert git_state() == {"commit": "0123abc", "dirty": None, "source": "SWIMBENCH_GIT_COMMIT"}
