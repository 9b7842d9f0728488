"""Hostile input, as a new user or a broken disk gives it (issue 14): every case ends in one line on
stderr naming what is wrong, with its own exit status, no traceback, and no change to result files
that were there before. Each category of the issue, with more cases than it lists."""
import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from swimbench.results import RunDir

from swimbench.sweeps.spec import Sweep

from ..synthetic import cli, lognormal, make_run, rng_for

ROOT = Path(__file__).resolve().parents[2]
# sizes at which a latency run is a fraction of a second per row on the CPU
TINY = ["--device", "cpu", "--d-model", "16", "--d-state", "4", "--seq", "8", "-k", "1", "--budget", "0.005",
        "--min-reps", "3", "--warmup", "1", "--dtype", "fp32", "-E", "2", "-v", "dense,swimba"]
SMALL_FLOPS = ["--d-model", "64", "-E", "1,2", "-k", "1", "--seq", "4", "-v", "dense,swimba"]


def one_line(code, err, want_code, *words):
    """The error contract: the exit status, one line on stderr, no traceback, the words it must name.
    (`flops` reports its progress on stderr, line by line, before an error at the end can happen.)"""
    assert code == want_code, err
    err = "".join(line for line in err.splitlines(keepends=True) if not line.startswith("counted "))
    assert "Traceback" not in err
    assert err.strip().count("\n") == 0, err
    for w in words:
        assert w in err, (w, err)


def snapshot(folder: Path) -> dict:
    """Every file under `folder` and a digest of its bytes (the lock file, which a writer creates,
    left out: it is no result)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != RunDir.LOCK}


def unchanged(before: dict, folder: Path) -> bool:
    return snapshot(folder) == before


# --- 1. outputs that cannot be written, checked before any work -------------------------------------
@pytest.fixture
def a_file(tmp_path):
    f = tmp_path / "exists.txt"
    f.write_text("keep me\n")
    return f


UNWRITABLE_FILES = {                      # --out of flops, gate --update's baseline
    "under /proc": lambda t, f: Path("/proc/swimbench-test/flops.json"),
    "/proc itself": lambda t, f: Path("/proc/flops.json"),
    "a directory": lambda t, f: t,
    "under a file": lambda t, f: f / "flops.json",
    "a device": lambda t, f: Path("/dev/null"),
}


@pytest.mark.parametrize("case", sorted(UNWRITABLE_FILES))
def test_flops_out_that_cannot_be_written_is_refused_before_counting(case, tmp_path, a_file, capsys):
    target = UNWRITABLE_FILES[case](tmp_path, a_file)
    before = snapshot(tmp_path)
    code, out, err = cli(["flops", *SMALL_FLOPS, "--out", target], capsys)
    one_line(code, err, 2, "--out", str(target))
    assert out == "" and unchanged(before, tmp_path)       # nothing counted, nothing written


@pytest.mark.parametrize("case", sorted(UNWRITABLE_FILES))
def test_gate_update_to_a_baseline_that_cannot_be_written(case, tmp_path, a_file, capsys):
    target = UNWRITABLE_FILES[case](tmp_path, a_file)
    rng = rng_for(f"hostile-update-{case}")
    run = make_run(tmp_path / "runs", lognormal(rng, n=8), rng=rng, sweep=SMALL_SWEEP)
    before = snapshot(tmp_path)
    code, _, err = cli(["gate", run.path, "--baseline", target, "--update"], capsys)
    one_line(code, err, 2, "--baseline", str(target))
    assert unchanged(before, tmp_path)


UNWRITABLE_DIRS = {                       # --out of latency (a parent) and of report
    "under /proc": lambda t, f: Path("/proc/swimbench-test"),
    "/proc itself": lambda t, f: Path("/proc"),
    "an existing file": lambda t, f: f,
    "under a file": lambda t, f: f / "sub",
}


@pytest.mark.parametrize("case", sorted(UNWRITABLE_DIRS))
def test_latency_out_that_cannot_be_written_is_refused_before_measuring(case, tmp_path, a_file, capsys):
    target = UNWRITABLE_DIRS[case](tmp_path, a_file)
    before = snapshot(tmp_path)
    code, out, err = cli(["latency", *TINY, "--out", target], capsys)
    one_line(code, err, 2, "--out")
    assert out == "" and unchanged(before, tmp_path)


@pytest.mark.parametrize("case", sorted(UNWRITABLE_DIRS))
def test_report_out_that_cannot_be_written(case, tmp_path, a_file, capsys):
    target = UNWRITABLE_DIRS[case](tmp_path, a_file)
    rng = rng_for(f"hostile-report-{case}")
    run = make_run(tmp_path / "runs", lognormal(rng, n=8), rng=rng, sweep=SMALL_SWEEP)
    before = snapshot(tmp_path)
    code, _, err = cli(["report", run.path, "--out", target], capsys)
    one_line(code, err, 2, "--out")
    assert unchanged(before, tmp_path)


def test_latency_from_a_directory_it_cannot_write_names_out(monkeypatch, capsys):
    monkeypatch.chdir("/proc")                  # the default --out is ./reports
    code, _, err = cli(["latency", *TINY], capsys)
    one_line(code, err, 2, "--out", "reports")


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_a_full_disk_leaves_no_partial_output(fmt, tmp_path, monkeypatch, capsys):
    """ENOSPC when the output is flushed: one line, and neither a 0-byte file nor a temporary one."""
    import swimbench.results.atomic as atomic

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(atomic.os, "fsync", full)
    target = tmp_path / "out" / "flops.json"
    code, _, err = cli(["flops", *SMALL_FLOPS, "--format", fmt, "--out", target], capsys)
    one_line(code, err, 2, "--out", "No space left on device")
    assert list(target.parent.iterdir()) == []


def test_a_full_disk_keeps_the_old_output_whole(tmp_path, monkeypatch, capsys):
    import swimbench.results.atomic as atomic
    target = tmp_path / "flops.csv"
    target.write_text("the previous result\n")
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    code, _, err = cli(["flops", *SMALL_FLOPS, "--format", "csv", "--out", target], capsys)
    one_line(code, err, 2, "--out")
    assert target.read_text() == "the previous result\n" and len(list(tmp_path.iterdir())) == 1


# --- empty lists and sizes that overflow ---------------------------------------------------------
@pytest.mark.parametrize("args, flag", [
    (["flops", "-E", ""], "--experts"),
    (["flops", "-E", " , "], "--experts"),
    (["flops", "-v", ""], "--variants"),
    (["flops", "-v", ","], "--variants"),
    (["kernels", "-E", ""], "--experts"),
    (["kernels", "--kernel", ""], "--kernel"),
    (["kernels", "--batch", ","], "--batch"),
    (["latency", "--device", "cpu", "-E", ""], "--experts"),
    (["latency", "--device", "cpu", "-v", ""], "--variants"),
    (["latency", "--device", "cpu", "--seq", ","], "--seq"),
    (["latency", "--device", "cpu", "-k", ""], "--top-k"),
])
def test_empty_lists_name_their_flag(args, flag, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(args, capsys)
    one_line(code, err, 2, flag)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, flag", [
    (["flops", "--d-model", "1000000000"], "--d-model"),
    (["flops", "--seq", "100000000"], "--seq"),
    (["flops", "--batch", "100000000"], "--batch"),
    (["flops", "--seq", "4096", "--batch", "4096"], "--seq"),
    (["flops", "--capacity-factor", "inf"], "--capacity-factor"),
    (["flops", "--capacity-factor", "nan"], "--capacity-factor"),
    (["flops", "--capacity-factor", "0.5"], "--capacity-factor"),
    (["flops", "-E", "100000"], "--experts"),
    (["flops", "--expand", "100000"], "--expand"),
    (["flops", "--ffn-mult", "100000"], "--ffn-mult"),
    (["report", "RUN", "--peak-gbps", "inf"], "--peak-gbps"),
    (["report", "RUN", "--peak-tflops", "nan"], "--peak-tflops"),
    (["report", "RUN", "--peak-gbps", "-1"], "--peak-gbps"),
    (["latency", "--device", "cpu", "--d-model", "1000000000"], "--d-model"),
    (["latency", "--device", "cpu", "--capacity-factor", "inf"], "--capacity-factor"),
    (["latency", "--device", "cpu", "--capacity-factor", "0.5"], "--capacity-factor"),
    (["latency", "--device", "cpu", "--min-reps", "100000000"], "--min-reps"),
    (["latency", "--device", "cpu", "--budget", "inf"], "--budget"),
    (["latency", "--device", "cpu", "--budget", "nan"], "--budget"),
    (["latency", "--device", "cpu", "--repeats", "0"], "--repeats"),
    (["latency", "--device", "cpu", "--repeats", "1000"], "--repeats"),
    (["latency", "--device", "cpu", "--energy-window", "inf"], "--energy-window"),
    (["latency", "--device", "cpu", "--layers", "1000"], "--layers"),
    (["latency", "--device", "cpu", "-E", "2", "-k", "4"], "--top-k"),
    (["latency", "--device", "cpu", "--format", "xml"], "--format"),
    (["gate", "--baseline", "b.json", "--format", "yaml"], "--format"),
])
def test_sizes_that_overflow_and_values_out_of_range(args, flag, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(args, capsys)
    one_line(code, err, 2, flag)
    assert out == "" and list(tmp_path.iterdir()) == []


def test_flops_and_latency_share_one_rule_for_top_k_above_experts(capsys, tmp_path):
    """-k above some expert counts leaves those pairs out, with a note, in both commands; above all of
    them it is refused by both, in the same words."""
    code, out, err = cli(["flops", "--d-model", "64", "-E", "1,2,4", "-k", "2", "--seq", "4", "-v", "dense,swimba",
                          "--format", "json"], capsys)
    assert code == 0, err
    rows = json.loads(out)["rows"]
    assert [(r["variant"], r["experts"], r["top_k"]) for r in rows] == [("dense", 1, 1), ("swimba", 2, 2),
                                                                       ("swimba", 4, 2)]
    assert "--experts 1 left out" in err
    code, out, err = cli(["latency", *TINY, "-E", "1,2", "-k", "2", "--dry-run"], capsys)
    assert code == 0 and "E=1 k=2" in out, err
    messages = []
    for cmd in (["flops", "-E", "2,8", "-k", "16"], ["latency", "--device", "cpu", "-E", "2,8", "-k", "16"]):
        code, _, err = cli(cmd, capsys)
        one_line(code, err, 2, "--top-k")
        messages.append(err.split("expected", 1)[1])
    assert messages[0] == messages[1]


# --- profiles -----------------------------------------------------------------------------------
@pytest.mark.parametrize("content, words", [
    (b"\xff\xfe[model]\nd_model = 64\n", ["not UTF-8"]),
    (b"description = 42\n", ["description", "string"]),
    (b"description = [\"a\"]\n", ["description", "string"]),
    (b"[model]\nd_model = 1e9\n", ["d_model"]),
    (b"[model]\nd_model = 1000000000\n", ["d_model", "65536"]),
    (b"[measure]\nmin_reps = 100000000\n", ["min_reps"]),
    (b"[measure]\nbudget_s = inf\n", ["budget_s", "finite"]),
    (b"[model]\ncapacity_factor = nan\n", ["capacity_factor", "finite"]),
    (b"[sweep]\nexperts = []\n", ["experts", "non-empty"]),
    (b"[gpu]\nname = 'x'\n", ["unknown section"]),
    (b"model = 3\n", ["unknown section"]),
])
def test_bad_profiles_are_one_line_naming_the_file(content, words, tmp_path, capsys):
    prof = tmp_path / "mine.toml"
    prof.write_bytes(content)
    code, _, err = cli(["latency", "--device", "cpu", "--profile", prof, "--out", tmp_path / "runs"], capsys)
    one_line(code, err, 2, "--profile", str(prof), *words)
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []


@pytest.mark.parametrize("path, words", [("/etc/passwd", ["not a profile"]), ("/etc", ["directory"]),
                                          ("no-such-profile", ["no profile named"])])
def test_profile_paths_that_are_not_profiles(path, words, capsys, tmp_path):
    code, _, err = cli(["latency", "--device", "cpu", "--profile", path, "--out", tmp_path], capsys)
    one_line(code, err, 2, "--profile", *words)


@pytest.mark.parametrize("content", ["", "# nothing yet\n", 'description = "mine"\n', "[model]\n[sweep]\n"])
def test_a_profile_that_sets_nothing_is_refused(content, tmp_path, capsys):
    """It was the built-in GPU sweep (D=2048, seq 2048), on a CPU too, where it runs for hours."""
    prof = tmp_path / "empty.toml"
    prof.write_text(content)
    code, out, err = cli(["latency", "--device", "cpu", "--profile", prof, "--dry-run"], capsys)
    one_line(code, err, 2, "--profile", str(prof), "sets nothing")
    assert out == ""


# --- 2. damaged run directories: latency --resume, report and gate alike ----------------------------
SMALL_SWEEP = Sweep(d_model=64, variants=("dense", "swimba"), experts=(2,), top_k=(1,), seq=(8,),
                              batch=(1,))


def _truncate(run: Path):
    text = (run / "results.csv").read_text()
    (run / "results.csv").write_text(text[:len(text) - len(text.splitlines()[-1]) // 2 - 1])


def _extra_field(run: Path):
    lines = (run / "results.csv").read_text().splitlines()
    lines[-1] += ",surplus"
    (run / "results.csv").write_text("\n".join(lines) + "\n")


def _meta(run: Path, change):
    meta = json.loads((run / "metadata.json").read_text())
    (run / "metadata.json").write_text(json.dumps(change(meta)))


def _cell(run: Path, column: str, value: str):
    df = pd.read_csv(run / "results.csv", dtype=str, keep_default_na=False)
    df.loc[df["status"] == "ok", column] = value
    df.to_csv(run / "results.csv", index=False)


def _drop(run: Path, column: str):
    df = pd.read_csv(run / "results.csv", dtype=str, keep_default_na=False)
    df.drop(columns=[column]).to_csv(run / "results.csv", index=False)


def _samples(run: Path, prefill):
    """A samples record of the run's first row whose prefill samples are `prefill`."""
    key = pd.read_csv(run / "results.csv", dtype=str)["key"].iloc[0]
    with open(run / "samples.jsonl", "a") as f:
        f.write(json.dumps({"key": key, "attempt": 1, "prefill_ms": prefill, "decode_us": [1.0]}) + "\n")


