"""`swimbench doctor` on a CPU: it runs as a user runs it (its kernel checks through Triton's interpreter in
a process of their own, every command in a scratch directory), its lines parse, its JSON is valid and
agrees with them, it exits 1 when a kernel is wrong, every op of the namespace has a check, and bad flags
are one line."""
import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from swimbench.cli import main
from swimbench.doctor import commands, engine, environment, ops
from swimbench.doctor.result import FAIL, NEEDS_GPU, PASS, SKIP, Result
from swimbench.kernels import _dispatch
from swimbench.kernels.combine import fused as combine_fused

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^(PASS|FAIL|SKIP)  (\S.*?)  +(.*)$")
CLOSING = re.compile(r"^(\d+) passed, (\d+) failed, (\d+) skipped$")
GPU_ONLY = ("gpu", "nvml (clocks, energy)", "gpu timing (graphs, energy)", "swimbench kernels")


def parse(text: str) -> tuple[list[tuple[str, str, str]], tuple[int, int, int]]:
    """The check lines (status, name, detail) and the closing counts; every other line is the header,
    which comes first and never starts with a status."""
    lines = text.strip().splitlines()
    closing = CLOSING.match(lines[-1])
    assert closing, lines[-1]
    checks = [LINE.match(ln) for ln in lines[:-1] if ln[:4] in ("PASS", "FAIL", "SKIP")]
    assert all(checks), [ln for ln in lines if ln[:4] in ("PASS", "FAIL", "SKIP")]
    first = next(i for i, ln in enumerate(lines) if ln[:4] in ("PASS", "FAIL", "SKIP"))
    assert len(checks) == len(lines) - 1 - first            # no header line among the checks
    return [m.groups() for m in checks], tuple(int(g) for g in closing.groups())


def user_env() -> dict:
    """A user's shell: neither the interpreter nor the references forced (tests/conftest.py sets both)."""
    env = dict(os.environ)
    env.pop("TRITON_INTERPRET", None)
    env.pop("SWIMBENCH_KERNELS", None)
    return env


@pytest.fixture(scope="module")
def full_json(tmp_path_factory):
    """The whole doctor, --format json, from a user's shell in an empty directory."""
    cwd = tmp_path_factory.mktemp("doctor")
    r = subprocess.run([sys.executable, "-m", "swimbench", "doctor", "--format", "json"], cwd=cwd,
                       capture_output=True, text=True, timeout=900, env=user_env())
    assert "Traceback" not in r.stderr, r.stderr
    return r, json.loads(r.stdout), cwd


def test_the_whole_doctor_passes_on_a_cpu_and_says_what_needs_a_gpu(full_json):
    r, doc, cwd = full_json
    by_name = {c["name"]: c for c in doc["checks"]}
    assert r.returncode == 0 == doc["exit"], [c for c in doc["checks"] if c["status"] == FAIL]
    assert doc["environment"]["device"] == "cpu" and doc["environment"]["versions"]["torch"] == torch.__version__
    for name in GPU_ONLY:
        assert by_name[name]["status"] == SKIP and NEEDS_GPU in by_name[name]["detail"]
    for name in ("swimbench flops", "swimbench latency", "swimbench report", "swimbench gate", "swimbench generate"):
        assert by_name[name]["status"] == PASS and by_name[name]["seconds"] > 0
        assert by_name[name]["data"]["argv"][0] == "swimbench"
    usable = environment.interpreter_problem() is None
    for op in ops.registered_ops():
        c = by_name[f"kernel {op}"]
        assert c["status"] == (PASS if usable else SKIP), c
        if usable:          # checked through the interpreter, in every dtype it runs, within the bounds
            rows = c["data"]["comparisons"]
            assert {x["dtype"] for x in rows} == set(ops.INTERPRETED.dtypes)
            assert all(x["ok"] and x["err"] <= x["tol"] for x in rows)
    assert doc["counts"] == {"passed": sum(c["status"] == PASS for c in doc["checks"]),
                             "failed": 0, "skipped": sum(c["status"] == SKIP for c in doc["checks"])}
    assert list(cwd.iterdir()) == []            # the scratch directory was not the user's


@pytest.fixture
def wrong_combine(monkeypatch):
    """combine's Triton kernel replaced by one that drops the last expert's share: a real wrong answer
    that the op dispatches to, as a broken kernel would be."""
    real = combine_fused.combine_fused

    def dropping(gates, values, out=None):
        return real(gates[:, :-1].contiguous(), values[:, :-1], out)
    monkeypatch.setattr(combine_fused, "combine_fused", dropping)
    _dispatch.load_fused.cache_clear()
    # one dtype keeps the in-process run short; the sizes stay the interpreter's
    monkeypatch.setattr(ops, "INTERPRETED", replace(ops.INTERPRETED, dtypes=("fp32",)))
    yield
    _dispatch.load_fused.cache_clear()


