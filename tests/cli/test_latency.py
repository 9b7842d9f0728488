"""`swimbench latency` end to end on the CPU: rows, OOM, interrupt, kill and resume, bad flags."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from swimbench.cli import main
from swimbench.measure import workload

# Tiny layers and budgets: every configuration takes a few tens of milliseconds on the CPU.
SIZE = ["--d-model", "16", "--d-state", "4", "--seq", "8", "-k", "1", "--budget", "0.005",
        "--min-reps", "3", "--warmup", "1", "--dtype", "fp32"]
TINY = SIZE + ["-E", "2,4", "--batch", "1", "-v", "dense,swimba,separated"]
KEYS = ["dense/E1/k1/seq8/b1/L1", "swimba/E2/k1/seq8/b1/L1", "swimba/E4/k1/seq8/b1/L1",
        "separated/E2/k1/seq8/b1/L1", "separated/E4/k1/seq8/b1/L1"]
ON_GPU = torch.cuda.is_available()


def run(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main(["latency", *args])
    out, err = capsys.readouterr()
    return e.value.code, out, err


def run_dir(out: Path) -> Path:
    (d,) = [p for p in out.iterdir() if p.is_dir()]
    return d


def rows(d: Path) -> pd.DataFrame:
    return pd.read_csv(d / "results.csv")


def test_a_small_sweep_writes_complete_rows_and_metadata(tmp_path, capsys):
    code, out, err = run(capsys, *TINY, "--device", "cpu", "--out", str(tmp_path), "--name", "t")
    assert code == 0, err
    d = run_dir(tmp_path)
    df = rows(d)
    assert list(df["key"]) == KEYS and set(df["status"]) == {"ok"} and set(df["device"]) == {"cpu"}
    assert (df["prefill_ms_ci_lo"] <= df["prefill_ms"]).all()
    assert (df["prefill_ms"] <= df["prefill_ms_ci_hi"]).all()
    assert (df["prefill_ms_p10"] <= df["prefill_ms_p90"]).all() and (df["prefill_samples"] >= 3).all()
    tokens = df["batch"] * df["seq"]
    per_s = tokens / (df["prefill_ms"] / 1e3)
    assert df["prefill_tokens_per_s"].to_numpy() == pytest.approx(per_s.to_numpy())
    assert df["prefill_tflops"].to_numpy() == pytest.approx(
        (df["flops_per_token"] * df["prefill_tokens_per_s"] / 1e12).to_numpy())
    assert (df["prefill_gbps"] > 0).all() and (df["decode_us"] > 0).all()
    assert set(df["decode_mode"]) == {"eager"}              # no graphs on the CPU, and labelled so
    assert set(df["prefill_mode"]) == {"eager"} and df["prefill_launch_ms"].isna().all()
    # FLOP-matched to dense, up to the rounding of d_inner to a multiple of 8 (coarse at d_inner 32)
    assert df.loc[0, "flops_mismatch_pct"] == 0 and df["flops_mismatch_pct"].abs().max() < 10
    assert df["prefill_j_per_token"].isna().all()            # no NVML on the CPU
    # Counted work in every row, as the rates were derived from it; no ceilings, so no floors, on the CPU.
    assert (df["prefill_bytes"] > 0).all() and (df["decode_flops"] > 0).all()
    assert df["prefill_gbps"].to_numpy() == pytest.approx((df["prefill_bytes"] / df["prefill_ms"] / 1e6).to_numpy())
    assert df["decode_tflops"].to_numpy() == pytest.approx((df["decode_flops"] / df["decode_us"] / 1e6).to_numpy())
    floors = ["prefill_floor_ms", "prefill_x_floor", "prefill_floor_bound", "decode_floor_us", "decode_x_floor",
              "decode_floor_bound"]
    assert df[floors].isna().all().all() and "x floor" not in out
    meta = json.loads((d / "metadata.json").read_text())
    assert meta["status"] == "complete" and meta["points"] == KEYS and "ceilings" not in meta
    env = meta["environment"]
    assert env["device"] == "cpu" and env["versions"]["torch"] and env["versions"]["swimbench"]
    assert "commit" in env["git"] and env["profile"]["name"] == "cpu"
    assert env["command"].startswith("swimbench latency ") and "--d-model 16" in env["command"]
    samples = [json.loads(line) for line in (d / "samples.jsonl").read_text().splitlines()]
    assert [s["key"] for s in samples] == KEYS and len(samples[0]["prefill_ms"]) >= 3
    assert "dense" in out and "status" in out                # the summary table


def test_out_of_memory_rows_are_recorded_and_the_sweep_goes_on(tmp_path, capsys, monkeypatch):
    # A real allocation failure: a batch of 2**40 needs 2**49 bytes for its input alone.
    code, _, err = run(capsys, *SIZE, "--batch", "1,1099511627776", "-v", "dense,swimba", "-E", "2,2",
                       "--device", "cpu", "--out", str(tmp_path / "real"))
    assert code == 0, err
    df = rows(run_dir(tmp_path / "real"))
    assert list(df["status"]) == ["ok", "ok", "oom", "oom"]
    assert df.loc[2, "error"].startswith("RuntimeError") and "allocate" in df.loc[2, "error"]

    # CUDA's exception type, raised where a GPU would raise it: inside the measurement.
    build = workload.build

    def oom_for_swimba_e2(point, *a, **kw):
        if point.variant == "swimba" and point.experts == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB")
        return build(point, *a, **kw)
    monkeypatch.setattr(workload, "build", oom_for_swimba_e2)
    code, _, err = run(capsys, *TINY, "--device", "cpu", "--out", str(tmp_path / "injected"))
    assert code == 0
    df = rows(run_dir(tmp_path / "injected"))
    assert dict(zip(df["key"], df["status"])) == {**{k: "ok" for k in KEYS}, KEYS[1]: "oom"}
    assert "oom" in err and "CUDA out of memory" in df.loc[1, "error"]


def test_interrupt_keeps_rows_and_resume_measures_only_the_missing(tmp_path, capsys, monkeypatch):
    build, measured = workload.build, []

    def interrupted_at_the_fourth(point, *a, **kw):
        if point.key == KEYS[3]:
            raise KeyboardInterrupt
        measured.append(point.key)
        return build(point, *a, **kw)
    monkeypatch.setattr(workload, "build", interrupted_at_the_fourth)
    code, _, err = run(capsys, *TINY, "--device", "cpu", "--out", str(tmp_path))
    assert code == 130 and "--resume" in err
    d = run_dir(tmp_path)
    kept = (d / "results.csv").read_text().splitlines()
    assert list(rows(d)["key"]) == KEYS[:3]
    assert json.loads((d / "metadata.json").read_text())["status"] == "interrupted"

    def logged(point, *a, **kw):
        measured.append(point.key)
        return build(point, *a, **kw)
    monkeypatch.setattr(workload, "build", logged)
    measured.clear()
    code, _, err = run(capsys, "--resume", str(d), "--budget", "0.005")   # a flag equal to the run's is fine
    assert code == 0, err
    assert measured == KEYS[3:]
    assert "3 already done, measuring 2" in err
    after = (d / "results.csv").read_text().splitlines()
    assert after[:4] == kept                                  # header and kept rows untouched
    df = rows(d)
    assert list(df["key"]) == KEYS and list(df["attempt"]) == [1, 1, 1, 2, 2]
    meta = json.loads((d / "metadata.json").read_text())
    assert meta["status"] == "complete" and [a["attempt"] for a in meta["attempts"]] == [1, 2]


def test_kill_and_resume_measures_only_what_is_missing(tmp_path):
    env = {**os.environ, "SWIMBENCH_KERNELS": "reference", "PYTHONUNBUFFERED": "1"}
    # ~0.25 s a configuration, so the kill lands mid-sweep.
    args = [sys.executable, "-m", "swimbench", "latency", *TINY, "--budget", "0.1", "--device", "cpu",
            "--out", str(tmp_path)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    csv = None
    while time.time() < deadline and proc.poll() is None:
        dirs = [p for p in tmp_path.iterdir() if p.is_dir()]
        if dirs and (dirs[0] / "results.csv").exists() and len(rows(dirs[0])) >= 2:
            csv = dirs[0] / "results.csv"
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert csv is not None, "the run finished or failed before it could be killed"
    kept = rows(csv.parent)
    assert 2 <= len(kept) < len(KEYS) and set(kept["status"]) == {"ok"}
    before = csv.read_text().splitlines()
    done = list(kept["key"])

    res = subprocess.run([sys.executable, "-m", "swimbench", "latency", "--resume", str(csv.parent)],
                         env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    df = rows(csv.parent)
    assert list(df["key"]) == KEYS
    assert csv.read_text().splitlines()[:len(before)] == before
    assert list(df["attempt"]) == [1] * len(done) + [2] * (len(KEYS) - len(done))
    meta = json.loads((csv.parent / "metadata.json").read_text())
    assert meta["attempts"][-1]["measured"] == len(KEYS) - len(done)
    assert meta["attempts"][0]["command"] == "swimbench " + " ".join(args[3:])   # exactly as typed
    assert meta["attempts"][1]["command"] == f"swimbench latency --resume {csv.parent}"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_sent_twice_ends_the_run_cleanly(tmp_path, sig):
    """`timeout` sends its signal to the command and again to its process group: the sweep stops,
    keeps its rows, marks the run interrupted and says how to resume, exit 130."""
    env = {**os.environ, "SWIMBENCH_KERNELS": "reference", "PYTHONUNBUFFERED": "1"}
    args = [sys.executable, "-m", "swimbench", "latency", *TINY, "--budget", "0.1", "--device", "cpu",
            "--out", str(tmp_path)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        dirs = [p for p in tmp_path.iterdir() if p.is_dir()]
        if dirs and (dirs[0] / "results.csv").exists() and len(rows(dirs[0])) >= 1:
            break
        time.sleep(0.02)
    proc.send_signal(sig)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    d = run_dir(tmp_path)
    meta = json.loads((d / "metadata.json").read_text())
    assert proc.returncode == 130, out
    assert meta["status"] == "interrupted" and meta["attempts"][0]["status"] == "interrupted"
    assert 1 <= len(rows(d)) < len(KEYS) and "--resume" in out


def test_a_failing_configuration_is_recorded_and_retried_on_resume(tmp_path, capsys, monkeypatch):
    build = workload.build

    def broken(point, *a, **kw):
        if point.key == KEYS[2]:
            raise ValueError("bad kernel config")
        return build(point, *a, **kw)
    monkeypatch.setattr(workload, "build", broken)
    code, _, err = run(capsys, *TINY, "--device", "cpu", "--out", str(tmp_path))
    assert code == 1 and "failed" in err
    d = run_dir(tmp_path)
    df = rows(d)
    assert list(df["status"]) == ["ok", "ok", "error", "ok", "ok"]
    assert df.loc[2, "error"] == "ValueError: bad kernel config"
    monkeypatch.setattr(workload, "build", build)
    code, _, err = run(capsys, "--resume", str(d))
    assert code == 0 and "measuring 1" in err
    assert list(rows(d)["status"]) == ["ok"] * 5


@pytest.mark.skipif(ON_GPU, reason="checks the CPU-only machine's message")
def test_energy_without_nvml_is_said_once_and_columns_stay_empty(tmp_path, capsys):
    prof = tmp_path / "withenergy.toml"
    prof.write_text('[measure]\nenergy = true\ndecode = "eager"\n')
    code, _, err = run(capsys, "--profile", str(prof), *TINY, "-v", "dense,swimba", "--device", "cpu",
                       "--out", str(tmp_path))
    assert code == 0
    assert err.count("energy columns empty") == 1
    df = rows(run_dir(tmp_path))
    assert df[["prefill_j_per_token", "decode_j_per_token", "energy_source"]].isna().all().all()


@pytest.mark.parametrize("args, flag", [
    (["--experts", "0"], "--experts"),
    (["--experts", "two"], "--experts"),
    (["--top-k", "3", "--experts", "2"], "--top-k"),
    (["--variants", "dense,moe"], "--variants"),
    (["--seq", "-1"], "--seq"),
    (["--batch", "0"], "--batch"),
    (["--layers", "0"], "--layers"),
    (["--d-state", "999"], "--d-state"),
    (["--dtype", "fp8"], "--dtype"),
    (["--decode", "compiled"], "--decode"),
    (["--prefill", "compiled"], "--prefill"),
    (["--budget", "0"], "--budget"),
    (["--energy-window", "0.5"], "--energy-window"),
    (["--min-reps", "0"], "--min-reps"),
    (["--profile", "nope"], "--profile"),
    (["--device", "tpu"], "--device"),
    (["--resume", "/nonexistent/run"], "--resume"),
    (["--name", "a/b"], "--name"),
])
def test_bad_flags_exit_2_with_one_line_naming_the_flag(capsys, tmp_path, args, flag):
    code, out, err = run(capsys, *args, "--out", str(tmp_path))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("swimbench: error:") and flag in lines[0]
    assert not any(tmp_path.iterdir())                      # nothing was started


@pytest.mark.skipif(ON_GPU, reason="GPU-only flags are allowed where there is a GPU")
@pytest.mark.parametrize("args, flag", [(["--decode", "graph"], "--decode"),
                                        (["--prefill", "graph"], "--prefill"), (["--flush-l2"], "--flush-l2"),
                                        (["--mamba-ssm"], "--mamba-ssm"), (["--energy"], "--energy"),
                                        (["--power-interval", "10"], "--power-interval"),
                                        (["--device", "cuda"], "--device")])
def test_gpu_only_flags_on_the_cpu_fail_in_one_line(capsys, tmp_path, args, flag):
    code, _, err = run(capsys, *args, "--out", str(tmp_path))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and flag in lines[0] and ("GPU" in lines[0] or "CUDA" in lines[0])


def test_resume_refuses_a_different_sweep(tmp_path, capsys):
    code, _, _ = run(capsys, *TINY, "-v", "dense", "--device", "cpu", "--out", str(tmp_path))
    assert code == 0
    code, _, err = run(capsys, "--resume", str(run_dir(tmp_path)), "--seq", "16")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "--seq" in lines[0] and "resumed" in lines[0]


@pytest.mark.parametrize("routing", ["balanced", "skewed"])
def test_moe_mamba_and_rom_rows_with_chosen_routing(tmp_path, capsys, routing):
    code, _, err = run(capsys, *SIZE, "-E", "4", "-k", "1,2", "-v", "moe_mamba,rom", "--routing", routing,
                       "--capacity-factor", "1.5", "--device", "cpu", "--out", str(tmp_path))
    assert code == 0, err
    df = rows(run_dir(tmp_path))
    assert list(df["key"]) == [f"{v}/E4/k{k}/seq8/b1/L1" for v in ("moe_mamba", "rom") for k in (1, 2)]
    assert set(df["status"]) == {"ok"} and set(df["routing"]) == {routing}
    assert (df["prefill_ms"] > 0).all() and (df["decode_us"] > 0).all()
    code, _, err = run(capsys, *SIZE, "--routing", "random", "--device", "cpu", "--out", str(tmp_path))
    assert code == 2 and "--routing" in err and "balanced, skewed" in err


def test_host_bound_rows_are_those_whose_launch_outlasts_the_gpu_work():
    from swimbench.cli.latency import host_bound
    df = pd.DataFrame({"key": ["a", "b", "c", "d"], "status": ["ok", "ok", "oom", "ok"],
                       "prefill_ms": [2.0, 0.5, None, 1.0], "prefill_launch_ms": [1.8, 1.7, None, None]})
    assert host_bound(df) == ["b"]
    assert host_bound(df.drop(columns="prefill_launch_ms")) == []
