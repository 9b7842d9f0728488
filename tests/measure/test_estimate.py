"""The time estimates of `generate`, `latency` and `ep` (swimbench.measure.estimate) scale with the work: a
larger model, batch, prompt or generation takes longer, on both kinds of device; and the generations the
estimate counts are those the measurement loop makes."""
import numpy as np
import pytest

from swimbench.measure import estimate
from swimbench.measure.generation import sized, timed_enough
from swimbench.sweeps.spec import GenerateSweep, MeasureSettings, Sweep
from tests.synthetic import rng_for


def _generate_s(device: str, **over) -> float:
    sweep = GenerateSweep(**{"preset": "tiny", "variants": ("dense", "swimba"), "experts": (3,), "top_k": (1,),
                             "prompt": (24,), "batch": (1,), "new_tokens": 6, **over})
    points = sweep.points("custom", 3)
    return estimate.generate_s(sweep, points, MeasureSettings(), device)


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_generate_estimate_grows_with_model_batch_prompt_and_new_tokens(device):
    rng = rng_for(f"estimate-{device}")
    prompt, batch, new = int(rng.integers(50, 300)), int(rng.integers(2, 9)), int(rng.integers(200, 900))
    base = dict(prompt=(prompt,), batch=(batch,), new_tokens=new)
    at = _generate_s(device, **base)
    assert _generate_s(device, **{**base, "preset": "1.4b"}) > at
    assert _generate_s(device, **{**base, "preset": None, "d_model": 72, "n_layer": 3 * 7}) > at
    assert _generate_s(device, **{**base, "batch": (batch * 13,)}) > at
    assert _generate_s(device, **{**base, "prompt": (prompt * 11,)}) > at
    assert _generate_s(device, **{**base, "new_tokens": new * 9}) > at


def test_long_generations_scale_linearly_on_the_cpu():
    """A generation past the budget is made twice (warm-up and one timed): its time is ~linear in new tokens."""
    short, long = (_generate_s("cpu", new_tokens=n) for n in (5_000, 20_000))
    assert 3.5 < long / short < 4.5


@pytest.mark.parametrize("one_s", [1e-4, 0.013, 0.37, 2.9, 11.0])
def test_estimated_generations_are_the_loops(one_s):
    settings = MeasureSettings(budget_s=float(rng_for(f"gen-{one_s}").uniform(0.3, 2.0)), min_reps=7)
    n = estimate.generations(one_s, settings)
    assert timed_enough(n, n * one_s, settings) and (n == 0 or not timed_enough(n - 1, (n - 1) * one_s, settings))


def test_the_estimate_counts_the_flops_of_flops_model():
    """A CPU prefill past its host time is FLOP-bound: twice the model's FLOPs per token, about twice the time."""
    sweep = GenerateSweep(preset="1.4b", variants=("dense",), prompt=(2048,), batch=(4,))
    (point,) = [p for p in sweep.points("1.4b", 48) if p.batch == 4 and p.variant == "dense"][:1]
    model = sized(point, sweep)
    rates = estimate.ROUGH["cpu"]
    t = estimate.generation_s(model, 2048, 4, 2, "fp32", rates, graph=False)
    flops = 4 * 2048 * (model.flops_per_token - model.head_flops_per_token) + 4 * model.head_flops_per_token
    assert flops / rates.flops_per_s["fp32"] < t < 1.5 * flops / rates.flops_per_s["fp32"]


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_latency_estimate_grows_with_seq_batch_width_and_depth(device):
    rng = np.random.default_rng(rng_for(f"lat-{device}").integers(1 << 30))
    seq, batch, d = int(rng.integers(300, 900)), int(rng.integers(2, 7)), int(rng.integers(40, 90)) * 8
    settings = MeasureSettings(budget_s=0.1, min_reps=5)

    def est(**over):
        sweep = Sweep(**{"d_model": d, "variants": ("dense", "rom"), "experts": (4,), "top_k": (1,),
                         "seq": (seq,), "batch": (batch,), "layers": (1,), **over})
        return estimate.layer_points_s(sweep, sweep.points(), settings, device)[1]
    at = est()
    for bigger in ({"seq": (seq * 17,)}, {"batch": (batch * 23,)}, {"d_model": d * 6}, {"layers": (9,)}):
        assert est(**bigger) > at, bigger


def test_ep_estimate_grows_with_the_calls_and_the_layer():
    from swimbench.measure import expert_parallel as epm
    vs = ("moe_mamba", "rom", "swimba")

    def est(d_model, seq, calls):
        sweep = Sweep(d_model=d_model, variants=vs, experts=(4, 8), top_k=(1,), seq=(seq,), batch=(1,),
                      comparator="off")
        return estimate.ep_s(sweep, epm.points(vs, (4, 8), (1,), (seq,), (1,), ("expert",)), calls, "cpu")
    at = est(64, 37, 4)
    assert est(64, 37 * 30, 4) > at and est(64 * 20, 37, 4) > at
    assert est(64, 37, 40) - at == pytest.approx(9 * (est(64, 37, 8) - at)) and est(64, 37, 8) > at