DAMAGES = {
    "truncated results.csv": (_truncate, "results.csv"),
    "a row with more fields": (_extra_field, "results.csv"),
    "results.csv not UTF-8": (lambda r: (r / "results.csv").write_bytes(b"\xff\xfe\x00key"), "results.csv"),
    "empty results.csv": (lambda r: (r / "results.csv").write_text(""), "results.csv"),
    "no results.csv": (lambda r: (r / "results.csv").unlink(), "results.csv"),
    "metadata.json is []": (lambda r: (r / "metadata.json").write_text("[]"), "metadata.json"),
    "metadata.json not JSON": (lambda r: (r / "metadata.json").write_text("{oops"), "metadata.json"),
    "metadata.json without environment": (lambda r: _meta(r, lambda m: {k: v for k, v in m.items()
                                                                       if k != "environment"}), "metadata.json"),
    "points a string": (lambda r: _meta(r, lambda m: {**m, "points": "dense"}), "metadata.json"),
    "points of numbers": (lambda r: _meta(r, lambda m: {**m, "points": [1, 2]}), "metadata.json"),
    "garbage line in samples.jsonl": (lambda r: open(r / "samples.jsonl", "a").write("garbage}\n"),
                                      "samples.jsonl"),
    "a samples record without key": (lambda r: open(r / "samples.jsonl", "a").write('{"prefill_ms": [1]}\n'),
                                     "samples.jsonl"),
    "non-numeric prefill_ms in an ok row": (lambda r: _cell(r, "prefill_ms", "fast"), "results.csv"),
    "non-numeric decode_us in an ok row": (lambda r: _cell(r, "decode_us", "1.2.3"), "results.csv"),
    "an ok row without its median": (lambda r: _cell(r, "prefill_ms", ""), "results.csv"),
    "empty power.csv": (lambda r: (r / "power.csv").write_text(""), "power.csv"),
    # found by the audit of hostile input (a traceback, or a report or gate of damaged numbers)
    "a status the sweeps never write": (lambda r: _cell(r, "status", "weird"), "results.csv"),
    "no experts column": (lambda r: _drop(r, "experts"), "results.csv"),
    "a negative seq in an ok row": (lambda r: _cell(r, "seq", "-8"), "results.csv"),
    "prefill_ms of 0 in an ok row": (lambda r: _cell(r, "prefill_ms", "0.0"), "results.csv"),
    "prefill_ms negative in an ok row": (lambda r: _cell(r, "prefill_ms", "-1.5"), "results.csv"),
    "decode_us inf in an ok row": (lambda r: _cell(r, "decode_us", "inf"), "results.csv"),
    "results.csv a directory": (lambda r: ((r / "results.csv").unlink(), (r / "results.csv").mkdir()),
                                "results.csv"),
    "samples a number": (lambda r: _samples(r, 5.0), "samples.jsonl"),
    "samples of strings": (lambda r: _samples(r, ["fast"]), "samples.jsonl"),
    "samples nested": (lambda r: _samples(r, [[1.0, 2.0]]), "samples.jsonl"),
    "samples an empty list": (lambda r: _samples(r, []), "samples.jsonl"),
    "a samples key that is a number": (lambda r: open(r / "samples.jsonl", "a").write('{"key": 5}\n'),
                                       "samples.jsonl"),
    "environment gpu a string": (lambda r: _meta(r, lambda m: {**m, "environment": {**m["environment"],
                                                                                   "gpu": "H100"}}),
                                 "metadata.json"),
    "attempts of strings": (lambda r: _meta(r, lambda m: {**m, "attempts": ["x"]}), "metadata.json"),
    "an attempt's notes a string": (lambda r: _meta(r, lambda m: {**m, "attempts": [{"notes": "abc"}]}),
                                    "metadata.json"),
    "ceilings a string": (lambda r: _meta(r, lambda m: {**m, "ceilings": "fast"}), "metadata.json"),
    "ceilings negative": (lambda r: _meta(r, lambda m: {**m, "ceilings": {"tflops": -1.0, "gbps": 2.0}}),
                          "metadata.json"),
    "power.csv rows not numbers": (lambda r: (r / "power.csv").write_text(
        "unix_time,power_w,instant_w,label\nx,y,z,idle\n"), "power.csv"),
}


