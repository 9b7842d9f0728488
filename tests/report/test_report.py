"""`swimbench report`: every figure of a synthetic GPU run, graceful skips on a CPU run, a two-run
comparison whose significance calls follow the data, and one-line errors."""
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from swimbench.report.ceilings import resolve
from swimbench.report.compare import comparison
from swimbench.report import plotting
from swimbench.report.figures import FIGURES, achieved_vs_ceilings, decode_vs_batch, x_floor
from swimbench.results.reader import load_run
from swimbench.sweeps.spec import Sweep

from ..synthetic import H100, SWEEP, cli, lognormal, make_run, rng_for

NAMES = [f.__name__ for f in FIGURES]
COMMITTED = Path(__file__).resolve().parents[2] / "reports" / "h100-2026-11-23-batch-seq"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_figure(folder, name):
    png, svg = folder / f"{name}.png", folder / f"{name}.svg"
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 20_000, name
    height, width = imread(png).shape[:2]
    assert width >= 800 and height >= 350, name
    assert "<svg" in svg.read_text()[:2000], name


@pytest.fixture(scope="module")
def gpu_run(tmp_path_factory):
    rng = rng_for("report")
    return make_run(tmp_path_factory.mktemp("report"), lognormal(rng), rng=rng, name="base",
                    comparator=True).path


def test_every_figure_of_a_gpu_run(gpu_run, tmp_path, capsys):
    code, _, err = cli(["report", gpu_run, "--out", tmp_path], capsys)
    assert code == 0 and "skipped" not in err
    folder = tmp_path / gpu_run.name
    for name in NAMES:
        assert_figure(folder, name)
    summary = (tmp_path / "summary.md").read_text()
    assert "Skipped" not in summary and "### Environment" in summary and H100 in summary
    for name in NAMES:
        assert f"]({gpu_run.name}/{name}.png)" in summary
    # Each figure's data as a table: the prefill table has a row per configuration.
    assert summary.count("| swimba ") >= sum(p.variant == "swimba" for p in SWEEP.points())
    assert " median ms |" in summary and "% of ceiling |" in summary and " mean_W |" in summary
    assert "measured: 1 GiB device copy" in summary and "not measured" not in summary
    assert "| mamba_ssm " in summary             # the comparator's rows are drawn and tabled


def test_a_cpu_run_skips_what_it_lacks_and_says_why(tmp_path, capsys):
    rng = rng_for("report-cpu")
    sweep = Sweep(d_model=64, variants=("dense", "swimba", "separated"), experts=(2, 4), top_k=(1,),
                  seq=(64, 128), batch=(1,))
    oom = next(p.key for p in sweep.points() if p.variant == "separated")
    run = make_run(tmp_path, lognormal(rng), rng=rng, gpu=None, sweep=sweep, name="cpu", oom=(oom,))
    out = tmp_path / "report"
    code, _, err = cli(["report", run.path, "--out", out], capsys)
    assert code == 0
    drawn = {"prefill_vs_experts", "decode_vs_experts", "throughput_vs_seq", "achieved_vs_ceilings"}
    for name in drawn:
        assert_figure(out / run.path.name, name)
    for name in set(NAMES) - drawn:
        assert not (out / run.path.name / f"{name}.png").exists()
    summary = (out / "summary.md").read_text()
    assert "*Skipped: no energy measured: energy columns empty: device=cpu" in summary
    assert "*Skipped: no power trace" in summary and "*Skipped: the run measured one batch (1)" in summary
    assert "Ceilings: not measured by this run" in summary
    assert "*Skipped: no device ceilings: not measured by this run" in summary
    assert err.count("skipped") == 4
    assert "Configurations without a measurement" in summary and f"| {oom} " in summary


