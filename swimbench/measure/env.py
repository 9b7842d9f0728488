"""The environment of a run: what someone needs to trust or reproduce its numbers."""
from __future__ import annotations

import os
import platform
import shlex
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Optional

import torch

from ..distributed import SAFE_ENV

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("torch", "triton", "mamba_ssm", "swimbench", "numpy", "pandas", "nvidia-ml-py", "matplotlib", "typer",
            "rich", "transformers", "fvcore")


def package_version(name: str) -> Optional[str]:
    """Installed version from the package metadata; importing mamba-ssm just to ask is slow and fragile."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def git_state(repo: Path = REPO) -> dict:
    def git(*args) -> Optional[str]:
        try:
            out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None
    # A copy of the tree (a device machine) may come without its .git, or with a stale one: the
    # commit it was copied from can be handed over, and then wins.
    given = os.environ.get("SWIMBENCH_GIT_COMMIT")
    if given:
        return {"commit": given, "dirty": None, "source": "SWIMBENCH_GIT_COMMIT"}
    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None, "source": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None, "source": "git"}


def capture(device, nvml=None, argv: Optional[list[str]] = None, profile: Optional[dict] = None) -> dict:
    """GPU name, driver, SM clock now and max, power limit, CUDA, the versions of our stack, the git
    commit, the exact command and the profile."""
    device = torch.device(device)
    env: dict = {
        "device": device.type,
        "command": shlex.join(argv if argv is not None else sys.argv),
        "cwd": os.getcwd(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "versions": {name: package_version(name) for name in PACKAGES},
        "torch_cuda": torch.version.cuda,
        "git": git_state(),
        "env_vars": {k: os.environ[k] for k in ("CUDA_VISIBLE_DEVICES", "TRITON_INTERPRET",
                                                 "PYTORCH_CUDA_ALLOC_CONF", "SWIMBENCH_KERNELS",
                                                 "SWIMBENCH_INJECT_SLOWDOWN", *SAFE_ENV) if k in os.environ},
        "profile": profile,
    }
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        env["gpu"] = {
            "name": props.name,
            "capability": f"{props.major}.{props.minor}",
            "memory_gib": round(props.total_memory / 2**30, 2),
            "multiprocessors": props.multi_processor_count,
            "l2_cache_mib": round(getattr(props, "L2_cache_size", 0) / 2**20, 2),
            **(nvml.info() if nvml is not None else {}),
        }
        env["gpus"] = every_gpu()
        env["topology"] = topology()
    return env


def every_gpu() -> list[dict]:
    """Every GPU this process sees (a run spread over them names each row's by device_index)."""
    out = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        out.append({"index": i, "name": props.name, "capability": f"{props.major}.{props.minor}",
                    "memory_gib": round(props.total_memory / 2**30, 2),
                    "multiprocessors": props.multi_processor_count,
                    "uuid": str(getattr(props, "uuid", "")) or None,
                    "pci_bus_id": getattr(props, "pci_bus_id", None)})
    return out


def topology() -> Optional[str]:
    """How the GPUs are linked (NVLink, PCIe switches, NUMA): `nvidia-smi topo -m` as printed; None
    without nvidia-smi."""
    try:
        out = subprocess.run(["nvidia-smi", "topo", "-m"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None
