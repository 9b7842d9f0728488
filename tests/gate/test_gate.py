"""`swimbench gate`: a real slowdown fails it, a rerun or noise inside the intervals does not; bad
baselines and other GPUs end in one line and their own exit status; FLOP counts are gated exactly."""
import json
import math

import numpy as np
import pytest

from swimbench.cli import main
from swimbench.config import Reference
from swimbench.flops.sizing import match
from swimbench.gate.baseline import REPO_BASELINES, load
from swimbench.gate.compare import compare
from swimbench.gate.metrics import GATED, run_rows
from swimbench.results.reader import load_run

from ..synthetic import SWEEP, cli, lognormal, make_run, rng_for

SWIMBA_TIMES = {"prefill_ms", "decode_us", "prefill_ms/dense", "decode_us/dense", "prefill_x_floor",
                "decode_x_floor"}
SMALL_FLOPS = ["--d-model", "96", "--experts", "1,3", "--top-k", "1", "--seq", "5", "-v", "dense,swimba"]


def one_line_error(err: str) -> bool:
    return err.startswith("swimbench: error: ") and err.strip().count("\n") == 0 and "Traceback" not in err


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A baseline written by `swimbench gate --update` from a run of 40 samples per row at 3% noise."""
    folder = tmp_path_factory.mktemp("gate")
    rng = rng_for("gate-base")
    run = make_run(folder, lognormal(rng), rng=rng, name="base")
    path = folder / "h100.json"
    assert main_code(["gate", run.path, "--baseline", path, "--update"]) == 0
    return folder, path


def main_code(args) -> int:
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    return e.value.code


# --- the latency gate ------------------------------------------------------------------------------
def test_rerun_passes_and_a_20pct_swimba_slowdown_fails(base, capsys):
    folder, baseline = base
    rng = rng_for("gate-rerun")
    rerun = make_run(folder, lognormal(rng), rng=rng, name="rerun")
    code, out, _ = cli(["gate", rerun.path, "--baseline", baseline], capsys)
    assert code == 0 and "PASS" in out

    slow = make_run(folder, lognormal(rng, slow={"swimba": 1.2}), rng=rng, name="slow")
    code, out, _ = cli(["gate", slow.path, "--baseline", baseline], capsys)
    assert code == 1 and "regressed" in out and "FAIL" in out
    # Exactly Swimba's times regressed, absolute and over dense; nothing else.
    verdicts = compare(load(baseline).rows, run_rows(load_run(slow.path), GATED), GATED, {}, 0.01)
    failed = {(v.key, v.metric.name) for v in verdicts if v.failed}
    swimba = [p.key for p in SWEEP.points() if p.variant == "swimba"]
    assert failed == {(k, m) for k in swimba for m in SWIMBA_TIMES}
    # Thresholds are per metric and overridable: at 1.3 the same slowdown passes.
    raised = [a for m in SWIMBA_TIMES for a in ("--threshold", f"{m}=1.3")]
    assert cli(["gate", slow.path, "--baseline", baseline, *raised], capsys)[0] == 0


def test_noise_inside_the_intervals_does_not_fail(tmp_path, capsys):
    """A 15% Swimba shift on a machine whose noise is larger: past the threshold, not beyond the
    noise (intervals overlap, rank test not significant), so the gate passes and says "noise"."""
    rng = rng_for("gate-noise")
    drawn = {}
    noisy = lognormal(rng, sigma=0.6, n=10)
    run = make_run(tmp_path, noisy, rng=rng, name="noisy-base", drawn=drawn)
    baseline = tmp_path / "h100.json"
    assert main_code(["gate", run.path, "--baseline", baseline, "--update"]) == 0

    def same_samples_shifted(p, phase):
        return rng.permutation(drawn[p.key, phase]) * (1.15 if p.variant == "swimba" else 1.0)
    now = make_run(tmp_path, same_samples_shifted, rng=rng, name="noisy-now")
    code, out, _ = cli(["gate", now.path, "--baseline", baseline], capsys)
    assert code == 0 and "noise" in out
    verdicts = compare(load(baseline).rows, run_rows(load_run(now.path), GATED), GATED, {}, 0.01)
    swimba = [v for v in verdicts if v.key.startswith("swimba/") and v.metric.name in SWIMBA_TIMES]
    assert swimba and all(math.isclose(v.ratio, 1.15) and v.ratio > v.limit for v in swimba)
    assert {v.verdict for v in swimba} == {"noise"}
    assert not any(v.failed for v in verdicts)


def test_a_configuration_that_no_longer_runs_fails(base, capsys):
    folder, baseline = base
    rng = rng_for("gate-oom")
    oom = [p.key for p in SWEEP.points() if p.variant == "separated"][-1]
    run = make_run(folder, lognormal(rng), rng=rng, name="oom", oom=(oom,))
    code, out, _ = cli(["gate", run.path, "--baseline", baseline, "--show", "changes"], capsys)
    assert code == 1 and "failed" in out and "status oom" in out and oom in out


def test_results_from_another_gpu_exit_4(base, capsys):
    folder, baseline = base
    rng = rng_for("gate-a100")
    for gpu in ("NVIDIA A100-SXM4-80GB", None):
        other = make_run(folder, lognormal(rng), rng=rng, gpu=gpu, name="other")
        code, out, err = cli(["gate", other.path, "--baseline", baseline], capsys)
        assert code == 4 and one_line_error(err) and out == ""
        assert (gpu or "cpu") in err and "NVIDIA H100" in err


@pytest.mark.parametrize("content", [None, "{not json", '{"rows": []}', "[1, 2]",
                                     '{"swimbench_baseline": 1, "kind": "latency", "device": "cuda", '
                                     '"rows": {"k": {"identity": {}}}}'])
def test_bad_or_missing_baseline_exit_3(base, tmp_path, capsys, content):
    folder, _ = base
    run = next(p for p in folder.iterdir() if p.name.endswith("-base"))
    path = tmp_path / "baseline.json"
    if content is not None:
        path.write_text(content)
    code, out, err = cli(["gate", run, "--baseline", path], capsys)
    assert code == 3 and one_line_error(err) and str(path) in err and out == ""


def test_baseline_of_the_other_kind_exit_3_and_bad_flags_exit_2(base, tmp_path, capsys):
    folder, baseline = base
    run = next(p for p in folder.iterdir() if p.name.endswith("-base"))
    flops = tmp_path / "flops.json"
    assert main_code(["flops", *SMALL_FLOPS, "--format", "json", "--out", flops]) == 0
    capsys.readouterr()
    code, _, err = cli(["gate", run, "--baseline", flops], capsys)
    assert code == 3 and one_line_error(err)
    code, _, err = cli(["gate", flops, "--baseline", baseline], capsys)
    assert code == 3 and one_line_error(err)
    for bad in (["--threshold", "prefill_ms=0.9"], ["--threshold", "nope=2"], ["--alpha", "2"]):
        code, _, err = cli(["gate", run, "--baseline", baseline, *bad], capsys)
        assert code == 2 and one_line_error(err) and bad[0] in err
    code, _, err = cli(["gate", tmp_path / "missing-run", "--baseline", baseline], capsys)
    assert code == 2 and one_line_error(err)


def test_baseline_keeps_the_samples_and_identity(base):
    folder, baseline = base
    run = load_run(next(p for p in folder.iterdir() if p.name.endswith("-base")))
    doc = json.loads(baseline.read_text())
    assert doc["gpu"] == run.gpu and set(doc["rows"]) == set(run.rows["key"])
    for key, row in doc["rows"].items():
        assert np.allclose(row["metrics"]["prefill_ms"]["samples"], run.samples[key]["prefill_ms"], rtol=1e-5)


# --- the FLOP gate ------------------------------------------------------------------------------------
def test_flop_gate_passes_on_this_code_and_fails_on_a_changed_count(tmp_path, capsys):
    flops = tmp_path / "flops.json"
    assert main_code(["flops", *SMALL_FLOPS, "--format", "json", "--out", flops]) == 0
    baseline = tmp_path / "baselines" / "flops.json"
    assert main_code(["gate", flops, "--baseline", baseline, "--update"]) == 0
    capsys.readouterr()
    code, out, _ = cli(["gate", "--baseline", baseline], capsys)      # recounted on this code
    assert code == 0 and "PASS" in out
    code, out, _ = cli(["gate", "--baseline", flops], capsys)         # a plain flops JSON as baseline
    assert code == 0

    doc = json.loads(baseline.read_text())
    key = sorted(doc["rows"])[int(rng_for("flop-edit").integers(len(doc["rows"])))]
    doc["rows"][key]["metrics"]["flops_fvcore"]["value"] += 2
    baseline.write_text(json.dumps(doc))
    code, out, _ = cli(["gate", flops, "--baseline", baseline, "--show", "changes"], capsys)
    assert code == 1 and "changed" in out and key in out

    other = tmp_path / "other.json"
    assert main_code(["flops", *SMALL_FLOPS[2:], "--d-model", "64", "--format", "json", "--out", other]) == 0
    capsys.readouterr()
    code, _, err = cli(["gate", other, "--baseline", flops], capsys)
    assert code == 3 and one_line_error(err)


def test_committed_flop_baseline_agrees_with_the_analytic_counts():
    """The CI gate recounts all three counters; this checks the analytic one here, in milliseconds."""
    baseline = load(REPO_BASELINES / "flops.json")
    req = baseline.request
    ref = Reference(**req["reference"])
    assert baseline.kind == "flops" and baseline.rows
    for row in baseline.rows.values():
        i = row.identity
        sized = match(i["variant"], ref, i["experts"], i["top_k"], req["match"], req["align"])
        assert row.values["flops_analytic"].value == sized.flops_per_token
        assert row.values["d_inner"].value == sized.cfg.d_inner
        assert row.values["params_total"].value == sized.params_total


def test_rows_timed_another_way_are_not_compared(base, capsys):
    """A baseline of CUDA-graph prefill against a run written before prefill_mode existed (which
    timed prefill eagerly): every row is "other config", naming the mode; with nothing left to
    compare the gate refuses to pass (exit 3) and says why in one line."""
    folder, baseline = base
    rng = rng_for("gate-legacy")
    legacy = make_run(folder, lognormal(rng, slow={"swimba": 1.5}), rng=rng, name="legacy", prefill_mode=None)
    assert set(load_run(legacy.path).ok["prefill_mode"]) == {"eager"}
    verdicts = compare(load(baseline).rows, run_rows(load_run(legacy.path), GATED), GATED, {}, 0.01)
    assert verdicts and {v.verdict for v in verdicts} == {"other config"}
    assert all("prefill_mode graph -> eager" in v.evidence for v in verdicts)
    code, _, err = cli(["gate", legacy.path, "--baseline", baseline], capsys)
    assert code == 3 and one_line_error(err) and "prefill_mode graph -> eager" in err


def test_skipped_metrics_are_neither_written_nor_gated(base, tmp_path, capsys):
    """--skip leaves a metric out of the baseline that --update writes, and out of the gate: a 20%
    Swimba slowdown passes when its times are skipped and still fails on its ratio to dense."""
    folder, _ = base
    rng = rng_for("gate-skip")
    run = make_run(tmp_path, lognormal(rng), rng=rng, name="skip-base")
    path = tmp_path / "skip.json"
    assert main_code(["gate", run.path, "--baseline", path, "--update", "--skip", "prefill_peak_mib"]) == 0
    doc = json.loads(path.read_text())
    assert doc["source"]["skipped"] == ["prefill_peak_mib"]
    assert all("prefill_peak_mib" not in r["metrics"] and "prefill_ms" in r["metrics"]
               for r in doc["rows"].values() if r["status"] == "ok")
    slow = make_run(tmp_path, lognormal(rng, slow={"swimba": 1.2}), rng=rng, name="skip-slow")
    times = [a for m in ("prefill_ms", "decode_us", "prefill_ms/dense", "decode_us/dense", "prefill_x_floor",
                         "decode_x_floor") for a in ("--skip", m)]
    assert cli(["gate", slow.path, "--baseline", path, *times], capsys)[0] == 0
    code, out, _ = cli(["gate", slow.path, "--baseline", path, *times[:4]], capsys)
    assert code == 1 and "prefill time / dense" in out
    code, _, err = cli(["gate", slow.path, "--baseline", path, "--skip", "speed"], capsys)
    assert code == 2 and one_line_error(err) and "--skip" in err


# --- time over the floor --------------------------------------------------------------------------------
def test_x_floor_is_gated_with_the_times_evidence_and_stored_without_its_samples(base):
    """The floor is one number per row, so a time over its floor carries the time's interval and
    samples, scaled; the baseline keeps its value and interval and derives the samples on loading."""
    folder, baseline = base
    run = load_run(next(p for p in folder.iterdir() if p.name.endswith("-base")))
    doc = json.loads(baseline.read_text())
    rows = load(baseline).rows
    for key, row in doc["rows"].items():
        for phase, time in (("prefill", "prefill_ms"), ("decode", "decode_us")):
            stored = row["metrics"][f"{phase}_x_floor"]
            assert "samples" not in stored and stored["ci_lo"] <= stored["value"] <= stored["ci_hi"]
            x, t = rows[key].values[f"{phase}_x_floor"], rows[key].values[time]
            assert np.allclose(x.samples, t.samples * x.value / t.value)
            floor = run.rows.set_index("key").loc[key, f"{phase}_floor_{time.split('_')[1]}"]
            assert math.isclose(x.value, t.value / floor)


def test_a_baseline_without_x_floor_still_gates(base, tmp_path, capsys):
    """Baselines written before the metric existed: the gate compares what they have and passes."""
    folder, baseline = base
    doc = json.loads(baseline.read_text())
    for row in doc["rows"].values():
        row["metrics"] = {n: m for n, m in row["metrics"].items() if "x_floor" not in n}
    older = tmp_path / "older.json"
    older.write_text(json.dumps(doc))
    rng = rng_for("gate-older")
    rerun = make_run(folder, lognormal(rng), rng=rng, name="rerun-older")
    code, out, _ = cli(["gate", rerun.path, "--baseline", older], capsys)
    assert code == 0 and "PASS" in out and "floor" not in out
    verdicts = compare(load(older).rows, run_rows(load_run(rerun.path), GATED), GATED, {}, 0.01)
    assert verdicts and not any("x_floor" in v.metric.name for v in verdicts)


def test_the_committed_h100_run_gates_against_its_baseline(capsys):
    """reports/h100-2026-11-23-batch-seq, written before floors existed, against the committed
    profiles/baselines/h100.json that was made from it."""
    code, out, _ = cli(["gate", REPO_BASELINES.parents[1] / "reports" / "h100-2026-11-23-batch-seq",
                        "--baseline", REPO_BASELINES / "h100.json"], capsys)
    assert code == 0 and "PASS" in out and "floor" not in out


@pytest.mark.parametrize("extra", [["--ffn-mult", "2"], ["--capacity-factor", "2.5"]])
def test_a_flop_baseline_of_any_request_passes_its_own_recount(tmp_path, capsys, extra):
    """Issue 12's reproduction: the FLOP gate recounted a baseline without the request's FFN width and
    capacity factor, so MoE-Mamba's d_inner differed and unchanged code failed ("6 changed", exit 1)."""
    out, base = tmp_path / "f.json", tmp_path / "b.json"
    common = ["--d-model", "64", "-E", "2,3", "-v", "dense,moe_mamba", "--seq", "4", *extra]
    assert main_code(["flops", *common, "--format", "json", "--out", out]) == 0
    flag, value = extra
    assert json.loads(out.read_text())["request"][flag[2:].replace("-", "_")] == float(value)
    assert main_code(["gate", out, "--baseline", base, "--update"]) == 0
    capsys.readouterr()
    code, text, _ = cli(["gate", "--baseline", base, "--show", "changes"], capsys)     # recounted on this code
    assert code == 0 and "PASS" in text and "changed" not in text
