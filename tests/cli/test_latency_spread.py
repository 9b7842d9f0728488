"""`swimbench latency` spread over ranks, on the CPU: torchrun with 2 gloo processes (the command `--gpus N`
runs, from swimbench.distributed) gives the same rows as one process; `--resume` finishes a run whatever
world size measured it; `--gpus` refuses what this host cannot do."""
import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from swimbench import distributed
from swimbench.cli import main

SIZE = ["--d-model", "12", "--d-state", "3", "--seq", "6", "--budget", "0.002", "--min-reps", "2",
        "--warmup", "1", "--dtype", "fp32", "--device", "cpu"]
SWEEP = SIZE + ["-v", "dense,swimba,moe_mamba,rom", "-E", "3,5", "-k", "1,2", "--batch", "1,3"]


def _one_run(out: Path) -> Path:
    (d,) = [p for p in out.iterdir() if p.is_dir()]
    return d


def _torchrun(n: int, *args) -> subprocess.CompletedProcess:
    return subprocess.run(distributed.torchrun(n, ["latency", *args]), env=distributed.launch_env(),
                          capture_output=True, text=True, timeout=600)


def _in_process(capsys, *args) -> int:
    with pytest.raises(SystemExit) as e:
        main(["latency", *args])
    capsys.readouterr()
    return e.value.code


def test_a_sweep_spread_over_two_ranks_has_the_rows_of_one_process(tmp_path, capsys):
    assert _in_process(capsys, *SWEEP, "--out", str(tmp_path / "one")) == 0
    one = pd.read_csv(_one_run(tmp_path / "one") / "results.csv")
    done = _torchrun(2, *SWEEP, "--out", str(tmp_path / "two"))
    assert done.returncode == 0, done.stderr[-3000:]
    d = _one_run(tmp_path / "two")
    two = pd.read_csv(d / "results.csv")
    assert len(one) == (3 * 2 * 2 + 1) * 2                 # (routed variants x E x k, and dense) per batch
    assert list(two["key"]) == list(one["key"])            # the same rows, in sweep order
    assert set(two["status"]) == set(one["status"]) == {"ok"}
    same = ["variant", "experts", "top_k", "seq", "batch", "d_inner", "flops_per_token", "params_total"]
    pd.testing.assert_frame_equal(two[same], one[same])
    # each rank measured its round-robin share of the sweep, and the rows say which
    assert set(two["world_size"]) == {2} and set(one["world_size"]) == {1} and set(one["rank"]) == {0}
    assert list(two["rank"]) == [i % 2 for i in range(len(two))]
    assert two["device_index"].isna().all() and set(two["device"]) == {"cpu"}
    samples = [json.loads(line)["key"] for line in (d / "samples.jsonl").read_text().splitlines()]
    assert sorted(samples) == sorted(two["key"])            # appended by both ranks, none lost
    meta = json.loads((d / "metadata.json").read_text())
    assert meta["status"] == "complete" and len(meta["attempts"]) == 1
    ranks = meta["environment"]["distributed"]["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1] and len({r["pid"] for r in ranks}) == 2
    assert meta["attempts"][0]["measured"] == len(two)
    # rank 0 alone printed the table: one title line
    assert done.stdout.count("swimbench latency, device=cpu") == 1


def test_resume_finishes_a_run_whatever_world_size_measured_it(tmp_path, capsys):
    args = SIZE + ["-v", "dense,swimba,rom", "-E", "2,3", "-k", "1", "--batch", "2", "--out", str(tmp_path)]
    assert _in_process(capsys, *args) == 0
    d = _one_run(tmp_path)
    full = pd.read_csv(d / "results.csv", dtype=str, keep_default_na=False)
    # as if the one-process run had been killed after its first two rows
    full.head(2).to_csv(d / "results.csv", index=False)
    done = _torchrun(2, "--resume", str(d))
    assert done.returncode == 0, done.stderr[-3000:]
    back = pd.read_csv(d / "results.csv", dtype=str, keep_default_na=False)
    assert list(back["key"]) == list(full["key"]) and set(back["status"]) == {"ok"}
    pd.testing.assert_frame_equal(back.head(2), full.head(2))          # kept rows rewritten as they were
    assert list(back["attempt"]) == ["1", "1"] + ["2"] * (len(full) - 2)
    assert set(back["rank"][2:]) == {"0", "1"} and set(back["world_size"][2:]) == {"2"}
    meta = json.loads((d / "metadata.json").read_text())
    assert meta["status"] == "complete" and [a["attempt"] for a in meta["attempts"]] == [1, 2]


@pytest.mark.parametrize("gpus,says", [("0", "--gpus 0 is not allowed: expected an integer >= 1"),
                                       ("2", "--gpus 2: no CUDA GPU is visible here")])
def test_gpus_refuses_what_this_host_cannot_do(gpus, says, capsys):
    import torch
    if torch.cuda.is_available() and gpus != "0":
        pytest.skip("a GPU is visible")
    with pytest.raises(SystemExit) as e:
        main(["latency", "--gpus", gpus, *SIZE[:-2]])
    err = capsys.readouterr().err
    assert e.value.code == 2 and says in err and len(err.strip().splitlines()) == 1


def test_launched_ranks_get_the_safe_environment(monkeypatch):
    monkeypatch.setenv("NCCL_NVLS_ENABLE", "1")
    env = distributed.launch_env()
    assert all(env[k] == v for k, v in distributed.SAFE_ENV.items())
    cmd = distributed.torchrun(3, ["latency", "--seq", "8"])
    assert cmd[1:3] == ["-m", "torch.distributed.run"] and "--nproc-per-node" in cmd
    assert cmd[cmd.index("--master-addr") + 1] == "127.0.0.1" and cmd[-3:] == ["latency", "--seq", "8"]


@pytest.fixture
def four_gpus(monkeypatch):
    """A host that says it has 4 GPUs; the relaunch is recorded, not run."""
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    calls = []

    def fake_run(cmd, env):
        calls.append((cmd, env))
        return subprocess.CompletedProcess(cmd, 0)
    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setenv("NCCL_NVLS_ENABLE", "1")
    return calls


@pytest.mark.parametrize("command", ["latency", "ep"])
def test_gpus_relaunches_the_command_as_ranks_under_torchrun(four_gpus, command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--gpus=3", "--seq", "64,128", "--out", "somewhere", "--gpus", "3"])
    assert e.value.code == 0, capsys.readouterr().err
    ((cmd, env),) = four_gpus
    i = cmd.index("-m", 3)                                  # torchrun's own options, then the module
    assert cmd[:3] == [cmd[0], "-m", "torch.distributed.run"] and cmd[cmd.index("--nproc-per-node") + 1] == "3"
    assert cmd[i + 1:] == ["swimbench", command, "--seq", "64,128", "--out", "somewhere"]
    assert all(env[k] == v for k, v in distributed.SAFE_ENV.items())


def test_gpus_beyond_those_present_is_one_line(four_gpus, capsys):
    with pytest.raises(SystemExit) as e:
        main(["latency", "--gpus", "5"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--gpus 5 is not allowed: expected an integer from 1 to 4" in err
    assert len(err.strip().splitlines()) == 1 and four_gpus == []
