"""Sizes of the language models: the Mamba family's (d_model x layers, as its released checkpoints), and a
tiny one that runs on the CPU in the tests. Vocabulary: GPT-NeoX's 50,277 tokens, padded to a multiple of
8 as mamba-ssm pads it."""
from __future__ import annotations

from dataclasses import dataclass

VOCAB = 50277           # the Mamba checkpoints' tokenizer (GPT-NeoX)
PAD_VOCAB = 8           # mamba-ssm's pad_vocab_size_multiple


@dataclass(frozen=True)
class Preset:
    name: str
    d_model: int
    n_layer: int
    vocab_size: int = VOCAB
    note: str = ""


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("tiny", 72, 3, 509, "CPU tests: sizes that are not powers of two"),
    Preset("130m", 768, 24),
    Preset("370m", 1024, 48),
    Preset("790m", 1536, 48),
    Preset("1.4b", 2048, 48),
)}


def get(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}") from None


def padded_vocab(vocab_size: int, multiple: int = PAD_VOCAB) -> int:
    """The embedding's rows: the vocabulary rounded up to a multiple of `multiple` (mamba-ssm's rule)."""
    return -(-vocab_size // multiple) * multiple
