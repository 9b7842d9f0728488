"""A whole language model (swimbench.models) at matched FLOPs: every block's mixer FLOP-matched to the dense
Mamba block of the same width (sizing.match), and the model's FLOPs and parameters per token.

Counted as the layers are (2 FLOPs per multiply-add): n_layer mixers and the LM head, d_model x vocab per
token. The embedding is a lookup (no multiply-add) and the norms' few elementwise multiplies per channel
are left out, as fvcore and FlopCounterMode leave them out. Parameters: the embedding (the head is tied to
it), the blocks' norms and mixers, the final norm; active parameters count a token's experts only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..config import Reference
from ..models import presets
from ..models.lm import ModelConfig
from .sizing import match


@dataclass(frozen=True)
class ModelDims:
    """A model's outer sizes: from a preset, or given (name "custom")."""
    name: str
    d_model: int
    n_layer: int
    vocab_size: int             # the tokenizer's; the embedding pads it (presets.padded_vocab)

    @classmethod
    def of(cls, preset: Optional[str] = None, d_model: Optional[int] = None,
           n_layer: Optional[int] = None, vocab_size: Optional[int] = None) -> "ModelDims":
        """A preset, with any of its sizes replaced; without a preset every size is needed but the
        vocabulary (the Mamba tokenizer's by default)."""
        if preset is not None:
            p = presets.get(preset)
            name = p.name if (d_model, n_layer, vocab_size) == (None, None, None) else f"{p.name}-custom"
            return cls(name, d_model or p.d_model, n_layer or p.n_layer, vocab_size or p.vocab_size)
        if d_model is None or n_layer is None:
            raise ValueError("a preset, or both d_model and n_layer")
        return cls("custom", d_model, n_layer, vocab_size or presets.VOCAB)

    @property
    def padded_vocab(self) -> int:
        return presets.padded_vocab(self.vocab_size)


@dataclass(frozen=True)
class SizedModel:
    config: ModelConfig
    dims: ModelDims
    flops_per_token: int        # the whole model's, prefill (a decode step does the same per token)
    mixer_flops_per_token: int  # one block's mixer
    head_flops_per_token: int
    target: int                 # the dense model's flops_per_token
    params_total: int
    params_active: int

    @property
    def mismatch_pct(self) -> float:
        return 100.0 * (self.flops_per_token - self.target) / self.target


def size_model(dims: ModelDims, variant: str = "dense", experts: int = 1, top_k: int = 1, expand: int = 2,
               d_state: int = 16, d_conv: int = 4, align: int = 8, **options) -> SizedModel:
    """The model of `variant` with every mixer FLOP-matched (prefill) to the dense Mamba block of
    Reference(dims.d_model, expand, d_state, d_conv); `options` are further LayerConfig fields (routing,
    capacity_factor, ffn_mult)."""
    ref = Reference(dims.d_model, expand, d_state, d_conv)
    mixer = match(variant, ref, experts, top_k, "prefill", align, **options)
    dense = mixer if variant == "dense" else match("dense", ref, phase="prefill", align=align)
    vocab = dims.padded_vocab
    cfg = ModelConfig(mixer.cfg, dims.n_layer, vocab)
    head = 2 * dims.d_model * vocab
    norms = (dims.n_layer + 1) * dims.d_model
    embedding = vocab * dims.d_model
    return SizedModel(cfg, dims, dims.n_layer * mixer.flops_per_token + head, mixer.flops_per_token, head,
                      dims.n_layer * dense.flops_per_token + head,
                      embedding + norms + dims.n_layer * mixer.params_total,
                      embedding + norms + dims.n_layer * mixer.params_active)