def test_two_runs_side_by_side(tmp_path, capsys):
    rng = rng_for("report-two")
    sweep = Sweep(d_model=128, variants=("dense", "swimba", "separated"), experts=(2, 4), top_k=(1, 2),
                  seq=(512,), batch=(1,))
    base = make_run(tmp_path, lognormal(rng), rng=rng, sweep=sweep, name="base").path
    slow = make_run(tmp_path, lognormal(rng, slow={"swimba": 1.2}), rng=rng, sweep=sweep, name="slow").path
    runs = (base, slow)
    code, _, _ = cli(["report", base, slow, "--out", tmp_path / "report"], capsys)
    assert code == 0
    out = tmp_path / "report"
    assert_figure(out, f"compare-{slow.name}-vs-{base.name}")
    for run in runs:
        assert (out / run.name / "prefill_vs_experts.png").is_file()
    summary = (out / "summary.md").read_text()
    assert f"## Comparison: `{slow.name}` (B) vs `{base.name}` (A)" in summary
    assert "geometric mean B / A |" in summary and "### prefill (ms)" in summary
    # The significance calls follow the data: Swimba 20% slower, significantly; dense unchanged.
    frame = comparison(load_run(base), load_run(slow))
    prefill = frame[frame["metric"] == "prefill (ms)"]
    swimba = prefill[prefill["configuration"].str.startswith("swimba/")]
    dense = prefill[prefill["configuration"].str.startswith("dense/")]
    assert len(swimba) == sum(p.variant == "swimba" for p in sweep.points())
    assert (swimba["significant"] == "yes").all() and swimba["B / A"].between(1.1, 1.3).all()
    assert dense["B / A"].between(0.95, 1.05).all()
    assert (frame["set up differently"] == "").all()
    assert "set up differently (" not in summary


def test_a_comparison_names_what_was_timed_differently(tmp_path, capsys):
    """Eager against graph-replayed prefill: each shared configuration says so, and the summary warns
    that those ratios include the change of method."""
    rng = rng_for("compare-modes")
    sweep = Sweep(variants=("dense", "swimba"), experts=(2,), top_k=(1,), seq=(512,), batch=(1,))
    graph = make_run(tmp_path, lognormal(rng), rng=rng, sweep=sweep, name="graph").path
    eager = make_run(tmp_path, lognormal(rng), rng=rng, sweep=sweep, name="eager", prefill_mode="eager").path
    frame = comparison(load_run(graph), load_run(eager))
    assert not frame.empty and set(frame["set up differently"]) == {"prefill_mode graph -> eager"}
    assert cli(["report", graph, eager, "--out", tmp_path / "r"], capsys)[0] == 0
    summary = (tmp_path / "r" / "summary.md").read_text()
    assert "**2 configuration(s) were set up differently (prefill_mode graph -> eager)" in summary


def test_ceilings_come_from_flags_then_metadata_and_nowhere_else():
    rng = rng_for("ceilings")
    measured = {"tflops": float(rng.uniform(100, 900)), "gbps": float(rng.uniform(500, 4000)),
                "source": "probe"}
    c = resolve({"ceilings": measured})
    assert (c.tflops.value, c.gbps.value) == (measured["tflops"], measured["gbps"])
    assert "probe" in c.tflops.source
    flag = float(rng.uniform(1, 100))
    c = resolve({"ceilings": measured}, tflops=flag)
    assert c.tflops.value == flag and c.gbps.value == measured["gbps"]
    assert (c.device.tflops, c.device.gbps) == (flag, measured["gbps"])
    # No default for any GPU: a run that measured none has none, and says so.
    h100 = {"environment": {"device": "cuda", "gpu": {"name": H100}}}
    c = resolve(h100)
    assert c.tflops is None and c.gbps is None and c.device is None and "not measured" in c.sources()
    c = resolve(h100, gbps=flag)
    assert c.tflops is None and c.device.gbps == flag and c.device.tflops is None


def test_bad_input_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for args in (["report", tmp_path / "empty"], ["report", tmp_path / "nowhere"],
                 ["report", tmp_path / "empty", "--peak-tflops", "-1"]):
        code, _, err = cli(args, capsys)
        assert code == 2 and err.startswith("swimbench: error: ") and err.strip().count("\n") == 0


def test_power_trace_leaves_the_pause_of_a_resumed_run_blank(tmp_path):
    """A resume appends samples a minute after the first attempt's last: that minute is neither drawn
    as a line nor counted as time spent by the row that follows it."""
    from swimbench.measure.energy import PowerSample
    from swimbench.report.figures import power_trace
    rng = rng_for("power-gap")
    sweep = Sweep(variants=("dense", "swimba"), experts=(2,), top_k=(1,), seq=(512,), batch=(1,))
    made = make_run(tmp_path, lognormal(rng), rng=rng, sweep=sweep, name="gap")
    first = load_run(made.path).power()
    later = float(first["unix_time"].max()) + 60.0
    made.append_power([PowerSample(0, later + i * 0.02, 300.0, None, "swimba/E2/k1/seq512/b1/L1/decode")
                       for i in range(10)])
    drawn = power_trace(load_run(made.path), None)
    assert drawn.skipped is None
    counted = drawn.data["seconds"].sum()
    span = float(first["unix_time"].max() - first["unix_time"].min()) + 10 * 0.02
    assert counted <= span + 1e-6 and counted > 0.5 * span
    line = drawn.fig.axes[0].lines[0].get_ydata()
    assert np.isnan(line.astype(float)).sum() == 1