@pytest.fixture
def cpu_run(tmp_path):
    """A complete CPU run directory (device cpu, as a resume here needs), written by the run's writers."""
    rng = rng_for("hostile-damage")
    run = make_run(tmp_path / "runs", lognormal(rng, n=8), rng=rng, gpu=None, sweep=SMALL_SWEEP)
    return run.path


@pytest.mark.parametrize("damage", sorted(DAMAGES))
@pytest.mark.parametrize("command", ["resume", "report", "gate"])
def test_damaged_run_directories_are_diagnosed_alike(damage, command, cpu_run, tmp_path, capsys):
    harm, file = DAMAGES[damage]
    if command == "resume" and damage == "no results.csv":
        pytest.skip("a run killed before its first row has no results.csv, and --resume measures it")
    if file == "power.csv" and not (cpu_run / "power.csv").exists():
        (cpu_run / "power.csv").write_text("unix_time,power_w,instant_w,label\n")
    harm(cpu_run)
    before = snapshot(cpu_run)
    args = {"resume": ["latency", "--device", "cpu", "--resume", cpu_run],
            "report": ["report", cpu_run, "--out", tmp_path / "report"],
            "gate": ["gate", cpu_run, "--baseline", ROOT / "profiles" / "baselines" / "h200.json"]}[command]
    code, out, err = cli(args, capsys)
    one_line(code, err, 2, file)
    assert unchanged(before, cpu_run)
    assert not (tmp_path / "report").exists() or not any((tmp_path / "report").iterdir())


def test_a_gate_fails_a_run_with_fewer_rows_than_its_points(tmp_path, capsys):
    rng = rng_for("hostile-missing")
    run = make_run(tmp_path, lognormal(rng, n=8), rng=rng, sweep=SMALL_SWEEP, name="base")
    assert cli(["gate", run.path, "--baseline", tmp_path / "b.json", "--update"], capsys)[0] == 0
    df = pd.read_csv(run.path / "results.csv", dtype=str, keep_default_na=False)
    gone = df["key"].iloc[int(rng.integers(len(df)))]
    df[df["key"] != gone].to_csv(run.path / "results.csv", index=False)
    code, out, err = cli(["gate", run.path, "--baseline", tmp_path / "b.json", "--format", "json"], capsys)
    assert code == 1, err
    doc = json.loads(out)
    assert doc["verdict"] == "FAIL"
    assert [v["configuration"] for v in doc["verdicts"] if v["verdict"] == "failed"] == [gone]


def test_a_truncated_row_is_not_kept_as_done_by_resume(tmp_path, capsys):
    code, _, err = cli(["latency", *TINY, "--out", tmp_path], capsys)
    assert code == 0, err
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    _truncate(run)
    before = snapshot(run)
    code, _, err = cli(["latency", "--device", "cpu", "--resume", run], capsys)
    one_line(code, err, 2, "--resume", "results.csv", "line 3")
    assert unchanged(before, run)


# --- 3. silent wrong results ---------------------------------------------------------------------
@pytest.mark.parametrize("value", [0, "NaN", -1.0, "Infinity"])
def test_a_baseline_value_of_zero_or_nan_is_a_bad_baseline(value, tmp_path, capsys):
    rng = rng_for(f"hostile-zero-{value}")
    run = make_run(tmp_path, lognormal(rng, n=8), rng=rng, sweep=SMALL_SWEEP)
    base = tmp_path / "b.json"
    assert cli(["gate", run.path, "--baseline", base, "--update"], capsys)[0] == 0
    doc = json.loads(base.read_text())
    key = sorted(doc["rows"])[int(rng.integers(len(doc["rows"])))]
    doc["rows"][key]["metrics"]["prefill_ms"]["value"] = value
    base.write_text(json.dumps(doc).replace('"NaN"', "NaN").replace('"Infinity"', "Infinity"))
    code, _, err = cli(["gate", run.path, "--baseline", base], capsys)
    one_line(code, err, 3, str(base), key, "prefill_ms")


def test_a_run_whose_rows_all_failed_fails_the_gate(tmp_path, capsys):
    rng = rng_for("hostile-all-error")
    run = make_run(tmp_path, lognormal(rng, n=8), rng=rng, sweep=SMALL_SWEEP)
    base = tmp_path / "b.json"
    assert cli(["gate", run.path, "--baseline", base, "--update"], capsys)[0] == 0
    df = pd.read_csv(run.path / "results.csv", dtype=str, keep_default_na=False)
    df["status"], df["error"] = "error", "RuntimeError: boom"
    df.to_csv(run.path / "results.csv", index=False)
    code, out, err = cli(["gate", run.path, "--baseline", base, "--format", "json"], capsys)
    assert code == 1, err
    assert {v["verdict"] for v in json.loads(out)["verdicts"]} == {"failed"}


@pytest.mark.parametrize("flag", [["--out", "elsewhere"], ["--name", "other"], ["-o", "x"]])
def test_resume_refuses_flags_it_would_ignore(flag, cpu_run, capsys):
    before = snapshot(cpu_run)
    code, _, err = cli(["latency", "--device", "cpu", "--resume", cpu_run, *flag], capsys)
    one_line(code, err, 2, flag[0] if flag[0] != "-o" else "--out", "--resume")
    assert unchanged(before, cpu_run)


def test_outputs_into_a_run_directory_are_refused(cpu_run, tmp_path, capsys):
    before = snapshot(cpu_run)
    code, _, err = cli(["latency", *TINY, "--out", cpu_run], capsys)
    one_line(code, err, 2, "--out", "run director")
    code, _, err = cli(["report", cpu_run, "--out", cpu_run], capsys)
    one_line(code, err, 2, "--out", "run director")
    assert unchanged(before, cpu_run)


def test_a_sweep_where_every_row_is_oom_says_nothing_was_measured(tmp_path, capsys):
    code, out, err = cli(["latency", *TINY, "--batch", "1099511627776", "--out", tmp_path, "--format", "json"],
                         capsys)
    assert code == 5, err
    doc = json.loads(out)
    assert doc["status"] == "nothing measured" and doc["exit"] == 5
    assert {r["status"] for r in doc["rows"]} == {"oom"}
    assert "nothing measured" in err


