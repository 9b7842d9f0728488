"""A language model around any design's token mixer, laid out as mamba-ssm's MambaLMHeadModel.

    embedding -> n_layer x [RMSNorm -> mixer, added to the residual] -> RMSNorm -> LM head (tied)

The residual stream is kept in fp32 (mamba-ssm's residual_in_fp32) and each norm reads it there, as
mamba-ssm's fused add-and-norm does; the norm's output, the mixers and the head run in the model's dtype.
The mixer is whatever the configuration's design builds (swimbench.designs); MoE-Mamba's brings its Switch
FFN inside it (its forward returns the block's whole update). Module names follow mamba-ssm's, so that a
dense model takes a MambaLMHeadModel state dict as it is (`load_mamba_state_dict`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .. import designs
from ..config import LayerConfig


@dataclass(frozen=True)
class ModelConfig:
    mixer: LayerConfig          # every block's token mixer (its design, sizes, experts and routing)
    n_layer: int
    vocab_size: int             # rows of the embedding and the head (already padded)
    norm_eps: float = 1e-5      # mamba-ssm's norm_epsilon

    def __post_init__(self):
        if self.n_layer < 1:
            raise ValueError("n_layer must be >= 1")
        if self.vocab_size < 2:
            raise ValueError("vocab_size must be >= 2")

    @property
    def d_model(self) -> int:
        return self.mixer.d_model


class RMSNorm(nn.Module):
    """RMS norm computed in fp32 from the (fp32) residual; the output in the weight's dtype."""

    def __init__(self, d: int, eps: float = 1e-5, device=None, dtype=None):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d, device=device, dtype=dtype))

    def forward(self, x: Tensor) -> Tensor:
        return F.rms_norm(x.float(), (x.shape[-1],), self.weight.float(), self.eps).to(self.weight.dtype)


class Block(nn.Module):
    """One residual block: the residual (fp32) takes the previous block's output, is normalized and mixed."""

    def __init__(self, cfg: ModelConfig, device=None, dtype=None):
        super().__init__()
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps, device, dtype)
        self.mixer = designs.build_layer(cfg.mixer, device=device, dtype=dtype)

    def _add(self, hidden: Tensor, residual: Optional[Tensor]) -> Tensor:
        return hidden.float() if residual is None else residual + hidden.float()

    def forward(self, hidden: Tensor, residual: Optional[Tensor], cache=None) -> tuple[Tensor, Tensor]:
        residual = self._add(hidden, residual)
        return self.mixer(self.norm(residual), cache), residual

    def step(self, hidden: Tensor, residual: Optional[Tensor], cache) -> tuple[Tensor, Tensor]:
        residual = self._add(hidden, residual)
        return self.mixer.step(self.norm(residual), cache), residual


class Backbone(nn.Module):
    def __init__(self, cfg: ModelConfig, device=None, dtype=None):
        super().__init__()
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.d_model, device=device, dtype=dtype)
        nn.init.normal_(self.embedding.weight, std=0.02)            # mamba-ssm's initializer_range
        self.layers = nn.ModuleList(Block(cfg, device, dtype) for _ in range(cfg.n_layer))
        self.norm_f = RMSNorm(cfg.d_model, cfg.norm_eps, device, dtype)

    def forward(self, input_ids: Tensor, caches: Optional[list] = None) -> Tensor:
        hidden, residual = self.embedding(input_ids), None
        for i, layer in enumerate(self.layers):
            hidden, residual = layer(hidden, residual, None if caches is None else caches[i])
        return self.norm_f(residual + hidden.float())

    def step(self, input_ids: Tensor, caches: list) -> Tensor:
        hidden, residual = self.embedding(input_ids), None
        for layer, cache in zip(self.layers, caches):
            hidden, residual = layer.step(hidden, residual, cache)
        return self.norm_f(residual + hidden.float())


class LanguageModel(nn.Module):
    def __init__(self, cfg: ModelConfig, device=None, dtype=None):
        super().__init__()
        self.cfg = cfg
        self.backbone = Backbone(cfg, device, dtype)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False, device=device, dtype=dtype)
        self.lm_head.weight = self.backbone.embedding.weight          # tied, as mamba-ssm ties them

    def allocate_cache(self, batch: int) -> list:
        """Each block's decode state (its mixer's cache)."""
        return [layer.mixer.allocate_cache(batch) for layer in self.backbone.layers]

    def forward(self, input_ids: Tensor, cache: Optional[list] = None, last: int = 0) -> Tensor:
        """input_ids (b, l) -> logits (b, l, V); `last` > 0: only the last `last` positions' logits (a
        prefill needs one). With a cache, leaves in it every block's state after the last token."""
        hidden = self.backbone(input_ids, cache)
        if last > 0:
            hidden = hidden[:, -last:]
        return self.lm_head(hidden)

    def step(self, tokens: Tensor, cache: list) -> Tensor:
        """One token per sequence: tokens (b,) -> logits (b, V); the cache moves one token on."""
        return self.lm_head(self.backbone.step(tokens.view(-1, 1), cache))[:, 0]

    @torch.no_grad()
    def generate(self, input_ids: Tensor, new_tokens: int, cache: Optional[list] = None,
                 return_logits: bool = False):
        """Greedy generation, eagerly: the prompt's prefill gives the first token, each step the next.
        Returns the new tokens (b, new_tokens) and, if asked, the logits each was chosen from
        (b, new_tokens, V), fp32."""
        cache = self.allocate_cache(input_ids.shape[0]) if cache is None else cache
        logits = self(input_ids, cache, last=1)[:, -1]
        tokens, seen = [], []
        for i in range(new_tokens):
            if i:
                logits = self.step(tokens[-1], cache)
            seen.append(logits.float())
            tokens.append(logits.argmax(-1))
        out = torch.stack(tokens, 1)
        return (out, torch.stack(seen, 1)) if return_logits else out

    @torch.no_grad()
    def load_mamba_state_dict(self, state: dict) -> "LanguageModel":
        """Take the weights of a mamba-ssm MambaLMHeadModel of the same sizes (a dense model only: its
        blocks are mamba-ssm's Mamba blocks under the same names)."""
        if self.cfg.mixer.variant != "dense":
            raise ValueError(f"a MambaLMHeadModel state dict loads into a dense model, not "
                             f"{self.cfg.mixer.variant}")
        mine = self.state_dict()
        unknown = sorted(set(state) - set(mine))
        missing = sorted(set(mine) - set(state))
        if unknown or missing:
            raise ValueError(f"state dict does not fit: missing {missing[:4]}, unexpected {unknown[:4]}")
        for name, t in state.items():
            if t.shape != mine[name].shape:
                raise ValueError(f"{name}: shape {tuple(t.shape)} here {tuple(mine[name].shape)}")
        self.load_state_dict(state)
        return self
