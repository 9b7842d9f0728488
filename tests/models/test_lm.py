"""Whole language models (swimbench.models): our dense model against mamba-ssm's MambaLMHeadModel with the
same weights on mamba-ssm's reference path (greedy tokens and logits), every design's model decoding as
its prefill does, and the model's analytic parameters and FLOPs against the module and FlopCounterMode."""
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from swimbench import designs, mamba_ref
from swimbench.flops import counters  # noqa: F401  (registers our ops' FLOP formulas)
from swimbench.flops.model import ModelDims, size_model
from swimbench.models import LanguageModel, ModelConfig, equivalence, presets
from swimbench.config import LayerConfig, Reference
from swimbench.flops.sizing import match

TINY = presets.get("tiny")
# (variant, E, k): sizes that are not powers of two
CASES = [("dense", 1, 1), ("swimba", 3, 2), ("separated", 3, 1), ("moe_mamba", 5, 2), ("rom", 3, 2)]


def _model(variant, E, k, dims=None, **options) -> LanguageModel:
    sized = size_model(dims or ModelDims.of("tiny"), variant, E, k, **options)
    model = LanguageModel(sized.config).eval()
    with torch.no_grad():                   # weights off their initial values (D = 1, A shared, norms 1)
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


@pytest.mark.skipif(mamba_ref.mamba_ssm() is None, reason="mamba-ssm not installed")
def test_dense_model_generates_mamba_ssm_greedy_tokens_from_its_state_dict():
    """64 greedy steps from a MambaLMHeadModel's weights: the same tokens, and logits (teacher-forced on
    mamba-ssm's tokens) within equivalence.TOLERANCE of mamba-ssm's reference path."""
    theirs, ours = equivalence.mamba_pair(TINY.d_model, TINY.n_layer, TINY.vocab_size,
                                          seed=int(torch.randint(0, 2 ** 31, ())))
    prompt = torch.randint(0, TINY.vocab_size, (2, int(torch.randint(5, 13, ()))))
    agreement = equivalence.compare(theirs, ours, prompt, steps=64)
    assert agreement.tokens_equal, agreement.line()
    assert agreement.logits_close, agreement.line()
    tokens = ours.generate(prompt, 64)
    assert tokens.unique().numel() > 8          # the check is not of a model that repeats one token


def test_a_state_dict_of_other_sizes_or_a_routed_model_is_refused():
    ours = LanguageModel(ModelConfig(LayerConfig("dense", 40, 80), 2, 104))
    other = LanguageModel(ModelConfig(LayerConfig("dense", 40, 80), 3, 104)).state_dict()
    with pytest.raises(ValueError, match="does not fit"):
        ours.load_mamba_state_dict(other)
    routed = _model("swimba", 3, 1)
    with pytest.raises(ValueError, match="dense model"):
        routed.load_mamba_state_dict(routed.state_dict())


@pytest.mark.parametrize("variant,E,k", CASES)
def test_every_design_decodes_as_its_prefill(variant, E, k):
    """Prefill of a prompt then steps gives the logits of one forward over the whole sequence (learned
    routing and room for every slot: a token's experts do not depend on how it was batched)."""
    model = _model(variant, E, k, routing="learned", capacity_factor=8.0)
    b, n, steps = 2, 7, 4
    ids = torch.randint(0, model.cfg.vocab_size, (b, n + steps))
    with torch.no_grad():
        full = model(ids)
        cache = model.allocate_cache(b)
        first = model(ids[:, :n], cache, last=1)[:, -1]
        stepped = [first] + [model.step(ids[:, n + i], cache) for i in range(steps - 1)]
    torch.testing.assert_close(torch.stack(stepped, 1), full[:, n - 1:n + steps - 1], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("variant,E,k", CASES)
def test_parameters_and_flops_of_a_model_are_the_analytic_counts(variant, E, k):
    dims = ModelDims.of(d_model=56, n_layer=3, vocab_size=301)
    sized = size_model(dims, variant, E, k, routing="balanced")
    model = LanguageModel(sized.config)
    assert sum(p.numel() for p in model.parameters()) == sized.params_total   # the tied head counted once
    assert sized.params_active <= sized.params_total
    assert model.lm_head.weight is model.backbone.embedding.weight
    b, n = 2, 9
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(torch.randint(0, dims.vocab_size, (b, n)))
    assert fc.get_total_flops() / (b * n) == pytest.approx(sized.flops_per_token, rel=0.01)
    # FLOP-matched block by block: the model is off dense by its mixers' mismatch, diluted by the head
    layer = match(variant, Reference(dims.d_model), E, k, routing="balanced")
    assert abs(sized.mismatch_pct) <= abs(layer.mismatch_pct)
    assert sized.target == dims.n_layer * layer.target + sized.head_flops_per_token


def test_presets_are_the_mamba_family_and_match_its_parameter_counts():
    """The Mamba family's sizes; the dense 1.4b and 130m models have the released checkpoints' parameters
    (1.37 B and 129 M with the padded vocabulary)."""
    assert {n: (p.d_model, p.n_layer) for n, p in presets.PRESETS.items() if n != "tiny"} == {
        "130m": (768, 24), "370m": (1024, 48), "790m": (1536, 48), "1.4b": (2048, 48)}
    assert size_model(ModelDims.of("1.4b")).params_total == pytest.approx(1.372e9, rel=0.01)
    assert size_model(ModelDims.of("130m")).params_total == pytest.approx(129.1e6, rel=0.01)
    with pytest.raises(ValueError, match="preset must be one of"):
        ModelDims.of("7b")
    assert set(designs.names(default_only=True)) <= {c[0] for c in CASES}
