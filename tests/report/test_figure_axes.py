"""What the figures show, read from the matplotlib objects of a synthetic run: every log axis labelled at
least twice however narrow its range, the achieved-vs-ceilings figure's ceilings and rooflines at the
run's recorded ceilings, and the two-run comparison's footer naming both runs' devices."""
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from swimbench.report import plotting as P
from swimbench.report.ceilings import resolve
from swimbench.report.compare import comparison
from swimbench.report.figures import FIGURES, ROOF_LABEL, achieved_vs_ceilings
from swimbench.report.render import comparison_figure
from swimbench.results.reader import load_run
from swimbench.sweeps.spec import Sweep

from ..synthetic import lognormal, make_run, rng_for

# prefill's spread is small: its latency axes span less than a decade, where decade ticks label once
NARROW = Sweep(d_model=200, variants=("dense", "swimba", "rom"), experts=(3, 6, 12), top_k=(1, 2),
               seq=(384, 1536), batch=(1, 5))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    rng = rng_for("figure axes")
    parent = tmp_path_factory.mktemp("axes")
    a = make_run(parent, lognormal(rng), rng=rng, sweep=NARROW, name="a")
    b = make_run(parent, lognormal(rng, slow={"rom": 1.2}), rng=rng, sweep=NARROW, name="b", gpu="NVIDIA H200")
    return load_run(a.path, "a"), load_run(b.path, "b")


def _drawn(fig):
    FigureCanvasAgg(fig).draw()
    return fig


def _labelled(axis) -> list[float]:
    """The ticks of an axis that carry a label and lie in its view."""
    lo, hi = sorted(axis.get_view_interval())
    return [t.get_loc() for t in axis.get_major_ticks()
            if t.label1.get_visible() and t.label1.get_text() and lo <= t.get_loc() <= hi]


@pytest.mark.parametrize("build", FIGURES, ids=lambda f: f.__name__)
def test_every_log_axis_has_two_labelled_ticks(runs, build):
    run = runs[0]
    d = build(run, resolve(run.meta))
    if d.fig is None:
        pytest.skip(d.skipped)
    log_axes = [ax for ax in _drawn(d.fig).axes if ax.get_visible() and ax.get_yscale() == "log"]
    for ax in log_axes:
        assert len(_labelled(ax.yaxis)) >= 2, (d.name, ax.get_title(), ax.get_ylim())


def test_the_narrow_sweep_makes_log_axes_under_a_decade(runs):
    """The property above is tested where decade ticks alone fail: a log axis spanning under 10x."""
    run = runs[0]
    spans = [np.divide(*sorted(ax.get_ylim())[::-1]) for build in FIGURES
             for d in [build(run, resolve(run.meta))] if d.fig is not None
             for ax in _drawn(d.fig).axes if ax.get_visible() and ax.get_yscale() == "log"]
    assert spans and min(spans) < 10


@pytest.mark.parametrize("seed", range(6))
def test_log_ticks_label_any_range_twice(seed):
    rng = np.random.default_rng(rng_for(f"log ticks {seed}").integers(1 << 30))
    lo = 10 ** rng.uniform(-7, 7)
    for ratio in (1.02, 1.3, 2.7, 9.0, 31.0, 10 ** rng.uniform(0.01, 6)):
        ticks = P.LogTicks().tick_values(lo, lo * ratio)
        assert len(ticks) >= 2 and ((ticks >= lo * (1 - 1e-12)) & (ticks <= lo * ratio * (1 + 1e-12))).all()


def test_achieved_vs_ceilings_draws_the_measured_ceilings_and_rooflines(runs):
    run = runs[0]
    ceilings = resolve(run.meta)
    assert ceilings.tflops is not None and ceilings.gbps is not None
    d = achieved_vs_ceilings(run, ceilings)
    fig = _drawn(d.fig)
    assert ROOF_LABEL in [t.get_text() for t in fig.legends[0].get_texts()]
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 4
    for ax in panels:
        want = ceilings.tflops.value if "TFLOP/s" in ax.get_ylabel() else ceilings.gbps.value
        ceiling = [ln for ln in ax.get_lines() if ln.get_label() == "device ceiling"]
        assert len(ceiling) == 1 and np.allclose(ceiling[0].get_ydata(), want)
        dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() not in ("-", "None") and ln.get_label()
                  .startswith("_") and len(ln.get_xdata()) > 1 and ln.get_lw() == P.FLOOR_STYLE["lw"]]
        assert len(dashed) == 2 * 2          # a roofline per routed design and top-k
        for ln in dashed:
            assert (np.asarray(ln.get_ydata()) <= want * (1 + 1e-9)).all()


def test_the_rooflines_are_the_lower_ceiling_at_each_rows_intensity(runs):
    run = runs[0]
    ceilings = resolve(run.meta)
    data = achieved_vs_ceilings(run, ceilings).data
    rows = run.ok.set_index(["variant", "experts", "top_k", "seq", "batch", "layers"])
    got = data.set_index(["variant", "E", "k", "seq", "batch", "layers"])
    for phase in ("prefill", "decode"):
        r = rows.loc[got.index]
        intensity = r[f"{phase}_flops"] / r[f"{phase}_bytes"]          # FLOPs per byte
        tflops = np.minimum(ceilings.tflops.value, ceilings.gbps.value * intensity / 1e3)
        gbps = np.minimum(ceilings.gbps.value, ceilings.tflops.value * 1e3 / intensity)
        assert np.allclose(got[f"{phase}_tflops roofline"], tflops, rtol=1e-6)
        assert np.allclose(got[f"{phase}_gbps roofline"], gbps, rtol=1e-6)
        assert (got[f"{phase}_tflops"] <= got[f"{phase}_tflops roofline"] * (1 + 1e-9)).all()


def test_the_comparison_names_both_runs_devices_at_its_foot(runs):
    a, b = runs
    fig = comparison_figure(a, b, comparison(a, b, 0.01))
    footer = fig.legends[0].get_title().get_text()
    assert a.machine in footer and b.machine in footer and a.machine != b.machine
    assert footer.splitlines() == [f"A: {P.provenance(a)}", f"B: {P.provenance(b)}"]