# --- 4. unbounded work: --dry-run ---------------------------------------------------------------
def test_dry_run_prints_the_sweep_and_measures_nothing(tmp_path, capsys):
    rng = np.random.default_rng(rng_for("hostile-dry").integers(1 << 30))
    experts = sorted({2} | {int(e) for e in rng.integers(2, 9, size=3)})     # TINY has -E 2: lists add up
    code, out, err = cli(["latency", *TINY, "-E", ",".join(map(str, experts)), "--repeats", "2",
                          "--out", tmp_path / "runs", "--dry-run", "--format", "json"], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["rows"] == 1 + len(experts) == len(doc["points"]) and doc["repeats"] == 2
    assert doc["estimate_s"] > 0 and not (tmp_path / "runs").exists()


# --- 5. concurrent writers: a lock on the run directory ------------------------------------------
def test_a_second_writer_is_refused_naming_the_holder(cpu_run, capsys):
    before = snapshot(cpu_run)
    with RunDir(cpu_run).lock():
        code, _, err = cli(["latency", "--device", "cpu", "--resume", cpu_run], capsys)
    one_line(code, err, 2, "--resume", f"pid {os.getpid()}")
    assert unchanged(before, cpu_run)


def test_the_lock_is_released_when_its_holder_is_killed(cpu_run):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom swimbench.results import RunDir\n"
                               f"with RunDir({str(cpu_run)!r}).lock():\n    print('held', flush=True)\n"
                               "    time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        from swimbench.results.rundir import RunLocked
        with pytest.raises(RunLocked) as e:
            with RunDir(cpu_run).lock():
                pass
        assert e.value.pid == holder.pid
    finally:
        holder.kill()
        holder.wait()
    with RunDir(cpu_run).lock():            # kill -9 leaves no stale lock
        pass


# --- SIGINT during start-up ----------------------------------------------------------------------
# Before ~0.1 s the interpreter itself is starting (its own traceback, no swimbench code yet); past
# ~2 s the sweep runs, whose interrupt tests/cli/test_latency.py covers.
@pytest.mark.parametrize("delay", [0.3, 0.8])
def test_sigint_during_start_up_is_one_line(delay, tmp_path):
    env = {**os.environ, "SWIMBENCH_KERNELS": "reference"}
    p = subprocess.Popen([sys.executable, "-m", "swimbench", "latency", *TINY, "--out", str(tmp_path)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    time.sleep(delay)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert "Traceback" not in err, err
    # interrupted (130, or killed by the signal once Python re-raises it at exit), or finished first
    assert p.returncode in (0, 130, -signal.SIGINT), err
    if p.returncode != 0:
        tail = " ".join(err.strip().splitlines()[-3:])
        assert "swimbench: interrupted" in tail or "--resume" in tail or (
            p.returncode == -signal.SIGINT and not err.strip()), err


def test_version():
    out = subprocess.run([sys.executable, "-m", "swimbench", "--version"], capture_output=True, text=True)
    from swimbench import __version__
    assert out.returncode == 0 and out.stdout.strip() == f"swimbench {__version__}"


def test_snapshot_sees_a_change(tmp_path):
    """The check the tests above rely on: a changed byte is seen."""
    (tmp_path / "a").write_bytes(b"x")
    before = snapshot(tmp_path)
    (tmp_path / "a").write_bytes(b"y")
    assert not unchanged(before, tmp_path)
    shutil.rmtree(tmp_path / "a", ignore_errors=True)


def test_a_disk_that_fills_mid_run_is_one_line_and_keeps_what_was_written(tmp_path, monkeypatch, capsys):
    """ENOSPC on the second write of results.csv: one line naming the problem, exit 74 (EX_IOERR),
    and the first row, written before, still whole on disk."""
    import swimbench.results.rundir as rundir
    real, writes = rundir.atomic_write_text, []

    def fills_up(path, text):
        if Path(path).name == "results.csv":
            writes.append(path)
            if len(writes) > 1:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, text)
    monkeypatch.setattr(rundir, "atomic_write_text", fills_up)
    code, _, err = cli(["latency", *TINY, "--out", tmp_path], capsys)
    err = "".join(line for line in err.splitlines(keepends=True) if line.startswith("swimbench:"))
    one_line(code, err, 74, "No space left on device", "results.csv")
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    df = pd.read_csv(run / "results.csv")
    assert list(df["status"]) == ["ok"] and df["prefill_ms"].notna().all()


# --- found by the audit of hostile input: each was a traceback, a wrong exit status, work done before
# the error, or a silently wrong result ------------------------------------------------------------
@pytest.mark.parametrize("args, flag", [
    (["latency", "--device", "cuda:x"], "--device"),             # torch.device's own error, a traceback
    (["latency", "--device", "cuda:-1"], "--device"),
    (["generate", "--device", "cuda:x"], "--device"),
    (["latency", *TINY, "--name", "x\ny"], "--name"),              # a run directory with a newline
    (["latency", *TINY, "--name", ".."], "--name"),
    (["latency", *TINY, "--name", "   "], "--name"),
    (["generate", "--device", "cpu", "--name", "a\tb"], "--name"),
    (["ep", "--device", "cpu", "--name", ""], "--name"),            # a run directory named "<time>-"
    (["ep", "--device", "cpu", "--name", "a/b"], "--name"),         # exit 74 after work had started
    (["ep", "--device", "cpu", "--modes", ""], "--modes"),          # measured nothing, then 3 lines
    (["ep", "--device", "cpu", "-v", ","], "--variants"),
    (["ep", "--device", "cpu", "--reps", "10000000000"], "--reps"),   # a run that never ends
    (["ep", "--device", "cpu", "--warmup", "10000000000"], "--warmup"),
    (["ep", "--device", "cpu", "--out", "/proc/swimbench-test"], "--out"),   # exit 74 after starting
    (["flops", "-E", "\uff12"], "--experts"),                       # a full-width 2, read as 2
    (["kernels", "-b", "\u0663"], "--batch"),                       # an Arabic-Indic 3
    (["gate", "--baseline", "b.json", "-t", "prefill_ms=inf"], "--threshold"),   # gates nothing
    (["flops", "-m", "tiny", "--d-model", "64"], "--d-model"),     # silently replaced by the preset's
    (["flops", "-m", "tiny", "--seq", "8"], "--seq"),
    (["flops", "-m", "tiny"], "--experts"),                         # blamed -k, which was not given
    (["latency", "--device", "cpu", "--profile", ""], "--profile"),   # silently the default profile
    # already refused, and not covered before
    (["flops", "--d-model", "0x40"], "--d-model"),
    (["flops", "--d-model", "1e309"], "--d-model"),
    (["flops", "--d-model", "-0"], "--d-model"),
    (["flops", "--seq", "1e3"], "--seq"),
    (["flops", "-E", "1e2"], "--experts"),
    (["flops", "--align", "0"], "--align"),
    (["flops", "--match", "both"], "--match"),
    (["flops", "-m", ""], "--model"),
    (["latency", "--device", "cpu", "--seed", "-1"], "--seed"),
    (["latency", "--device", "cpu", "--seed", "99999999999999999999999"], "--seed"),
    (["latency", "--device", "cpu", "--budget", "0"], "--budget"),
    (["latency", "--device", "cpu", "--warmup", "0"], "--warmup"),
    (["latency", "--device", "cpu", "--power-interval", "nan"], "--power-interval"),
    (["latency", "--device", "cpu", "--prefill", "graphs"], "--prefill"),
    (["latency", "--device", "cpu", "--routing", "random"], "--routing"),
    (["latency", "--device", "cpu", "--dtype", "BF16"], "--dtype"),
    (["latency", "--device", "cpu", "--gpus", "0"], "--gpus"),
    (["latency", "--device", "cpu", "-v", "dense,DENSE"], "--variants"),
    (["generate", "--device", "cpu", "--new-tokens", "1"], "--new-tokens"),
    (["generate", "--device", "cpu", "--vocab-size", "1"], "--vocab-size"),
    (["generate", "--device", "cpu", "--preset", "2b"], "--preset"),
    (["generate", "--device", "cpu", "--budget", "nan"], "--budget"),
    (["kernels", "--d-state", "300"], "--d-state"),
    (["kernels", "-K", "bogus"], "--kernel"),
    (["ep", "--device", "cpu", "-v", "dense"], "--variants"),
    (["ep", "--device", "cpu", "-E", "1"], "--experts"),
    (["ep", "--device", "cuda:0"], "--device"),
    (["ep", "--device", "cpu", "--append", "/nonexistent/run"], "--append"),
    (["gate", "--baseline", "b.json", "--skip", "prefill_ms,decode_us"], "--skip"),
    (["gate", "--baseline", "b.json", "--skip", "latency"], "--skip"),
    (["gate", "--baseline", "b.json", "--alpha", "nan"], "--alpha"),
    (["gate", "--baseline", "b.json", "--show", "none"], "--show"),
    (["report", "RUN", "--peak-tflops", "0"], "--peak-tflops"),
    (["latency", "--dry-run=yes"], "--dry-run"),
    (["latency", "--kernel", "dense"], "--kernel"),                 # another command's flag
    (["flops", "--device", "cpu"], "--device"),
    (["gate", "--baseline", "b.json", "--out", "x"], "--out"),
])
def test_audited_flags_are_one_line_before_any_work(args, flag, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(args, capsys)
    one_line(code, err, 2, flag)
    assert out == "" and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("env, words", [
    ({"WORLD_SIZE": "x", "RANK": "0"}, ["WORLD_SIZE", "RANK"]),     # torch.distributed's traceback
    ({"WORLD_SIZE": "2", "RANK": "5"}, ["WORLD_SIZE", "RANK"]),
    ({"SWIMBENCH_INJECT_SLOWDOWN": "dense:abc"}, ["SWIMBENCH_INJECT_SLOWDOWN"]),   # every row an error
    ({"SWIMBENCH_INJECT_SLOWDOWN": "dense:nan"}, ["SWIMBENCH_INJECT_SLOWDOWN"]),
    ({"SWIMBENCH_INJECT_SLOWDOWN": "swimba"}, ["SWIMBENCH_INJECT_SLOWDOWN"]),
    ({"SWIMBENCH_KERNELS": "fused"}, ["SWIMBENCH_KERNELS", "reference"]),     # silently meant auto
    ({"SWIMBENCH_KERNELS": ""}, ["SWIMBENCH_KERNELS", "reference"]),
])
def test_environment_variables_that_make_no_sense_are_refused_before_measuring(env, words, tmp_path,
                                                                              monkeypatch, capsys):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    code, out, err = cli(["latency", *TINY, "--out", tmp_path], capsys)
    one_line(code, err, 2, *words)
    assert out == "" and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content, words", [
    (b"[model]\nd_model = 64\nd_model = 32\n", ["not valid TOML"]),
    (b"[model]\nd_model=64\n[model]\nexpand=2\n", ["not valid TOML"]),
    (b"[model]\x00\nd_model=64\n", ["not valid TOML"]),
    (b"\xef\xbb\xbf[model]\nd_model = 64\n", ["not valid TOML"]),
    (b"[model]\nd_model = '64'\n", ["d_model"]),
    (b"[model]\nd_model = true\n", ["d_model"]),
    (b"[model]\nd_model = [64]\n", ["d_model"]),
    (b"[sweep]\nexperts = 4\n", ["experts", "list"]),
    (b"[sweep.inner]\nexperts = [4]\n", ["unknown key", "inner"]),
    (b"[sweep]\nexperts = {a = 1}\n", ["experts"]),
    (b"[[sweep]]\nexperts = [2]\n", ["unknown section"]),
    (b"[measure]\nseed = 1979-05-27\n", ["seed"]),
    (b"[sweep]\nseq = [nan]\n", ["seq"]),
    (b"[description]\nx = 1\n", ["description"]),
])
def test_more_bad_profiles(content, words, tmp_path, capsys):
    prof = tmp_path / "mine.toml"
    prof.write_bytes(content)
    code, _, err = cli(["latency", "--device", "cpu", "--profile", prof, "--out", tmp_path / "runs"], capsys)
    one_line(code, err, 2, "--profile", str(prof), *words)
    assert not (tmp_path / "runs").exists()


def _first_metric(doc):
    return doc["rows"][sorted(doc["rows"])[0]]


BASELINE_DAMAGES = {                          # each silently compared, or a traceback, before
    "a value that is a string of a number": lambda d: _first_metric(d)["metrics"]["prefill_ms"].update(value="1.5"),
    "a value that is true": lambda d: _first_metric(d)["metrics"]["prefill_ms"].update(value=True),
    "samples nested": lambda d: _first_metric(d)["metrics"]["prefill_ms"].update(samples=[[1.0, 2.0]]),
    "samples negative": lambda d: _first_metric(d)["metrics"]["prefill_ms"].update(samples=[-1.0, -2.0]),
    "an interval the wrong way round": lambda d: _first_metric(d)["metrics"]["prefill_ms"].update(ci_lo=1e9,
                                                                                                  ci_hi=0),
    "a status the sweeps never write": lambda d: _first_metric(d).update(status="weird"),
    "gpu a number": lambda d: d.update(gpu=5),
    "device null": lambda d: d.update(device=None),
    # already refused, and not covered before
    "rows a list": lambda d: d.update(rows=[]),
    "samples of strings": lambda d: _first_metric(d)["metrics"]["prefill_ms"].update(samples=["a"]),
    "identity missing": lambda d: _first_metric(d).pop("identity"),
    "kind unknown": lambda d: d.update(kind="energy"),
}


@pytest.mark.parametrize("damage", sorted(BASELINE_DAMAGES))
def test_damaged_baselines_are_exit_3_naming_the_file(damage, tmp_path, capsys):
    rng = rng_for(f"hostile-baseline-{damage}")
    run = make_run(tmp_path, lognormal(rng, n=8), rng=rng, gpu=None, sweep=SMALL_SWEEP)
    base = tmp_path / "b.json"
    assert cli(["gate", run.path, "--baseline", base, "--update"], capsys)[0] == 0
    doc = json.loads(base.read_text())
    BASELINE_DAMAGES[damage](doc)
    base.write_text(json.dumps(doc))
    before = snapshot(tmp_path)
    code, out, err = cli(["gate", run.path, "--baseline", base], capsys)
    one_line(code, err, 3, str(base))
    assert out == "" and unchanged(before, tmp_path)


@pytest.mark.parametrize("text", ["", "null", "[]", "{}"])
def test_baselines_that_are_no_baseline(text, tmp_path, capsys):
    rng = rng_for("hostile-empty-baseline")
    run = make_run(tmp_path, lognormal(rng, n=8), rng=rng, gpu=None, sweep=SMALL_SWEEP)
    base = tmp_path / "b.json"
    base.write_text(text)
    code, _, err = cli(["gate", run.path, "--baseline", base], capsys)
    one_line(code, err, 3, str(base))


def test_ep_records_an_out_of_memory_configuration_and_says_nothing_was_measured(tmp_path, capsys):
    """A sequence no host can hold: the allocator's error was a traceback; now the configuration is
    said and recorded in the attempt, and with nothing measured the exit status is 5, as latency's."""
    code, _, err = cli(["ep", "--device", "cpu", "-v", "swimba", "-E", "2", "-k", "1", "-s", "1099511627776",
                        "--d-model", "16", "--dtype", "fp32", "--reps", "1", "--warmup", "0", "--modes", "expert",
                        "--out", tmp_path], capsys)
    assert code == 5, err
    assert "Traceback" not in err and "oom" in err and "nothing measured" in err
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["attempts"][-1]["oom"] == ["swimba/E2/k1/seq1099511627776/b1/expert"]


def _stored(section: str, field: str, value):
    def harm(run: Path):
        _meta(run, lambda m: {**m, section: {**m[section], field: value}})
    return harm


@pytest.mark.parametrize("harm, words", [
    (_stored("sweep", "experts", "2"), ["experts"]),              # a TypeError deep in the sweep
    (_stored("sweep", "d_model", 10 ** 9), ["d_model", "65536"]),
    (_stored("sweep", "variants", ["bogus"]), ["variants"]),
    (_stored("settings", "budget_s", float("nan")), ["budget_s"]),    # resumed with a budget of nan
    (_stored("settings", "min_reps", 0), ["min_reps"]),
])
def test_resume_holds_the_stored_sweep_to_the_flags_rules(harm, words, cpu_run, capsys):
    harm(cpu_run)
    before = snapshot(cpu_run)
    code, _, err = cli(["latency", "--device", "cpu", "--resume", cpu_run], capsys)
    one_line(code, err, 2, "--resume", "metadata.json", *words)
    assert unchanged(before, cpu_run)


def test_resume_of_a_run_whose_profile_has_no_path(cpu_run, capsys):
    """Run metadata without the profile's path (a KeyError before) is compared by name."""
    code, _, err = cli(["latency", "--device", "cpu", "--resume", cpu_run, "--profile", "default"], capsys)
    one_line(code, err, 2, "--profile", "synthetic")


def _ep_run(folder: Path, table=None, meta=None) -> Path:
    run = folder / "ep-run"
    run.mkdir()
    (run / "metadata.json").write_text(json.dumps({"tool": "swimbench ep", "attempts": []} if meta is None
                                                  else meta))
    if table is not None:
        (run / "ep.csv").write_bytes(table)
    return run


@pytest.mark.parametrize("table, words", [
    (None, ["no expert-parallel rows"]),                      # each a traceback before
    (b"a,b\n1,2\n", ["ep.csv", "variant"]),
    (b"\xff\xfe\x00", ["ep.csv", "utf-8"]),
])
def test_report_of_a_damaged_expert_parallel_run(table, words, tmp_path, capsys):
    run = _ep_run(tmp_path, table)
    before = snapshot(tmp_path)
    code, _, err = cli(["report", run], capsys)
    one_line(code, err, 2, *words)
    assert unchanged(before, tmp_path) and not (run / "report").exists()


def test_ep_append_to_a_run_without_attempts_is_refused_before_measuring(tmp_path, capsys):
    run = _ep_run(tmp_path, meta={"tool": "swimbench ep"})       # a KeyError after measuring, before
    before = snapshot(tmp_path)
    code, _, err = cli(["ep", "--device", "cpu", "-v", "swimba", "-E", "2", "--append", run], capsys)
    one_line(code, err, 2, "--append")
    assert unchanged(before, tmp_path)


def test_a_run_records_the_switches_that_change_what_it_times(tmp_path, monkeypatch, capsys):
    """A run timed on the reference ops, or with an injected slowdown, says so in its environment."""
    monkeypatch.setenv("SWIMBENCH_KERNELS", "reference")
    monkeypatch.setenv("SWIMBENCH_INJECT_SLOWDOWN", "swimba:0.05")
    code, _, err = cli(["latency", *TINY, "-v", "dense", "--out", tmp_path], capsys)
    assert code == 0, err
    (run,) = tmp_path.iterdir()
    env = json.loads((run / "metadata.json").read_text())["environment"]["env_vars"]
    assert env["SWIMBENCH_KERNELS"] == "reference" and env["SWIMBENCH_INJECT_SLOWDOWN"] == "swimba:0.05"


# === a newcomer's first hour on a CPU: long runs said before they start, help that shows defaults ========
# (the start-up without torch: tests/cli/test_startup.py; the estimates' scaling: tests/measure/test_estimate.py)
LONG_ON_A_CPU = {
    "latency": (["latency", "--device", "cpu", "--profile", "default"], "swimbench.cli.latency._run",
                "--profile cpu"),
    "generate": (["generate", "--device", "cpu", "--preset", "1.4b"], "swimbench.cli.generate._run",
                 "--preset tiny"),
    "ep": (["ep", "--device", "cpu"], "swimbench.results.ep.create", "swimbench ep --device cpu --d-model"),
}


class _WorkStarted(Exception):
    pass


@pytest.mark.parametrize("command", list(LONG_ON_A_CPU))
def test_a_run_too_long_for_the_cpu_says_so_in_one_line_before_any_work(command, tmp_path, capsys, monkeypatch):
    args, work, smaller = LONG_ON_A_CPU[command]
    said = []

    def started(*a, **k):                   # the first step of the work: what stderr held by then
        said.append(capsys.readouterr().err)
        raise SystemExit(99)
    monkeypatch.setattr(work, started)
    code, _, _ = cli([*args, "--out", tmp_path / "runs"], capsys)
    assert code == 99 and len(said) == 1, said
    warned = [line for line in said[0].splitlines() if line.startswith("warning: this run is estimated")]
    assert len(warned) == 1 and "on the CPU" in warned[0] and smaller in warned[0], said[0]
    minutes = float(warned[0].split("estimated to take ")[1].split()[0])
    unit = warned[0].split("estimated to take ")[1].split()[1]
    assert (unit == "min" and minutes > 10) or unit == "h", warned[0]


@pytest.mark.parametrize("command", ["latency", "generate"])
def test_the_cpu_sized_run_it_names_is_short(command, capsys, tmp_path):
    from swimbench.cli.long_runs import LONG_S
    args = {"latency": ["latency", "--device", "cpu", "--profile", "cpu"],
            "generate": ["generate", "--device", "cpu", "--preset", "tiny"]}[command]
    code, out, err = cli([*args, "--dry-run", "--format", "json", "--out", tmp_path], capsys)
    assert code == 0, err
    assert 0 < json.loads(out)["estimate_s"] < LONG_S["cpu"] and "warning" not in err


def test_the_cpu_sized_ep_run_it_names_is_short():
    from swimbench.cli.long_runs import LONG_S
    from swimbench.measure import expert_parallel as epm
    from swimbench.measure.estimate import ep_s
    vs, Es = ("moe_mamba", "rom", "swimba"), (4, 8)
    points = epm.points(vs, Es, (1,), (32,), (1,), ("expert", "replicated"))
    sweep = Sweep(d_model=64, dtype="fp32", variants=vs, experts=Es, top_k=(1,), seq=(32,), batch=(1,),
                  comparator="off")
    assert 0 < ep_s(sweep, points, 3 + 3, "cpu") < LONG_S["cpu"]        # --reps 3 after 3 warm-up calls


def _dry_estimate(capsys, tmp_path, *flags) -> float:
    code, out, err = cli(["generate", "--device", "cpu", "-v", "dense,rom", "-E", "3", "-k", "1", *flags,
                          "--dry-run", "--format", "json", "--out", tmp_path], capsys)
    assert code == 0, err
    return json.loads(out)["estimate_s"]


def test_generate_dry_run_estimate_scales_with_the_size_it_is_given(capsys, tmp_path):
    """The estimate was the same whatever the size (and 30x short at -n 5000): it grows with each."""
    rng = rng_for("hostile-generate-estimate")
    prompt, batch, new = int(rng.integers(20, 90)), int(rng.integers(1, 4)), int(rng.integers(300, 700))
    base = ["--prompt", str(prompt), "--batch", str(batch), "-n", str(new)]
    at = _dry_estimate(capsys, tmp_path, "--preset", "tiny", *base)
    assert _dry_estimate(capsys, tmp_path, "--preset", "130m", *base) > at
    assert _dry_estimate(capsys, tmp_path, "--preset", "tiny", *base[:2], "--batch", str(batch * 7),
                         "-n", str(new)) > at
    assert _dry_estimate(capsys, tmp_path, "--preset", "tiny", "--prompt", str(prompt * 9), *base[2:]) > at
    assert _dry_estimate(capsys, tmp_path, "--preset", "tiny", *base[:4], "-n", str(new * 10)) > 5 * at


@pytest.mark.parametrize("command", ["generate", "ep"])
def test_generate_and_ep_help_show_defaults_and_examples(command, capsys):
    code, out, _ = cli([command, "--help"], capsys)
    text = " ".join(out.replace("│", " ").split())
    assert code == 0 and "Examples:" in text and f"swimbench {command} " in text.split("Examples:")[1]
    if command == "generate":
        from swimbench.sweeps.spec import GENERATE_OPTIONS
        shown = {o for o in GENERATE_OPTIONS if f"--{o.replace('_', '-')}" in text}
        assert shown and text.count("[default:") >= len(GENERATE_OPTIONS)
        assert "1.4b; without a GPU: tiny" in text and "2048; without a GPU: 24" in text
    else:
        assert "[default: 2048]" in text and "[default: 8,64]" in text


# === results, gate and sizes: found by a second audit of hostile input (each was a traceback, work done
# before the error, a wrong flag blamed, or a silently wrong result) =====================================
def _run_of(tmp_path, name, gpu=None, draw=None, sweep=None):
    rng = rng_for(f"hostile-results-{name}")
    return make_run(tmp_path / name, draw or lognormal(rng, n=8), rng=rng, gpu=gpu, sweep=sweep or SMALL_SWEEP,
                    name=name).path


def _set_error_cell(run: Path, text: str):
    """The last row made an error row whose message is `text` (a cell of any length)."""
    df = pd.read_csv(run / "results.csv", dtype=str, keep_default_na=False, engine="python")
    df.loc[df.index[-1], ["status", "error"]] = ["error", text]
    df.to_csv(run / "results.csv", index=False)


def test_a_long_cell_is_read_and_a_cell_past_the_bound_is_refused_by_line(tmp_path, monkeypatch, capsys):
    """A cell over the csv module's 128 KiB default (a long error message) was a traceback in report
    and gate; it is data. Past the reader's bound (which guards memory) it is one line naming the line."""
    import swimbench.results.rundir as rundir
    rng = rng_for("hostile-long-cell")
    run = _run_of(tmp_path, "long")
    _set_error_cell(run, "E" * int(rng.integers(129 << 10, 300 << 10)))
    code, _, err = cli(["report", run, "--out", tmp_path / "report"], capsys)
    assert code == 0, err
    code, _, err = cli(["gate", run, "--baseline", tmp_path / "b.json", "--update"], capsys)
    assert code == 0, err
    monkeypatch.setattr(rundir, "MAX_CELL", 100 << 10)
    before = snapshot(run)
    for args in (["report", run, "--out", tmp_path / "r2"], ["gate", run, "--baseline", tmp_path / "b.json"],
                 ["latency", "--device", "cpu", "--resume", run]):
        code, _, err = cli(args, capsys)
        one_line(code, err, 2, "results.csv", f"line {len(SMALL_SWEEP.points()) + 1}")
    assert unchanged(before, run) and not (tmp_path / "r2").exists()


@pytest.mark.parametrize("command", ["resume", "report", "gate"])
def test_a_key_on_two_rows_is_a_damaged_run(command, cpu_run, tmp_path, capsys):
    """Each configuration has one row (repeats and ranks are merged into it): a second row of a key
    was read as one of them, silently."""
    lines = (cpu_run / "results.csv").read_text().splitlines()
    rng = rng_for(f"hostile-dup-{command}")
    i = int(rng.integers(1, len(lines)))
    (cpu_run / "results.csv").write_text("\n".join(lines + [lines[i]]) + "\n")
    key = lines[i].split(",")[0]
    before = snapshot(cpu_run)
    args = {"resume": ["latency", "--device", "cpu", "--resume", cpu_run],
            "report": ["report", cpu_run, "--out", tmp_path / "report"],
            "gate": ["gate", cpu_run, "--baseline", ROOT / "profiles" / "baselines" / "h200.json"]}[command]
    code, _, err = cli(args, capsys)
    one_line(code, err, 2, "results.csv", key, f"lines {i + 1} and {len(lines) + 1}")
    assert unchanged(before, cpu_run) and not (tmp_path / "report").exists()


@pytest.mark.parametrize("status", ["error", "oom", None])
def test_report_of_a_run_with_nothing_measured_exits_5(status, cpu_run, tmp_path, capsys):
    df = pd.read_csv(cpu_run / "results.csv", dtype=str, keep_default_na=False)
    if status is None:
        df = df.iloc[:0]                      # a header and no row
    else:
        df["status"] = status
    df.to_csv(cpu_run / "results.csv", index=False)
    code, out, err = cli(["report", cpu_run, "--out", tmp_path / "report"], capsys)
    one_line(code, err, 5, str(cpu_run), "no measured row", *([status] if status else []))
    assert out == "" and not (tmp_path / "report").exists()


def test_repeated_list_values_are_kept_once_with_a_note(tmp_path, capsys):
    rng = rng_for("hostile-repeats")
    E = int(rng.integers(2, 7))
    code, out, err = cli(["flops", "--d-model", "64", "--seq", "4", "-k", "1", "-v", "dense,swimba,dense",
                          "-E", f"{E},{E}", "--format", "json"], capsys)
    assert code == 0, err
    assert [(r["variant"], r["experts"]) for r in json.loads(out)["rows"]] == [("dense", 1), ("swimba", E)]
    assert f"--experts {E} given more than once" in err and "--variants dense given more than once" in err
    code, out, err = cli(["latency", *TINY, "-E", f"{E},2", "--seq", "8,8", "--dry-run", "--format", "json"],
                         capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert len(doc["points"]) == len(set(doc["points"])) == 1 + len({2, E})
    assert any("--seq 8 given more than once" in n for n in doc["notes"])
    code, out, err = cli(["generate", "--device", "cpu", "--preset", "tiny", "-v", "dense,swimba", "-E", "2,2",
                          "-k", "1", "--prompt", "8", "--batch", "1,1", "--dry-run", "--format", "json"], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert len(doc["points"]) == len(set(doc["points"])) == 2
    assert any("--batch 1 given more than once" in n for n in doc["notes"])


def test_sizes_flop_matching_cannot_meet_are_refused_before_work_at_the_bound_they_name(tmp_path, capsys,
                                                                                         monkeypatch):
    """--d-model 1 passed validation, then every routed row was an error (latency) or --top-k was
    blamed after counting had started (flops). The bound the line names is the real one: at it the
    sweep resolves, one below it is refused."""
    import re
    monkeypatch.chdir(tmp_path)
    rng = rng_for("hostile-sizes")
    E = int(rng.integers(2, 40))
    sweep = ["--device", "cpu", "-v", "dense,swimba,separated", "-E", str(E), "-k", "1", "--seq", "8",
             "--d-state", "4"]
    code, out, err = cli(["latency", *sweep, "--d-model", "1", "--dry-run"], capsys)
    one_line(code, err, 2, "--d-model", "--no-match")
    bound = int(re.search(r"from (\d+) to", err).group(1))
    assert cli(["latency", *sweep, "--d-model", bound, "--dry-run"], capsys)[0] == 0
    if bound > 1:
        one_line(*cli(["latency", *sweep, "--d-model", bound - 1, "--dry-run"], capsys)[::2], 2, "--d-model")
    assert cli(["latency", *sweep, "--d-model", "1", "--no-match", "--dry-run"], capsys)[0] == 0
    code, out, err = cli(["flops", "--d-model", "1", "-v", "dense,swimba", "-E", str(E), "--seq", "4"], capsys)
    one_line(code, err, 2, "--d-model")
    assert "counted" not in err and out == ""
    code, out, err = cli(["ep", "--device", "cpu", "--d-model", "1", "-v", "swimba", "-E", "2"], capsys)
    one_line(code, err, 2, "--d-model")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content, key, flag", [
    (b"[sweep]\nexperts = [2]\ntop_k = [4]\n", "[sweep] top_k", "--top-k"),
    (b"[model]\nd_model = 2\n", "[model] d_model", "--d-model"),
])
def test_a_profile_value_is_blamed_on_the_profile_not_on_a_flag_never_given(content, key, flag, tmp_path,
                                                                            capsys):
    prof = tmp_path / "mine.toml"
    prof.write_bytes(content)
    code, _, err = cli(["latency", "--device", "cpu", "--profile", prof, "--dry-run"], capsys)
    one_line(code, err, 2, str(prof), key)
    assert f"{flag} " not in err


def test_a_run_name_too_long_for_a_file_name_blames_name(tmp_path, capsys):
    rng = rng_for("hostile-long-name")
    name = "n" * int(rng.integers(236, 400))
    for cmd in (["latency", *TINY], ["generate", "--device", "cpu", "--preset", "tiny"], ["ep", "--device", "cpu"]):
        code, out, err = cli([*cmd, "--name", name, "--out", tmp_path], capsys)
        one_line(code, err, 2, "--name", "235 bytes")
        assert "--out" not in err and list(tmp_path.iterdir()) == []


def test_a_directory_given_as_baseline_is_called_a_directory(cpu_run, tmp_path, capsys):
    code, _, err = cli(["gate", cpu_run, "--baseline", tmp_path], capsys)
    one_line(code, err, 3, str(tmp_path), "directory")
    assert "does not exist" not in err


def test_update_does_not_replace_a_baseline_of_another_device_without_force(tmp_path, capsys):
    gpu_run, cpu = _run_of(tmp_path, "gpu", gpu="NVIDIA H100 80GB HBM3"), _run_of(tmp_path, "cpu")
    base = tmp_path / "b.json"
    assert cli(["gate", gpu_run, "--baseline", base, "--update"], capsys)[0] == 0
    kept = base.read_bytes()
    code, _, err = cli(["gate", cpu, "--baseline", base, "--update"], capsys)
    one_line(code, err, 4, str(base), "NVIDIA H100 80GB HBM3", "cpu", "--force")
    assert base.read_bytes() == kept
    code, _, err = cli(["gate", cpu, "--baseline", base, "--force"], capsys)
    one_line(code, err, 2, "--force", "--update")
    code, _, err = cli(["gate", cpu, "--baseline", base, "--update", "--force"], capsys)
    assert code == 0, err
    assert json.loads(base.read_text())["device"] == "cpu"
    code, _, err = cli(["gate", cpu, "--baseline", ROOT / "profiles" / "baselines" / "flops.json", "--update"],
                       capsys)
    one_line(code, err, 3, "FLOP counts", "--force")


def test_update_names_a_generate_baseline_and_refuses_a_run_with_nothing_measured(tmp_path, capsys):
    code, _, err = cli(["generate", "--device", "cpu", "--preset", "none", "--d-model", "16", "--layers", "1",
                        "--vocab-size", "32", "-v", "dense", "--prompt", "4", "--new-tokens", "4", "--batch", "1",
                        "--budget", "0.01", "--min-reps", "1", "--warmup", "1", "--out", tmp_path], capsys)
    assert code == 0, err
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    code, _, err = cli(["gate", run, "--baseline", tmp_path / "g.json", "--update"], capsys)
    assert code == 0 and "wrote generate baseline" in err and "latency baseline" not in err, err
    cpu = _run_of(tmp_path, "failed")
    df = pd.read_csv(cpu / "results.csv", dtype=str, keep_default_na=False)
    df["status"] = "error"
    df.to_csv(cpu / "results.csv", index=False)
    code, _, err = cli(["gate", cpu, "--baseline", tmp_path / "e.json", "--update"], capsys)
    one_line(code, err, 2, str(cpu), "no measured configuration")
    assert not (tmp_path / "e.json").exists()


def test_two_plain_cpu_runs_of_the_same_code_are_unjudged_not_regressed(tmp_path, capsys):
    """Without --repeats a run's samples pin its own median, not a fresh process's: on a shared CPU every
    time moved 1.7-2.3x between processes (and rows apart from each other), which the rank test on one
    run's samples calls significant. The baseline says so when written; the gate calls such changes
    unjudged, and passes; on a GPU the same shift is still a regression."""
    from ..synthetic import SWEEP
    rng = rng_for("hostile-unjudged")
    load = {v: float(rng.uniform(1.3, 2.3)) for v in SWEEP.variants}      # another process, another load
    base = _run_of(tmp_path, "base", sweep=SWEEP, draw=lognormal(rng, n=20))
    rerun = _run_of(tmp_path, "rerun", sweep=SWEEP, draw=lognormal(rng, n=20, slow=load))
    code, _, err = cli(["gate", base, "--baseline", tmp_path / "b.json", "--update"], capsys)
    assert code == 0 and "no between-run spread" in err and "--repeats" in err, err
    code, out, err = cli(["gate", rerun, "--baseline", tmp_path / "b.json", "--format", "json"], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["verdict"] == "PASS" and doc["counts"].get("unjudged", 0) > 0 and "regressed" not in doc["counts"]
    unjudged = {v["metric"] for v in doc["verdicts"] if v["verdict"] == "unjudged"}
    assert {"prefill_ms", "decode_us"} <= unjudged
    gpu = "NVIDIA H100 80GB HBM3"
    gbase = _run_of(tmp_path, "gbase", gpu=gpu, sweep=SWEEP, draw=lognormal(rng, n=20))
    grerun = _run_of(tmp_path, "grerun", gpu=gpu, sweep=SWEEP, draw=lognormal(rng, n=20, slow=load))
    assert cli(["gate", gbase, "--baseline", tmp_path / "g.json", "--update"], capsys)[0] == 0
    code, out, _ = cli(["gate", grerun, "--baseline", tmp_path / "g.json", "--format", "json"], capsys)
    assert code == 1 and "unjudged" not in json.loads(out)["counts"]


def test_a_disk_that_fills_mid_run_names_the_file_and_closes_the_attempt_as_failed(tmp_path, monkeypatch,
                                                                                    capsys):
    """A full disk raises ENOSPC from write or fsync without a file name: the line named none, and
    metadata.json stayed `running`. The rows written before stay whole."""
    import swimbench.results.atomic as atomic
    real, writes = atomic.os.replace, []

    def fills_up(src, dst):
        if Path(dst).name == "results.csv":
            writes.append(dst)
            if len(writes) > 1:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))      # as the kernel says it: no name
        real(src, dst)
    monkeypatch.setattr(atomic.os, "replace", fills_up)
    code, _, err = cli(["latency", *TINY, "--out", tmp_path], capsys)
    err = "".join(line for line in err.splitlines(keepends=True) if line.startswith("swimbench:"))
    one_line(code, err, 74, "No space left on device", "results.csv")
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["status"] == "failed" and meta["attempts"][-1]["status"] == "failed"
    assert "results.csv" in meta["attempts"][-1]["error"]
    df = pd.read_csv(run / "results.csv")
    assert list(df["status"]) == ["ok"] and df["prefill_ms"].notna().all()
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    monkeypatch.undo()                                      # the disk has room again: --resume finishes it
    code, _, err = cli(["latency", "--device", "cpu", "--resume", run], capsys)
    assert code == 0, err
    assert json.loads((run / "metadata.json").read_text())["status"] == "complete"
    assert list(pd.read_csv(run / "results.csv")["status"]) == ["ok", "ok"]


