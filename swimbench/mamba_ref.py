"""The one place swimbench imports mamba-ssm, our reference and comparator.

mamba-ssm up to 2.3.2.post1 imports its CUDA extension `selective_scan_cuda` unconditionally from
the package's __init__, so on a machine built without it (every CPU machine) `import mamba_ssm`
fails. We register an empty stand-in first; mamba-ssm's pure-PyTorch references then work, and
`has_cuda_scan()` says whether the real CUDA scan is there.

Its __init__ also imports its language model (`MambaLMHeadModel`), whose generation utilities import
`transformers`. swimbench never uses that model, and `make install` installs mamba-ssm without its
dependencies (tilelang, nvidia-cutlass-dsl, transformers... are GBs a CPU machine never runs), so
where `transformers` is missing the model's module is a stand-in too, with `MambaLMHeadModel = None`.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from functools import lru_cache
from typing import Optional

_STANDIN = "swimbench: CUDA extension not built"
_STANDIN_LM = "swimbench: mamba-ssm's language model, left out (it needs transformers)"


@lru_cache(maxsize=None)
def mamba_ssm() -> Optional[types.ModuleType]:
    """The mamba_ssm package, or None if it is not installed."""
    try:
        importlib.import_module("selective_scan_cuda")
    except ImportError:
        standin = types.ModuleType("selective_scan_cuda", _STANDIN)
        sys.modules["selective_scan_cuda"] = standin
    if not _importable("transformers"):
        lm = types.ModuleType("mamba_ssm.models.mixer_seq_simple", _STANDIN_LM)
        lm.MambaLMHeadModel = None
        sys.modules.setdefault(lm.__name__, lm)
    try:
        return importlib.import_module("mamba_ssm")
    except ImportError:
        return None


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def has_cuda_scan() -> bool:
    """True when mamba-ssm's compiled selective_scan_cuda is importable (the GPU wheel)."""
    if mamba_ssm() is None:
        return False
    return getattr(sys.modules.get("selective_scan_cuda"), "__doc__", None) != _STANDIN


def version() -> Optional[str]:
    mod = mamba_ssm()
    return getattr(mod, "__version__", None) if mod is not None else None


def Mamba():
    """mamba_ssm.modules.mamba_simple.Mamba (raises ImportError if mamba-ssm is missing)."""
    if mamba_ssm() is None:
        raise ImportError("mamba-ssm is not installed (make install puts it in the venv)")
    return importlib.import_module("mamba_ssm.modules.mamba_simple").Mamba


def selective_scan_ref():
    if mamba_ssm() is None:
        raise ImportError("mamba-ssm is not installed")
    return importlib.import_module("mamba_ssm.ops.selective_scan_interface").selective_scan_ref


def selective_scan_fn():
    """The official CUDA scan, or None when the extension is missing."""
    if not has_cuda_scan():
        return None
    return importlib.import_module("mamba_ssm.ops.selective_scan_interface").selective_scan_fn


def selective_state_update():
    """mamba-ssm's Triton decode kernel, or None."""
    if mamba_ssm() is None:
        return None
    try:
        return importlib.import_module("mamba_ssm.ops.triton.selective_state_update").selective_state_update
    except ImportError:
        return None
