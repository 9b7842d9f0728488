"""The doctor's run: the environment, then its checks (the machine's, every op's kernel, every command),
as results in a fixed order. The commands run in a scratch directory on a thread of their own while the
kernels are checked, so that the slowest half sets the time, not the sum."""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Iterator, Optional

import torch

from . import commands, ops
from .environment import checks as environment_checks, collect, interpreter_problem
from .result import FAIL, SKIP, Result, counts

KERNEL_TIMEOUT_S = 600
FORMAT_VERSION = 1


def environment(device: torch.device) -> dict:
    return collect(device)


def new_seed() -> int:
    return int.from_bytes(os.urandom(3), "little")


def checks(device: torch.device, env: dict, skip_commands: bool = False,
           seed: Optional[int] = None) -> Iterator[Result]:
    """Every check's result, in order: the machine, the kernels, the commands."""
    seed = new_seed() if seed is None else seed
    yield from environment_checks(env)
    if skip_commands:
        yield from kernel_checks(device, seed)
        yield from commands.skipped("--skip-commands")
        return
    done: queue.Queue = queue.Queue()
    with tempfile.TemporaryDirectory(prefix="swimbench-doctor-") as root:
        # the commands get the environment as it is now: the kernel checks below change SWIMBENCH_KERNELS
        # of this process while they run
        scratch = commands.Scratch(Path(root), device, env=dict(os.environ),
                                   energy=bool((env.get("gpu") or {}).get("energy_counter")))

        def work():
            try:
                for result in commands.run(scratch):
                    done.put(result)
            finally:
                done.put(None)
        worker = threading.Thread(target=work, name="swimbench-doctor-commands", daemon=True)
        worker.start()
        try:
            yield from kernel_checks(device, seed)
            while (result := done.get()) is not None:
                yield result
        finally:
            worker.join()


def kernel_checks(device: torch.device, seed: int) -> Iterator[Result]:
    """The ops' checks here when this process runs Triton as the device needs (compiled on a GPU,
    interpreted on a CPU), else in a process started for it."""
    from ..kernels._dispatch import interpreting
    on_cpu = device.type == "cpu"
    why = interpreter_problem() if on_cpu else None
    if why is not None:
        for op in ops.registered_ops():
            yield Result(SKIP, f"kernel {op}", f"Triton's interpreter cannot run here: {why}; on a GPU this "
                                               f"checks the compiled kernel")
        return
    if interpreting() == on_cpu:
        yield from ops.run(device, seed)
        return
    env = dict(os.environ)
    if on_cpu:
        env["TRITON_INTERPRET"] = "1"
    else:
        env.pop("TRITON_INTERPRET", None)
    yield from _kernel_process(device, seed, env)


def _kernel_process(device: torch.device, seed: int, env: dict) -> Iterator[Result]:
    """`python -m swimbench.doctor.ops` with `env`: its JSON lines as results, a failure for each op it
    did not report (it crashed or ran out of time)."""
    with tempfile.TemporaryFile(mode="w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", "swimbench.doctor.ops", "--device", str(device), "--seed",
                                 str(seed)], stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        timer = threading.Timer(KERNEL_TIMEOUT_S, proc.kill)
        timer.start()
        seen = set()
        try:
            for line in proc.stdout:
                try:
                    result = Result.from_dict(json.loads(line))
                except (ValueError, KeyError, TypeError):
                    continue                        # a library's own print: not one of ours
                seen.add(result.name)
                yield result
            rc = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        err.seek(0)
        tail = [ln.strip() for ln in err.read().splitlines() if ln.strip()]
    missing = [op for op in ops.registered_ops() if f"kernel {op}" not in seen]
    if missing:
        why = (f"killed after {KERNEL_TIMEOUT_S} s" if rc in (-9, 137) else
               f"the kernel-check process ended with exit {rc}" + (f": {tail[-1]}" if tail else ""))
        for op in missing:
            yield Result(FAIL, f"kernel {op}", f"not checked: {why}", None, {"op": op, "stderr_tail": tail[-20:]})


def as_json(env: dict, results: list[Result]) -> str:
    c = counts(results)
    return json.dumps({"swimbench_doctor": FORMAT_VERSION, "environment": env,
                       "checks": [r.as_dict() for r in results], "counts": c, "exit": exit_code(results)},
                      indent=2, default=str)


def exit_code(results: list[Result]) -> int:
    return 1 if counts(results)["failed"] else 0
