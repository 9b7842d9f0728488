"""The doctor's command checks: each command run once as a user runs it, at tiny sizes, in a scratch
directory, through the real CLI in a process of its own (`python -m swimbench ...` with this
interpreter), so that a crash at import or at exit shows, with a time limit each.

`report` and `gate` read the run `latency` wrote; on a GPU, `gpu timing` reads that run's rows (CUDA-graph
replays, energy) and `kernels` times the kernels; on a CPU those two need a GPU and say so."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional

import torch

from .result import FAIL, NEEDS_GPU, PASS, SKIP, Result

TIMEOUT_S = 300
GPU_TIMEOUT_S = {"kernels": 600}
RUN_NAME = "doctor"


@dataclass
class Scratch:
    """Where the commands run and what they left for the next ones."""
    root: Path
    device: torch.device
    env: dict                                # the environment the commands run in
    energy: bool = True                      # NVML's energy counter is there (a GPU's runs measure energy)
    latency: Optional[dict] = None           # latency's JSON summary, once it passed
    notes: dict = field(default_factory=dict)

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def device_flag(self) -> str:
        return str(self.device)


def _latency_args(s: Scratch) -> list[str]:
    if s.cuda:        # bf16, CUDA-graph replays, energy and the mamba-ssm comparator: a GPU run's defaults
        sizes = ["--d-model", "64", "--seq", "40", "-v", "dense,swimba", "-E", "3", "-k", "1", "--budget", "0.05",
                 "--min-reps", "3"]
    else:             # the sizes of tests/test_readme.py's CPU runs
        sizes = ["--d-model", "16", "--d-state", "4", "--seq", "8", "-v", "dense,swimba", "-E", "2", "-k", "1",
                 "--budget", "0.01", "--min-reps", "3", "--dtype", "fp32"]
    return ["latency", "--device", s.device_flag, *sizes, "--out", "reports", "--name", RUN_NAME, "--format", "json"]


def swimbench(args: list[str], cwd: Path, timeout: float, env: Optional[dict] = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "swimbench", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _call(name: str, args: list[str], s: Scratch, verify: Optional[Callable] = None, timeout: float = TIMEOUT_S,
          env: Optional[dict] = None) -> Result:
    """Run `swimbench ARGS` in the scratch directory: PASS when it exits 0 without a traceback and
    `verify(stdout)` (if given) returns a note instead of raising."""
    t0 = time.perf_counter()
    data = {"argv": ["swimbench", *args], "cwd": str(s.root)}
    try:
        r = swimbench(args, s.root, timeout, {**s.env, **(env or {})})
    except subprocess.TimeoutExpired:
        return Result(FAIL, name, f"no answer within {timeout:.0f} s", time.perf_counter() - t0, data)
    took = time.perf_counter() - t0
    data.update(exit=r.returncode, stderr_tail=r.stderr[-2000:])
    if "Traceback (most recent call last)" in r.stderr:
        return Result(FAIL, name, f"crashed (exit {r.returncode}): {_last_line(r.stderr)}", took, data)
    if r.returncode != 0:
        return Result(FAIL, name, f"exit {r.returncode}: {_last_line(r.stderr) or '(nothing on stderr)'}", took, data)
    note = "exit 0"
    if verify is not None:
        try:
            note = verify(r.stdout)
        except Exception as e:  # noqa: BLE001  (output not as documented: the check fails, saying how)
            return Result(FAIL, name, f"exit 0 but {type(e).__name__}: {e}", took, data)
    return Result(PASS, name, note, took, data)


def _summary(stdout: str) -> dict:
    """A run's JSON summary (`--format json` of latency and generate), its rows all ok."""
    doc = json.loads(stdout)
    bad = [r["key"] for r in doc["rows"] if r.get("status") != "ok"]
    if doc["status"] != "complete" or bad or not doc["rows"]:
        raise ValueError(f"run {doc['run']} is {doc['status']}, rows not ok: {', '.join(bad) or 'none written'}")
    return doc


COMMANDS: dict[str, Callable[[Scratch, str], Result]] = {}      # name -> the check, in the order they run


def command(name: str):
    def register(fn):
        COMMANDS[name] = fn
        return fn
    return register


@command("swimbench flops")
def flops(s: Scratch, name: str) -> Result:
    def verify(_):
        rows = json.loads((s.root / "flops.json").read_text())["rows"]
        if not rows:
            raise ValueError("flops.json has no rows")
        return f"{len(rows)} rows in flops.json"
    return _call(name, ["flops", "-E", "3", "-k", "1", "--d-model", "48", "--seq", "9", "--format", "json",
                        "--out", "flops.json"], s, verify)