def _flops_json(tmp_path, capsys) -> Path:
    path = tmp_path / "flops.json"
    code, _, err = cli(["flops", *SMALL_FLOPS, "--format", "json", "--out", path], capsys)
    assert code == 0, err
    return path


def test_a_configuration_twice_in_a_flop_table_or_a_baseline_is_refused(cpu_run, tmp_path, capsys):
    """JSON keeps the last of a repeated name, and the FLOP gate keyed rows by configuration: a row
    twice (files merged by hand) replaced the first unseen, in the results and in the baseline."""
    good = _flops_json(tmp_path, capsys)
    doc = json.loads(good.read_text())
    rng = rng_for("hostile-flop-twice")
    row = dict(doc["rows"][int(rng.integers(len(doc["rows"])))])
    doc["rows"].append({**row, "flops_analytic": row["flops_analytic"] + 1})
    twice = tmp_path / "twice.json"
    twice.write_text(json.dumps(doc))
    key = f"{row['variant']}/E{row['experts']}/k{row['top_k']}"
    code, _, err = cli(["gate", twice, "--baseline", good], capsys)
    one_line(code, err, 2, str(twice), key, "two rows")
    code, _, err = cli(["gate", good, "--baseline", twice], capsys)
    one_line(code, err, 3, str(twice), key, "two rows")
    base = tmp_path / "b.json"
    assert cli(["gate", cpu_run, "--baseline", base, "--update"], capsys)[0] == 0
    lines = base.read_text().splitlines()
    i = next(n for n, line in enumerate(lines) if line.startswith('  "'))
    lines.insert(i + 1, lines[i] if lines[i].endswith(",") else lines[i] + ",")
    base.write_text("\n".join(lines) + "\n")
    code, _, err = cli(["gate", cpu_run, "--baseline", base], capsys)
    one_line(code, err, 3, str(base), lines[i].split('"')[1], "twice")


