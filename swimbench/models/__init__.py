"""Whole language models of any design (embedding, residual blocks of a design's token mixer, final norm,
tied head) and their sizes: `lm.py`, `presets.py`. FLOP matching and counting of a model are
swimbench.flops.model's."""
from __future__ import annotations

from .lm import Block, LanguageModel, ModelConfig, RMSNorm
from .presets import PRESETS, Preset, padded_vocab

__all__ = ["Block", "LanguageModel", "ModelConfig", "RMSNorm", "PRESETS", "Preset", "padded_vocab"]