# --- the floor ------------------------------------------------------------------------------------------
def test_x_floor_figure_draws_each_rows_floor_at_the_runs_ceilings(gpu_run):
    """Read back, the figure's floors are those the run wrote (one arithmetic for both), each bound by
    its larger term; ceilings from the flags move every row's time over floor by their ratio."""
    run = load_run(gpu_run)
    meta = run.meta["ceilings"]
    drawn = x_floor(run, resolve(run.meta))
    assert drawn.skipped is None and drawn.fig is not None
    stored = run.ok.set_index("key")
    data = drawn.data.assign(key=run.ok[run.ok["prefill_x_floor"].notna()]["key"].to_numpy()).set_index("key")
    for phase, unit in (("prefill", "ms"), ("decode", "us")):
        assert np.allclose(data[f"{phase} x floor"], stored.loc[data.index, f"{phase}_x_floor"])
        memory = stored[f"{phase}_bytes"] / (meta["gbps"] * 1e9)
        compute = stored[f"{phase}_flops"] / (meta["tflops"] * 1e12)
        bound = np.where(memory >= compute, "memory", "compute")
        assert (stored[f"{phase}_floor_bound"] == bound).all()
    titles = " ".join(ax.get_title() for ax in drawn.fig.axes)
    assert "floor bound by" in titles
    scale = float(rng_for("x-floor-scale").uniform(1.5, 4))
    flagged = x_floor(run, resolve(run.meta, tflops=meta["tflops"] * scale, gbps=meta["gbps"] * scale))
    assert np.allclose(flagged.data["prefill x floor"], drawn.data["prefill x floor"] * scale)
    assert (flagged.data["decode bound"] == drawn.data["decode bound"]).all()


def test_a_run_without_ceilings_says_not_measured_and_flags_give_it_floors(tmp_path, capsys):
    """As the runs written before ceilings were measured: no ceilings, no counted bytes or FLOPs. The
    report renders, the floor figure is skipped as not measured, the achieved figure says so in its
    panel titles (never over the data); with both flags the floors come from the achieved rates."""
    rng = rng_for("report-old")
    sweep = Sweep(d_model=128, variants=("dense", "swimba", "separated"), experts=(2, 4), top_k=(1,),
                  seq=(512,), batch=(1, 4))
    old = make_run(tmp_path, lognormal(rng), rng=rng, sweep=sweep, name="old", ceilings=None, counted=False)
    code, _, err = cli(["report", old.path, "--out", tmp_path / "r"], capsys)
    assert code == 0 and "not measured" in err
    summary = (tmp_path / "r" / "summary.md").read_text()
    assert "*Skipped: no device ceilings: not measured by this run" in summary
    run = load_run(old.path)
    achieved = achieved_vs_ceilings(run, resolve(run.meta))
    assert all("not measured" in ax.get_title() and not ax.texts for ax in achieved.fig.axes)

    tflops, gbps = float(rng.uniform(200, 1000)), float(rng.uniform(1000, 5000))
    code, _, _ = cli(["report", old.path, "--out", tmp_path / "f", "--peak-tflops", tflops, "--peak-gbps", gbps],
                     capsys)
    assert code == 0
    assert_figure(tmp_path / "f" / old.path.name, "x_floor")
    drawn = x_floor(run, resolve(run.meta, tflops, gbps))
    ok = run.ok
    expected = np.minimum(gbps / ok["prefill_gbps"], tflops / ok["prefill_tflops"])
    assert np.allclose(drawn.data["prefill x floor"], expected.to_numpy())