def test_two_limits_for_one_metric_are_refused(cpu_run, capsys):
    code, _, err = cli(["gate", cpu_run, "--baseline", ROOT / "profiles" / "baselines" / "h200.json",
                        "-t", "prefill_ms=1.2", "-t", "decode_us=1.3", "-t", "prefill_ms=1.5"], capsys)
    one_line(code, err, 2, "--threshold", "prefill_ms=1.5", "prefill_ms=1.2")


def test_results_and_baselines_that_are_no_regular_file(cpu_run, tmp_path, capsys):
    """A device or a pipe was "does not exist"."""
    code, _, err = cli(["gate", "/dev/null", "--baseline", tmp_path / "b.json"], capsys)
    one_line(code, err, 2, "/dev/null", "neither a run directory nor a regular file")
    code, _, err = cli(["gate", cpu_run, "--baseline", "/dev/null"], capsys)
    one_line(code, err, 3, "/dev/null", "not a regular file")


def test_an_expert_parallel_row_twice_is_a_damaged_run(tmp_path, capsys):
    """`ep` (and --append) keep one row per configuration and world size: a second was drawn twice."""
    from swimbench.results import ep as ep_table
    rng = rng_for("hostile-ep-twice")
    run = _ep_run(tmp_path)
    rows = [{"variant": "swimba", "experts": 2, "top_k": 1, "seq": 8, "batch": 1, "mode": "expert", "phase": ph,
             "world_size": w, "step_ms": float(rng.uniform(0.1, 1)), "us_per_token": float(rng.uniform(1, 9))}
            for w in (1, 2) for ph in ("prefill", "decode")]
    ep_table.add(run, rows)
    lines = (run / "ep.csv").read_text().splitlines()
    i = int(rng.integers(1, len(lines)))
    (run / "ep.csv").write_text("\n".join(lines + [lines[i]]) + "\n")
    before = snapshot(tmp_path)
    code, _, err = cli(["report", run], capsys)
    one_line(code, err, 2, "ep.csv", f"lines {i + 1} and {len(lines) + 1}")
    assert unchanged(before, tmp_path)


