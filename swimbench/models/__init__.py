"""Whole language models of any design (embedding, residual blocks of a design's token mixer, final norm,
tied head) and their sizes: `lm.py`, `presets.py`. FLOP matching and counting of a model are
swimbench.flops.model's."""
from __future__ import annotations

import importlib

# The names are read from their modules on first use, so that `presets` (plain sizes) imports without
# torch: the command line reads the presets for its help text and must start without torch.
_FROM = {"Block": "lm", "LanguageModel": "lm", "ModelConfig": "lm", "RMSNorm": "lm",
         "PRESETS": "presets", "Preset": "presets", "padded_vocab": "presets"}
__all__ = list(_FROM)


def __getattr__(name: str):
    if name not in _FROM:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_FROM[name]}", __name__), name)