def run(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_a_wrong_kernel_fails_its_check_and_the_doctor_exits_1(wrong_combine, capsys, full_json):
    code, out, _ = run(["doctor", "--skip-commands"], capsys)
    checks, (passed, failed, skipped) = parse(out)
    assert code == 1
    status = {name: s for s, name, _ in checks}
    assert status["kernel combine"] == FAIL and failed == 1
    detail = next(d for s, name, d in checks if name == "kernel combine")
    assert "outputs off their bound" in detail and "fp32 out" in detail
    assert (passed, skipped) == (sum(s == PASS for s in status.values()), sum(s == SKIP for s in status.values()))
    assert all(status[f"kernel {op}"] == PASS for op in ops.registered_ops() if op != "combine")
    assert all(status[name] == SKIP for name in commands.COMMANDS)
    # the text names the same checks, in the same order, as the JSON of the whole run
    _, doc, _ = full_json
    assert [name for _, name, _ in checks] == [c["name"] for c in doc["checks"]]
    assert all(status[c["name"]] == c["status"] for c in doc["checks"]
               if not c["name"].startswith("swimbench ") and c["name"] not in ("kernel combine",
                                                                               "gpu timing (graphs, energy)"))


def test_json_holds_what_the_text_says(wrong_combine, capsys):
    code, out, _ = run(["doctor", "--skip-commands", "--format", "json"], capsys)
    doc = json.loads(out)
    assert code == 1 == doc["exit"]
    lines = [Result.from_dict(c).line() for c in doc["checks"]]
    checks, counts = parse("\n".join(lines) + f"\n{doc['counts']['passed']} passed, {doc['counts']['failed']} "
                                              f"failed, {doc['counts']['skipped']} skipped")
    assert counts == (doc["counts"]["passed"], doc["counts"]["failed"], doc["counts"]["skipped"])
    bad = [c for c in doc["checks"] if c["status"] == FAIL]
    assert [c["name"] for c in bad] == ["kernel combine"]
    assert any(not x["ok"] and x["err"] > x["tol"] for x in bad[0]["data"]["comparisons"])


def test_every_op_in_kernels_has_a_doctor_check():
    """The ops the namespace holds, and those the sources of kernels/ declare, are the ops checked."""
    declared = set()
    for f in (ROOT / "kernels").rglob("*.py"):
        declared |= set(re.findall(r'custom_op\(\s*"swimbench::(\w+)"', f.read_text()))
    assert declared and set(ops.registered_ops()) == declared
    assert set(ops.CHECKS) == declared, (f"no doctor check for {sorted(declared - set(ops.CHECKS))}; "
                                         f"a check for no op: {sorted(set(ops.CHECKS) - declared)}")


def test_an_op_without_a_check_is_a_failed_check(monkeypatch):
    monkeypatch.delitem(ops.CHECKS, "combine")
    for result in ops.run("cpu", engine.new_seed()):
        if result.name == "kernel combine":
            break
    assert result.status == FAIL and "no doctor check" in result.detail


@pytest.mark.parametrize("triton,numpy,broken", [("3.6.0", "2.5.2", True), ("3.6.0", "2.4.0", True),
                                                 ("3.6.0", "2.3.5", False), ("3.7.0", "2.5.2", False),
                                                 ("3.10.1", "2.5.2", False)])
def test_the_interpreter_rule(monkeypatch, triton, numpy, broken):
    versions = {"triton": triton, "numpy": numpy}
    monkeypatch.setattr(environment, "package_version", versions.get)
    why = environment.interpreter_problem()
    assert (why is not None) == broken
    if broken:
        assert triton in why and numpy in why


def test_a_cpu_without_a_usable_interpreter_skips_every_kernel_saying_why(monkeypatch):
    """Even a process that runs the interpreter already (this one) does not try it where it fails."""
    monkeypatch.setattr(engine, "interpreter_problem", lambda: "triton 3.6.0's interpreter fails with numpy 2.5.2")
    results = list(engine.kernel_checks(torch.device("cpu"), 1))
    assert [r.name for r in results] == [f"kernel {op}" for op in ops.registered_ops()]
    assert all(r.status == SKIP and "numpy 2.5.2" in r.detail for r in results)


@pytest.mark.parametrize("args,flag", [(["--format", "xml"], "--format"), (["--device", "tpu"], "--device"),
                                       (["--device", "cuda:0"], "--device"), (["--bogus"], "--bogus")])
def test_bad_flags_are_one_line(args, flag, capsys):
    code, out, err = run(["doctor", *args], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("swimbench: error:") and flag in err
