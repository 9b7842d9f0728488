"""swimbench.stats: a row's summary and its bootstrap interval, the Mann-Whitney U test (exact for
small samples without ties), evidence of a difference; the interval and the test against scipy,
which is a test dependency only."""
import itertools

import numpy as np
import pytest
import scipy.stats

from swimbench.stats import (EXACT_MAX_SAMPLES, MIN_SAMPLES, Estimate, bootstrap_median_ci, evidence,
                             rank_test, summarize, u_distribution, u_statistic)

from .synthetic import rng_for

ALTERNATIVES = ("greater", "less", "two-sided")


# --- a row's summary -------------------------------------------------------------------------------
@pytest.mark.parametrize("dist", ["normal", "lognormal", "bimodal", "integers"])
@pytest.mark.parametrize("n", [2, 7, 50, 1001])
def test_summary_orders_and_interval_contains_median(dist, n):
    rng = np.random.default_rng(n)
    x = {"normal": rng.normal(5, 1, n), "lognormal": rng.lognormal(0, 1, n),
         "bimodal": np.concatenate([rng.normal(1, 0.1, n // 2), rng.normal(3, 0.1, n - n // 2)]),
         "integers": rng.integers(0, 4, n).astype(float)}[dist]
    s = summarize(x)
    assert s.n == n
    assert s.p10 <= s.median <= s.p90
    assert s.ci_lo <= s.median <= s.ci_hi
    assert x.min() <= s.ci_lo and s.ci_hi <= x.max()
    assert s.median == pytest.approx(np.median(x))
    assert (s.p10, s.p90) == pytest.approx(tuple(np.percentile(x, [10, 90])))


def test_interval_is_deterministic_and_narrows_with_more_samples():
    rng = np.random.default_rng(1)
    small, large = rng.lognormal(0, 0.3, 20), rng.lognormal(0, 0.3, 2000)
    assert bootstrap_median_ci(small, seed=3) == bootstrap_median_ci(small, seed=3)
    w_small = np.subtract(*bootstrap_median_ci(small)[::-1])
    w_large = np.subtract(*bootstrap_median_ci(large)[::-1])
    assert 0 < w_large < w_small / 3          # ~ 1 / sqrt(n): 10x more samples, ~3.2x narrower


def test_interval_covers_the_true_median_about_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    trials, hits = 300, 0
    for i in range(trials):
        lo, hi = bootstrap_median_ci(rng.lognormal(0.0, 0.5, 51), resamples=800, seed=i)
        hits += lo <= 1.0 <= hi                 # the median of lognormal(0, s) is exp(0) = 1
    assert 0.88 <= hits / trials <= 0.995


def test_interval_edge_cases():
    assert bootstrap_median_ci([4.2]) == (4.2, 4.2)
    with pytest.raises(ValueError):
        bootstrap_median_ci([])
    with pytest.raises(ValueError):
        bootstrap_median_ci([1.0, 2.0], confidence=1.0)


@pytest.mark.parametrize("n", [51, 1001])
def test_bootstrap_interval_agrees_with_scipy(n):
    """scipy's percentile bootstrap of the median, with its own resamples: the ends agree to within
    the resampling noise, which for a median is about one step between neighbouring samples."""
    rng = rng_for(f"bootstrap-scipy-{n}")
    x = rng.lognormal(0, 0.5, n)
    resamples = 20000
    lo, hi = bootstrap_median_ci(x, resamples=resamples, seed=int(rng.integers(1 << 30)))
    ref = scipy.stats.bootstrap((x,), np.median, n_resamples=resamples, method="percentile", rng=rng,
                                vectorized=True).confidence_interval
    width, xs = ref.high - ref.low, np.sort(x)
    for ours, theirs in ((lo, ref.low), (hi, ref.high)):
        i = int(np.clip(np.searchsorted(xs, theirs), 1, n - 2))
        assert abs(ours - theirs) <= xs[i + 1] - xs[i - 1] + 0.02 * width, (ours, theirs, width)


# --- the rank test ---------------------------------------------------------------------------------
def test_u_statistic_counts_pairs_with_ties_as_half():
    rng = rng_for("u")
    a, b = rng.integers(0, 8, 23).astype(float), rng.integers(0, 8, 17).astype(float)
    pairs = (b[None, :] > a[:, None]).sum() + 0.5 * (b[None, :] == a[:, None]).sum()
    assert u_statistic(a, b) == pairs


def test_exact_distribution_counts_every_arrangement():
    """U's distribution for small sizes, by enumerating which ranks the first sample takes."""
    rng = rng_for("u-distribution")
    for n1, n2 in [(5, 5), (5, 7), tuple(int(v) for v in rng.integers(5, 9, 2))]:
        counts = np.zeros(n1 * n2 + 1)
        for first in itertools.combinations(range(n1 + n2), n1):
            second = sorted(set(range(n1 + n2)) - set(first))
            counts[sum(s > f for s in second for f in first)] += 1
        assert np.allclose(u_distribution(n1, n2), counts / counts.sum(), rtol=1e-12, atol=0)
        assert np.array_equal(u_distribution(n1, n2), u_distribution(n2, n1))


def _samples(rng, n1, n2, ties: bool):
    shift = rng.uniform(0, 1.5)
    if ties:
        return rng.integers(0, 6, n1).astype(float), rng.integers(0, 6, n2).astype(float) + (shift > 0.75)
    return rng.lognormal(0, 0.3, n1), rng.lognormal(shift * 0.3, 0.3, n2)


@pytest.mark.parametrize("case", ["small, no ties (exact)", "small, ties", "large, no ties", "large, ties"])
def test_rank_test_agrees_with_scipy(case):
    """Exact where a side has at most EXACT_MAX_SAMPLES and nothing ties, as scipy computes it;
    elsewhere the normal approximation with scipy's tie and continuity corrections."""
    rng = rng_for(f"rank-scipy-{case}")
    ties, small = "ties" in case and "no ties" not in case, case.startswith("small")
    method = "exact" if small and not ties else "asymptotic"
    for _ in range(40):
        n1 = int(rng.integers(MIN_SAMPLES, EXACT_MAX_SAMPLES + 1)) if small else int(rng.integers(20, 400))
        n2 = int(rng.integers(MIN_SAMPLES if small else EXACT_MAX_SAMPLES + 1, 300))   # "large": both sides
        if rng.random() < 0.5:
            n1, n2 = n2, n1
        base, now = _samples(rng, n1, n2, ties)
        assert (len(np.unique(np.r_[base, now])) < n1 + n2) == ties
        for alternative in ALTERNATIVES:
            ref = scipy.stats.mannwhitneyu(now, base, alternative=alternative, method=method)
            assert u_statistic(base, now) == ref.statistic
            assert rank_test(base, now, alternative) == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)


def test_exact_p_values_keep_their_precision_far_in_the_tail():
    """Every sample of one side above every sample of the other: one arrangement in C(n1 + n2, n1)."""
    rng = rng_for("exact-tail")
    n1, n2 = int(rng.integers(MIN_SAMPLES, EXACT_MAX_SAMPLES + 1)), int(rng.integers(200, 2000))
    base, now = rng.uniform(0, 1, n1), rng.uniform(2, 3, n2)
    one_in = 1.0 / scipy.special.comb(n1 + n2, n1, exact=True)
    assert rank_test(base, now, "greater") == pytest.approx(one_in, rel=1e-9)
    assert rank_test(now, base, "less") == pytest.approx(one_in, rel=1e-9)
    assert rank_test(base, now, "less") == pytest.approx(1.0)


def test_rank_test_detects_shifts_and_holds_its_level_under_the_null():
    rng = rng_for("rank")
    a = rng.lognormal(0, 0.05, 50)
    shifted = rng.lognormal(np.log(1.1), 0.05, 50)
    assert rank_test(a, shifted, "greater") < 1e-6 and rank_test(a, shifted, "less") > 0.99
    assert rank_test(a, shifted, "two-sided") < 1e-6
    # The one-sided p-values of the two directions add up to a little over 1 (continuity correction).
    b = a * rng.lognormal(0, 0.05, 50)
    assert 1 <= rank_test(a, b, "greater") + rank_test(a, b, "less") <= 1.1
    # Under the null, about alpha of the tests reject, exact or approximate.
    for n in (6, 30):
        rejected = np.mean([rank_test(rng.normal(size=n), rng.normal(size=n), "two-sided") < 0.05
                            for _ in range(300)])
        assert 0.01 <= rejected <= 0.10
    assert rank_test(np.ones(10), np.ones(10)) == 1.0
    with pytest.raises(ValueError):
        rank_test(np.ones(MIN_SAMPLES - 1), np.ones(10))


def test_evidence_from_intervals_alone():
    rng = rng_for("evidence")
    v = rng.uniform(1, 2)
    base = Estimate(v, v * 0.99, v * 1.01)
    assert evidence(base, base.scaled(1.05), 0.01, "greater").significant
    assert not evidence(base, base.scaled(1.005), 0.01, "greater").significant
    assert not evidence(base, base.scaled(1.05), 0.01, "less").significant
    assert not evidence(Estimate(v), Estimate(2 * v), 0.01, "greater").significant