def test_the_committed_h100_run_still_renders(tmp_path, capsys):
    """reports/h100-2026-11-23-batch-seq was written before runs measured ceilings or stored bytes."""
    code, _, err = cli(["report", COMMITTED, "--out", tmp_path], capsys)
    assert code == 0 and "Time over the floor" in err and "not measured" in err
    summary = (tmp_path / "summary.md").read_text()
    assert "Ceilings: not measured by this run" in summary
    run = load_run(COMMITTED)
    assert (run.ok["prefill_bytes"] > 0).all() and run.ok["prefill_x_floor"].isna().all()


def _floor_lines(ax) -> list:
    """The floors drawn in a panel: dashed lines with data and no markers (measured lines have markers,
    the legend's entry no data)."""
    return [ln for ln in ax.get_lines() if ln.get_linestyle() == "--" and ln.get_marker() in ("None", None, "")
            and len(ln.get_xdata())]


def test_decode_vs_batch_draws_each_designs_floor_in_its_colour_and_older_runs_without(gpu_run, tmp_path):
    """Every design in a latency panel gets one dashed floor line of its colour through its rows'
    decode_floor_us (the run's own ceilings); the throughput panels get none. A run without ceilings or
    counts still draws the figure, with no floor line; the flags give it floors."""
    run = load_run(gpu_run)
    drawn = decode_vs_batch(run, resolve(run.meta))
    assert drawn.skipped is None and "floor" in drawn.caption and "decode floor (µs per step)" in drawn.data
    axes = [ax for ax in drawn.fig.axes if ax.get_visible()]
    latency = [ax for ax in axes if ax.get_ylabel().startswith("decode latency")]
    assert latency and all(not _floor_lines(ax) for ax in axes if ax not in latency)
    ok = run.ok[run.ok["seq"] == run.ok["seq"].min()]
    for ax in latency:
        experts = int(ax.get_title().split()[2])
        shown = ok[ok["variant"].isin(["dense", "mamba_ssm"]) | (ok["experts"] == experts)]
        designs = shown.groupby(["variant", "top_k"])
        lines = _floor_lines(ax)
        assert len(lines) == designs.ngroups
        for (variant, _), rows in designs:
            rows = rows.sort_values("batch")
            match = [ln for ln in lines if ln.get_color() == plotting.color(variant)
                     and np.allclose(ln.get_ydata(), rows["decode_floor_us"])]
            assert match, (variant, experts)
            assert list(match[0].get_xdata()) == list(rows["batch"])
        assert ax.get_ylim()[0] <= shown["decode_floor_us"].min()      # the floors are on the axis
    assert plotting.FLOOR_LABEL in [t.get_text() for t in drawn.fig.legends[0].get_texts()]

    rng = rng_for("decode-batch-old")
    sweep = Sweep(d_model=128, variants=("dense", "swimba"), experts=(2, 4), top_k=(1,), seq=(512,), batch=(1, 4))
    old = load_run(make_run(tmp_path, lognormal(rng), rng=rng, sweep=sweep, name="old", ceilings=None,
                            counted=False).path)
    bare = decode_vs_batch(old, resolve(old.meta))
    assert bare.skipped is None and bare.fig is not None and "No floors drawn" in bare.caption
    assert not any(_floor_lines(ax) for ax in bare.fig.axes) and "decode floor (µs per step)" not in bare.data
    assert plotting.FLOOR_LABEL not in [t.get_text() for t in bare.fig.legends[0].get_texts()]
    flagged = decode_vs_batch(old, resolve(old.meta, tflops=float(rng.uniform(200, 1000)),
                                           gbps=float(rng.uniform(1000, 5000))))
    assert sum(len(_floor_lines(ax)) for ax in flagged.fig.axes) == 2 * 2      # (dense, swimba) x E


@pytest.mark.parametrize("figure", FIGURES, ids=NAMES)
def test_every_figure_names_its_device_dtype_and_commit(figure, gpu_run, tmp_path):
    """The provenance line goes into the space the layout keeps (the legend's title, or the x label)
    and names the run's GPU, dtype and commit, as its metadata has them."""
    run = load_run(gpu_run)
    d = figure(run, resolve(run.meta, None, None))
    if d.fig is None:
        pytest.skip(d.skipped)
    plotting.stamp(d.fig, plotting.provenance(run))
    texts = [lg.get_title().get_text() for lg in d.fig.legends] + [t.get_text() for t in d.fig.texts]
    line = next(t for t in texts if "commit" in t)
    git = run.env.get("git") or {}
    assert H100 in line and "bf16" in line and str(git.get("commit") or "unknown")[:10] in line
    assert run.name in line