def test_a_time_skipped_at_update_still_gives_its_ratio_and_skipping_everything_is_refused(tmp_path, capsys):
    """`--update --skip prefill_ms` (absolute times not comparable between machines) silently dropped
    prefill_ms/dense too, which is derived from it on loading; skipping every metric wrote a baseline
    that later "shared no comparable configuration" (exit 3)."""
    from swimbench.gate.metrics import FLOPS, GATED
    rng = rng_for("hostile-skip")
    gpu = "NVIDIA H100 80GB HBM3"
    base, slow = (_run_of(tmp_path, n, gpu=gpu, draw=lognormal(rng, n=20, slow=s))
                  for n, s in (("base", None), ("slow", {"swimba": 1.3})))
    path = tmp_path / "b.json"
    assert cli(["gate", base, "--baseline", path, "--update", "--skip", "prefill_ms"], capsys)[0] == 0
    code, out, err = cli(["gate", slow, "--baseline", path, "--format", "json"], capsys)
    assert code == 1, err
    failed = {v["metric"] for v in json.loads(out)["verdicts"] if v["verdict"] == "regressed"}
    assert "prefill_ms/dense" in failed and "prefill_ms" not in failed
    everything = [a for m in (*GATED, *FLOPS) for a in ("--skip", m.name)]
    code, _, err = cli(["gate", base, "--baseline", tmp_path / "none.json", "--update", *everything], capsys)
    one_line(code, err, 2, "--skip", "gate nothing")
    assert not (tmp_path / "none.json").exists()
    code, _, err = cli(["gate", slow, "--baseline", path, *everything], capsys)
    one_line(code, err, 2, "--skip", str(path))


def test_update_does_not_write_a_baseline_into_a_run_directory(cpu_run, capsys):
    """`--baseline RUN/results.csv --update` replaced the run's own results with a baseline."""
    before = snapshot(cpu_run)
    for name in ("results.csv", "b.json"):
        code, _, err = cli(["gate", cpu_run, "--baseline", cpu_run / name, "--update"], capsys)
        one_line(code, err, 2, "--baseline", "run director")
    assert unchanged(before, cpu_run)


def test_flops_out_into_a_run_directory_is_refused(cpu_run, capsys):
    before = snapshot(cpu_run)
    code, out, err = cli(["flops", *SMALL_FLOPS, "--format", "csv", "--out", cpu_run / "results.csv"], capsys)
    one_line(code, err, 2, "--out", "run director")
    assert out == "" and unchanged(before, cpu_run)
