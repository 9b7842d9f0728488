"""What the doctor reports of this machine: the environment a run records (swimbench/measure/env.py),
mamba-ssm's state, and the checks that read them (the GPU, NVML, mamba-ssm, Triton's interpreter)."""
from __future__ import annotations

import sys
from typing import Optional

import torch

from ..measure.env import capture, package_version
from .result import FAIL, NEEDS_GPU, PASS, SKIP, Result

# triton's interpreter before 3.7 converts arrays to Python scalars implicitly, which numpy 2.4 refuses
# (pyproject.toml pins the tests' triton for the same reason)
INTERPRETER_BROKEN = {"triton_below": (3, 7), "numpy_from": (2, 4)}


def collect(device: torch.device) -> dict:
    """The run environment of `device`, with NVML's readings on a GPU, mamba-ssm's state and the
    interpreter the CPU would need; never raises for a missing part, it says what is missing."""
    nvml, nvml_error = None, None
    if device.type == "cuda":
        from ..measure.energy import Nvml, NvmlUnavailable
        try:
            nvml = Nvml.open(device)
        except NvmlUnavailable as e:
            nvml_error = str(e)
    try:
        env = capture(device, nvml, argv=sys.argv)
    finally:
        if nvml is not None:
            nvml.close()
    env["executable"] = sys.executable
    env["cuda_available"] = torch.cuda.is_available()
    env["nvml_error"] = nvml_error
    env["mamba_ssm"] = mamba_ssm_state()
    env["triton_interpreter"] = {"usable": interpreter_problem() is None, "why_not": interpreter_problem()}
    return env


def mamba_ssm_state() -> dict:
    """mamba-ssm's version and whether its CUDA extension (selective_scan_cuda) loaded."""
    from .. import mamba_ref
    try:
        mod = mamba_ref.mamba_ssm()
        if mod is None:
            return {"version": None, "cuda_extension": False, "error": "mamba-ssm is not installed"}
        return {"version": mamba_ref.version(), "cuda_extension": mamba_ref.has_cuda_scan(), "error": None}
    except Exception as e:  # noqa: BLE001  (a broken install is something to report, not a crash)
        return {"version": package_version("mamba_ssm"), "cuda_extension": False,
                "error": " ".join(f"{type(e).__name__}: {e}".split())[:300]}


def _version(text: Optional[str]) -> tuple[int, ...]:
    out = []
    for part in (text or "").split(".")[:2]:
        digits = "".join(c for c in part if c.isdigit())
        out.append(int(digits) if digits else 0)
    return tuple(out)


def interpreter_problem() -> Optional[str]:
    """Why Triton's interpreter cannot run our kernels on this machine's CPU, or None."""
    triton, numpy = package_version("triton"), package_version("numpy")
    if triton is None:
        return "triton is not installed"
    if _version(triton) < INTERPRETER_BROKEN["triton_below"] and _version(numpy) >= INTERPRETER_BROKEN["numpy_from"]:
        return (f"triton {triton}'s interpreter fails with numpy {numpy} (triton >= 3.7 or numpy < 2.4 runs "
                f"it)")
    return None


def checks(env: dict) -> list[Result]:
    """The GPU, its NVML readings and mamba-ssm, as checks."""
    out = []
    gpu = env.get("gpu")
    if gpu is None:
        built = f"torch {env['versions'].get('torch')} built for CUDA {env.get('torch_cuda') or 'none'}"
        why = "a GPU is visible, --device cpu was asked" if env.get("cuda_available") else f"none visible; {built}"
        out.append(Result(SKIP, "gpu", f"{NEEDS_GPU} ({why})"))
        out.append(Result(SKIP, "nvml (clocks, energy)", NEEDS_GPU))
    else:
        out.append(Result(PASS, "gpu", f"{gpu['name']}, capability {gpu['capability']}, {gpu['memory_gib']} GiB, "
                                       f"CUDA {env.get('torch_cuda')}"))
        if env.get("nvml_error"):
            out.append(Result(FAIL, "nvml (clocks, energy)", f"{env['nvml_error']}: runs record no energy, "
                                                              f"clocks or driver"))
        else:
            energy = "energy counter" if gpu.get("energy_counter") else "no energy counter (energy columns empty)"
            out.append(Result(PASS, "nvml (clocks, energy)",
                              f"driver {gpu.get('driver')}, SM {_mhz(gpu.get('sm_clock_mhz'))} now "
                              f"(max {_mhz(gpu.get('sm_clock_max_mhz'))}), memory {_mhz(gpu.get('mem_clock_mhz'))}, "
                              f"{energy}"))
    m = env["mamba_ssm"]
    if m["error"] is not None:
        out.append(Result(FAIL, "mamba-ssm", f"{m['error']} (the comparator rows of latency and generate need it)"))
    elif gpu is None:
        out.append(Result(PASS, "mamba-ssm", f"{m['version']}, its pure-PyTorch references (selective_scan_cuda "
                                             f"{'loaded' if m['cuda_extension'] else 'not built: it needs a GPU'})"))
    elif m["cuda_extension"]:
        out.append(Result(PASS, "mamba-ssm", f"{m['version']}, selective_scan_cuda loaded"))
    else:
        out.append(Result(FAIL, "mamba-ssm", f"{m['version']} without selective_scan_cuda: the comparator rows "
                                             f"are skipped (install the CUDA wheel: scripts/device_env.sh)"))
    return out


def _mhz(v) -> str:
    return f"{v:.0f} MHz" if v is not None else "? MHz"


def lines(env: dict) -> list[str]:
    """The environment as the text output's header."""
    v = env["versions"]
    gpu = env.get("gpu")
    out = [f"swimbench {v.get('swimbench')} doctor on {env['host']} ({env['platform']})",
           f"  python     {env['python']} ({env['executable']})",
           f"  torch      {v.get('torch')}, CUDA {env.get('torch_cuda') or 'none'}; triton {v.get('triton')}"]
    if gpu is not None:
        out.append(f"  gpu        {gpu['name']}, capability {gpu['capability']}, {gpu['memory_gib']} GiB, "
                   f"{gpu['multiprocessors']} SMs, driver {gpu.get('driver') or '?'}")
        out.append(f"  clocks     SM {_mhz(gpu.get('sm_clock_mhz'))} (max {_mhz(gpu.get('sm_clock_max_mhz'))}), "
                   f"memory {_mhz(gpu.get('mem_clock_mhz'))}, power limit {gpu.get('power_limit_w') or '?'} W")
    else:
        out.append(f"  device     {env['device']}: {env['cpu']}, {env['cpu_count']} cores, torch on "
                   f"{env['torch_threads']} threads")
    others = ", ".join(f"{k} {val or 'missing'}" for k, val in v.items()
                       if k not in ("swimbench", "torch", "triton", "mamba_ssm"))
    out.append(f"  packages   {others}")
    m = env["mamba_ssm"]
    ext = "selective_scan_cuda loaded" if m["cuda_extension"] else "selective_scan_cuda not loaded"
    out.append(f"  mamba-ssm  {m['version'] or 'missing'}, {ext}" + (f" ({m['error']})" if m["error"] else ""))
    git = env.get("git") or {}
    if git.get("commit"):
        out.append(f"  git        {git['commit'][:12]}{' (dirty)' if git.get('dirty') else ''}")
    if env.get("env_vars"):
        out.append("  env        " + " ".join(f"{k}={val}" for k, val in env["env_vars"].items()))
    return out
