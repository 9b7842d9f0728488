"""Whole models generating on the GPU (docs/generate.md; was `scripts/gpu_generate.py check`): our dense
model against mamba-ssm's MambaLMHeadModel holding the same state dict, at the 130m size (768 x 24),
mamba-ssm on its CUDA paths (fused add-and-norm, its scan and decode kernels) and ours on our Triton
kernels: 64 greedy steps from a prompt of 100 tokens, batch 2, in fp32 (the same tokens, logits within
equivalence.TOLERANCE) and bf16 (logits within its tolerance; the greedy tokens may part at a near tie,
reported with its margin). Then our timed generation, a CUDA graph replayed per token, against our eager
greedy generation: the same tokens."""
import pytest
import torch

DEV = "cuda"
PRESET = "130m"


@pytest.fixture
def no_tf32():
    """fp32 means fp32 on both sides: no TF32 in cuBLAS or in cuDNN's convolutions (mamba-ssm's conv is
    nn.Conv1d where the causal-conv1d package is absent)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.parametrize("dtype, tokens_must_match", [(torch.float32, True), (torch.bfloat16, False)],
                         ids=["fp32", "bf16"])
def test_dense_model_matches_mamba_lm_head_model(mamba_cuda, no_tf32, record_property, dtype, tokens_must_match):
    from swimbench.models import equivalence, presets
    p = presets.get(PRESET)
    theirs, ours = equivalence.mamba_pair(p.d_model, p.n_layer, p.vocab_size, device=DEV, dtype=dtype,
                                          reference=False, seed=int(torch.randint(0, 2**31, ())))
    prompt = torch.randint(0, p.vocab_size, (2, 100), device=DEV)
    a = equivalence.compare(theirs, ours, prompt, steps=64, reference=False)
    record_property("agreement", a.line())          # in the JUnit file: where the bf16 tokens part, if they do
    assert a.logits_close and (a.tokens_equal or not tokens_must_match), a.line()


@pytest.mark.parametrize("variant", ["dense", "swimba"])
def test_graph_replayed_generation_gives_the_eager_greedy_tokens(variant):
    """Swimba at E = 8, k = 2, learned routing; batch 3, a prompt of 100 tokens, 48 new ones."""
    from swimbench.measure import generation
    from swimbench.models import LanguageModel, presets
    from swimbench.sweeps.spec import GenerateSweep, MeasureSettings
    p = presets.get(PRESET)
    sweep = GenerateSweep(preset=PRESET, dtype="bf16", variants=(variant,), experts=(8,), top_k=(2,),
                          prompt=(100,), new_tokens=48, batch=(3,), routing="learned")
    settings = MeasureSettings(budget_s=0.05, min_reps=1, warmup_reps=1, energy=False,
                               seed=int(torch.randint(0, 2**31, ())))
    (point,) = sweep.points(PRESET, p.n_layer)
    measurer = generation.GenerationMeasurer(sweep, settings, DEV)
    measurer(point)
    # the measurer's model and prompt, from its seeds
    torch.manual_seed(settings.seed)
    with torch.no_grad():
        model = LanguageModel(generation.sized(point, sweep).config, device=DEV, dtype=torch.bfloat16).eval()
        gen = torch.Generator(device=DEV).manual_seed(settings.seed + 1)
        ids = torch.randint(0, model.cfg.vocab_size, (point.batch, point.seq), device=DEV, generator=gen)
        eager = model.generate(ids, point.new_tokens)
    assert torch.equal(measurer.generated, eager)
