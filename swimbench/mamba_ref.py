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
from contextlib import contextmanager
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


# --- whole models (swimbench generate's comparator and the dense model's equivalence checks) -------------
def lm_head_model():
    """mamba_ssm's MambaLMHeadModel class (raises ImportError if mamba-ssm is missing)."""
    if mamba_ssm() is None:
        raise ImportError("mamba-ssm is not installed (make install puts it in the venv)")
    return importlib.import_module("mamba_ssm.models.mixer_seq_simple").MambaLMHeadModel


def lm_config(d_model: int, n_layer: int, vocab_size: int, fused: bool = True, d_state: int = 16,
              d_conv: int = 4, expand: int = 2):
    """A MambaConfig of Mamba-1 blocks, laid out as the released Mamba checkpoints (RMSNorm, residual in
    fp32, tied embeddings, vocabulary padded to a multiple of 8). `fused`: the Triton add-and-norm and
    mamba-ssm's fast path, as on a GPU; False: the plain PyTorch block, which `reference_paths` completes
    for a CPU."""
    if mamba_ssm() is None:
        raise ImportError("mamba-ssm is not installed")
    config = importlib.import_module("mamba_ssm.models.config_mamba").MambaConfig
    ssm = {"layer": "Mamba1", "d_state": d_state, "d_conv": d_conv, "expand": expand}
    if not fused:
        ssm["use_fast_path"] = False
    return config(d_model=d_model, n_layer=n_layer, vocab_size=vocab_size, ssm_cfg=ssm, rms_norm=True,
                  residual_in_fp32=True, fused_add_norm=fused, pad_vocab_size_multiple=8, tie_embeddings=True)


@contextmanager
def reference_paths():
    """While open, MambaLMHeadModel (built with lm_config(..., fused=False)) runs on mamba-ssm's pure-PyTorch
    paths only, which is what runs on a CPU: the prefill scan is selective_scan_ref (selective_scan_fn needs
    the CUDA extension), the decode step its PyTorch branch (selective_state_update is a Triton kernel),
    RMSNorm rms_norm_ref (its forward is a Triton kernel), and the conv nn.Conv1d and its PyTorch step (the
    causal-conv1d package's kernels are CUDA only). What stays out of reach on a CPU: `generate`
    and `decode` themselves, which build torch.cuda.Event objects unconditionally (a CPU build of torch
    refuses them), and the fused add-and-norm (Triton). Callers drive the model's forward with
    InferenceParams, the calls decode() makes."""
    simple = importlib.import_module("mamba_ssm.modules.mamba_simple")
    scan = importlib.import_module("mamba_ssm.ops.selective_scan_interface")
    norms = importlib.import_module("mamba_ssm.ops.triton.layer_norm")

    def rms_forward(self, x, residual=None, prenorm=False, residual_in_fp32=False):
        if residual is not None or prenorm:
            raise RuntimeError("the fused add-and-norm has no reference path: build with fused=False")
        return norms.rms_norm_ref(x, self.weight, self.bias, eps=self.eps, upcast=True)

    saved = [(simple, "selective_scan_fn", scan.selective_scan_ref), (simple, "selective_state_update", None),
             (simple, "causal_conv1d_fn", None), (simple, "causal_conv1d_update", None),
             (norms.RMSNorm, "forward", rms_forward)]
    saved = [(obj, name, getattr(obj, name), new) for obj, name, new in saved]
    for obj, name, _, new in saved:
        setattr(obj, name, new)
    try:
        yield
    finally:
        for obj, name, old, _ in saved:
            setattr(obj, name, old)


def inference_params(max_seqlen: int, batch: int):
    """mamba-ssm's InferenceParams (its per-layer decode state, filled by the model's forward)."""
    return importlib.import_module("mamba_ssm.utils.generation").InferenceParams(
        max_seqlen=max_seqlen, max_batch_size=batch)
