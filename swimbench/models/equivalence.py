"""Our dense language model against mamba-ssm's MambaLMHeadModel with the same weights: the same greedy
tokens, and logits within a tolerance at every step (tests/models on the CPU; tests/gpu/test_generate.py on
the GPU).

mamba-ssm is driven as its decode() drives it with cg=False: the model's forward over the prompt with
InferenceParams, then one forward per token. Where its CUDA paths cannot run (a CPU), `reference=True`
builds it unfused and runs it inside mamba_ref.reference_paths(). Logits are compared teacher-forced
(both models fed mamba-ssm's tokens), so that one near-tie does not hide every later step.
"""
from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import Tensor

from .. import mamba_ref
from ..config import LayerConfig
from .lm import LanguageModel, ModelConfig
from .presets import padded_vocab

# max |logits ours - theirs| over max |logits theirs|, at every step, per dtype: fp32 differs only by the
# order of operations (seen on the CPU: 3e-7); bf16 and fp16 by where each implementation rounds (seen in
# bf16 on the CPU's reference paths: 2e-2 at 3 blocks, 4e-2 at 12, a few of bf16's steps of 1/128 at the
# largest logits, and growing with depth).
TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 1e-1, torch.float16: 2e-2}


@dataclass
class Agreement:
    steps: int
    tokens_equal: bool
    first_difference: int           # the first step whose greedy token differs (-1: none)
    margin_there: float             # mamba-ssm's top-1 minus top-2 logit at that step (a near-tie?)
    max_abs: float                  # max |logits ours - theirs|, teacher-forced, over every step
    scale: float                    # max |logits theirs|
    tolerance: float

    @property
    def relative(self) -> float:
        return self.max_abs / self.scale if self.scale else math.inf

    @property
    def logits_close(self) -> bool:
        return self.relative <= self.tolerance

    def line(self) -> str:
        tokens = ("same greedy tokens" if self.tokens_equal else
                  f"greedy tokens differ from step {self.first_difference} (top-2 margin there "
                  f"{self.margin_there:.3g})")
        return (f"{self.steps} steps: {tokens}; logits max |diff| {self.max_abs:.3g} = {self.relative:.2e} of "
                f"max |logit| {self.scale:.3g} (tolerance {self.tolerance:.0e}: "
                f"{'within' if self.logits_close else 'OUTSIDE'})")


def mamba_pair(d_model: int, n_layer: int, vocab_size: int, device="cpu", dtype=torch.float32,
               reference: bool = True, seed: int = 0, varied: bool = True):
    """A MambaLMHeadModel with mamba-ssm's random initialization, and our dense model holding its state
    dict. `reference`: build it for mamba_ref.reference_paths() (the CPU). `varied`: spread the weights so
    that greedy tokens change from step to step: at mamba-ssm's initialization the blocks add little to the
    residual, and the tied head then picks the token just embedded, again and again, which would test
    little."""
    torch.manual_seed(seed)
    cfg = mamba_ref.lm_config(d_model, n_layer, vocab_size, fused=not reference)
    with mamba_ref.reference_paths() if reference else nullcontext():
        theirs = mamba_ref.lm_head_model()(cfg, device=device, dtype=dtype).eval()
    if varied:
        with torch.no_grad():
            theirs.backbone.embedding.weight.normal_(0, 1.0)
            for name, p in theirs.named_parameters():
                if name.endswith(("in_proj.weight", "out_proj.weight")):
                    p.mul_(8)
    ours = LanguageModel(ModelConfig(LayerConfig("dense", d_model, 2 * d_model), n_layer,
                                     padded_vocab(vocab_size)), device=device, dtype=dtype).eval()
    ours.load_mamba_state_dict(theirs.state_dict())
    return theirs, ours


@torch.no_grad()
def mamba_logits(model, input_ids: Tensor, steps: int, feed: Tensor = None) -> tuple[Tensor, Tensor]:
    """mamba-ssm's model over the prompt, then one token at a time as decode() does: the greedy tokens
    (b, steps) and the logits each came from (b, steps, V), fp32. `feed` (b, steps): the tokens to feed
    instead of its own (teacher forcing)."""
    b, n = input_ids.shape
    params = mamba_ref.inference_params(n + steps, b)
    logits = model(input_ids, inference_params=params, num_last_tokens=1).logits[:, -1]
    tokens, seen = [], []
    for i in range(steps):
        if i:
            params.seqlen_offset += n if i == 1 else 1
            prev = (tokens[-1] if feed is None else feed[:, i - 1]).view(b, 1)
            logits = model(prev, inference_params=params, num_last_tokens=1).logits[:, -1]
        seen.append(logits.float())
        tokens.append(logits.argmax(-1))
    return torch.stack(tokens, 1), torch.stack(seen, 1)


@torch.no_grad()
def our_logits(model: LanguageModel, input_ids: Tensor, steps: int, feed: Tensor) -> Tensor:
    """Our model's logits at each step, fed `feed` (b, steps) as mamba_logits is."""
    cache = model.allocate_cache(input_ids.shape[0])
    logits, seen = model(input_ids, cache, last=1)[:, -1], []
    for i in range(steps):
        if i:
            logits = model.step(feed[:, i - 1], cache)
        seen.append(logits.float())
    return torch.stack(seen, 1)


def compare(theirs, ours: LanguageModel, input_ids: Tensor, steps: int = 64, reference: bool = True) -> Agreement:
    """Greedy generation of `steps` tokens by both, and their logits teacher-forced on mamba-ssm's tokens."""
    dtype = next(ours.parameters()).dtype
    with mamba_ref.reference_paths() if reference else nullcontext():
        want, want_logits = mamba_logits(theirs, input_ids, steps)
    got = ours.generate(input_ids, steps)
    forced = our_logits(ours, input_ids, steps, want)
    same = bool(torch.equal(got, want))
    first, margin = -1, math.nan
    if not same:
        first = int((got != want).any(0).nonzero()[0])
        top2 = want_logits[:, first].topk(2, dim=-1).values
        margin = float((top2[:, 0] - top2[:, 1]).min())
    return Agreement(steps, same, first, margin, float((forced - want_logits).abs().max()),
                     float(want_logits.abs().max()), TOLERANCE[dtype])
