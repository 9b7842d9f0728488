"""Sweep expansion and the TOML profiles of `swimbench latency`."""
import pytest

from swimbench import designs
from swimbench.sweeps import MeasureSettings, ProfileError, Sweep, load_profile
from swimbench.sweeps.profiles import available, parse_profile


def test_shipped_profiles_parse_and_cover_every_design():
    assert {"default", "cpu"} <= set(available())
    for name in ("default", "cpu"):
        p = load_profile(name)
        assert set(p.sweep.variants) == set(designs.names()) and len(p.sweep.experts) >= 3
        assert p.sweep.routing == "balanced"
        assert p.sweep.match is True and p.description
    gpu = load_profile("default")
    assert gpu.measure.decode == "graph" and gpu.measure.energy and gpu.measure.energy_window_s >= 1.0
    assert gpu.measure.prefill == "graph"
    assert gpu.sweep.dtype == "bf16" and gpu.sweep.d_model == 2048
    cpu = load_profile("cpu")
    assert cpu.sweep.d_model * max(cpu.sweep.seq) <= 2 ** 16 and cpu.measure.decode == "eager"
    assert cpu.measure.prefill == "eager"


def test_points_dense_once_and_top_k_at_most_experts():
    s = Sweep(variants=("dense", "swimba", "separated"), experts=(1, 2, 4), top_k=(1, 2, 4),
              seq=(64, 128), batch=(1, 8), layers=(1,))
    pts = s.points()
    keys = [p.key for p in pts]
    assert len(keys) == len(set(keys))
    # per (seq, batch): 1 dense + 2 variants x (E=1: k1; E=2: k1,k2; E=4: k1,k2,k4) = 1 + 2 * 6
    assert len(pts) == 4 * 13
    assert all(p.top_k <= p.experts for p in pts)
    assert [p for p in pts if p.variant == "dense"] == [p for p in pts if p.experts == 1 and
                                                       p.variant == "dense"]
    assert pts[0].seq == 64 and pts[0].batch == 1 and pts[-1].seq == 128 and pts[-1].batch == 8
    with_cmp = s.points(comparator=True)
    assert len(with_cmp) == len(pts) + 4 and with_cmp[0].variant == "mamba_ssm"


def test_round_trip_to_metadata():
    s = Sweep(experts=(2, 8), seq=(8192,))
    assert Sweep.from_dict(s.as_dict()) == s
    m = MeasureSettings(budget_s=0.5, decode="eager")
    assert MeasureSettings.from_dict(m.as_dict()) == m
    assert MeasureSettings.from_stored(m.as_dict()) == m


def test_a_run_stored_before_prefill_mode_resumes_eagerly():
    """Run directories written before the prefill setting timed prefill eagerly: resuming one must
    not time its remaining rows another way."""
    old = MeasureSettings().as_dict()
    del old["prefill"]
    assert MeasureSettings.from_stored(old).prefill == "eager"
    assert MeasureSettings.from_dict(old).prefill == "graph"            # a new run's default


def test_partial_profile_keeps_defaults():
    p = parse_profile('[sweep]\nseq = [8192]\ncomparator = false\n[measure]\nbudget_s = 2\n')
    assert p.sweep.seq == (8192,) and p.sweep.comparator == "off"
    assert p.sweep.experts == Sweep().experts and p.measure.budget_s == 2.0
    assert p.measure.min_reps == MeasureSettings().min_reps


@pytest.mark.parametrize("text, words", [
    ('[sweep]\nexprts = [2]\n', ["exprts", "[sweep]", "known:"]),
    ('[sweeps]\nseq = [1]\n', ["sweeps", "unknown section"]),
    ('[sweep]\nexperts = [0, 2]\n', ["[sweep] experts", "integers from 1 to 1024"]),
    ('[sweep]\nvariants = ["dense", "moe"]\n', ["variants", "dense, swimba, separated"]),
    ('[model]\nd_state = 1000\n', ["d_state", "1 to 256"]),
    ('[model]\ndtype = "fp8"\n', ["dtype", "bf16"]),
    ('[measure]\nenergy_window_s = 0.5\n', ["energy_window_s", ">= 1"]),
    ('[measure]\ndecode = "compiled"\n', ["decode", "graph, eager"]),
    ('[measure]\nflush_l2 = "yes"\n', ["flush_l2", "true or false"]),
    ('[sweep\nseq = [1]\n', ["not valid TOML"]),
])
def test_bad_profiles_fail_in_one_line_naming_the_key(text, words):
    with pytest.raises(ProfileError) as e:
        parse_profile(text, "mine", "/tmp/mine.toml")
    msg = str(e.value)
    assert "\n" not in msg and "/tmp/mine.toml" in msg
    for w in words:
        assert w in msg


def test_missing_profile_lists_the_available_ones():
    with pytest.raises(ProfileError, match=r"no profile named 'nope' \(available: .*default"):
        load_profile("nope")


def test_profile_by_path(tmp_path):
    f = tmp_path / "mine.toml"
    f.write_text('description = "x"\n[sweep]\nexperts = [3]\ntop_k = [1]\n')
    p = load_profile(str(f))
    assert p.name == "mine" and p.sweep.experts == (3,) and p.raw["sweep"]["experts"] == [3]