@command("swimbench latency")
def latency(s: Scratch, name: str) -> Result:
    def verify(stdout):
        s.latency = _summary(stdout)
        return f"{len(s.latency['rows'])} rows in {s.latency['run']}"
    return _call(name, _latency_args(s), s, verify)


@command("gpu timing (graphs, energy)")
def gpu_timing(s: Scratch, name: str) -> Result:
    """What only a GPU run has: prefill and decode replayed from CUDA graphs, energy per token."""
    if not s.cuda:
        return Result(SKIP, name, f"{NEEDS_GPU} (the CPU times eager calls and has no energy counter)")
    if s.latency is None:
        return Result(SKIP, name, "swimbench latency did not pass")
    rows = s.latency["rows"]
    eager = [r["key"] for r in rows if r.get("prefill_mode") != "graph" or r.get("decode_mode") != "graph"]
    no_energy = [r["key"] for r in rows if r.get("prefill_j_per_token") is None]
    if eager:
        return Result(FAIL, name, f"rows not replayed from CUDA graphs: {', '.join(eager)}")
    if no_energy and s.energy:
        return Result(FAIL, name, f"rows without energy although NVML has the counter: {', '.join(no_energy)}")
    return Result(PASS, name, f"{len(rows)} rows replayed from CUDA graphs"
                              + ("" if no_energy else ", energy per token measured"))


@command("swimbench report")
def report(s: Scratch, name: str) -> Result:
    if s.latency is None:
        return Result(SKIP, name, "swimbench latency did not pass")

    def verify(_):
        pngs = list((s.root / "rendered").rglob("*.png"))
        if not pngs:
            raise ValueError("no figure in rendered/")
        if not any((s.root / "rendered").rglob("summary.md")):
            raise ValueError("no summary.md in rendered/")
        return f"{len(pngs)} figures and summary.md"
    return _call(name, ["report", s.latency["run"], "--out", "rendered"], s, verify)


@command("swimbench gate")
def gate(s: Scratch, name: str) -> Result:
    """A baseline written from the run, then the run gated against it: nothing may regress."""
    if s.latency is None:
        return Result(SKIP, name, "swimbench latency did not pass")
    made = _call(name, ["gate", s.latency["run"], "--baseline", "baseline.json", "--update"], s)
    if made.status != PASS:
        return made

    def verify(stdout):
        doc = json.loads(stdout)
        if doc["verdict"] != "PASS":
            raise ValueError(f"the run against its own baseline: {doc['verdict']} {doc['counts']}")
        return f"baseline written, the run against it: PASS ({sum(doc['counts'].values())} verdicts)"
    out = _call(name, ["gate", s.latency["run"], "--baseline", "baseline.json", "--format", "json"], s, verify)
    out.seconds = (out.seconds or 0) + (made.seconds or 0)
    return out


@command("swimbench generate")
def generate(s: Scratch, name: str) -> Result:
    def verify(stdout):
        doc = _summary(stdout)
        return f"{len(doc['rows'])} rows in {doc['run']}"
    # energy is latency's to check: one second a row would double this command's time
    extra = ["--no-energy"] if s.cuda else []
    return _call(name, ["generate", "--preset", "tiny", "--device", s.device_flag, "--batch", "1",
                        "--budget", "0.1", *extra, "--out", "reports", "--format", "json"], s, verify)


@command("swimbench kernels")
def kernels(s: Scratch, name: str) -> Result:
    if not s.cuda:
        return Result(SKIP, name, NEEDS_GPU)

    def verify(_):
        rows = json.loads((s.root / "kernels.json").read_text())["rows"]
        if not rows:
            raise ValueError("kernels.json has no rows")
        return f"{len(rows)} rows in kernels.json"
    env = {}
    if s.device.index is not None:            # `kernels` times the current device: make it this one
        visible = [v for v in s.env.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
        env["CUDA_VISIBLE_DEVICES"] = visible[s.device.index] if visible else str(s.device.index)
    return _call(name, ["kernels", "--batch", "1", "--length", "301", "--step-batch", "3", "--d-inner", "200",
                        "-E", "3", "-k", "2", "--rep", "5", "--out", "kernels.json"], s, verify,
                 GPU_TIMEOUT_S["kernels"], env)


def run(scratch: Scratch) -> Iterator[Result]:
    for name, check in COMMANDS.items():
        yield check(scratch, name)


def skipped(why: str) -> list[Result]:
    return [Result(SKIP, name, why) for name in COMMANDS]
