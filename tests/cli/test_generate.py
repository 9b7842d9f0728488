"""`swimbench generate` end to end on the CPU at the tiny preset: rows, the report's figures, the gate,
out-of-memory rows, resume, bad input; the timed generation really is greedy generation; `flops --model`."""
import json

import pandas as pd
import pytest
import torch

from swimbench.flops.model import ModelDims, size_model
from swimbench.measure import generation
from swimbench.measure.generation import GenerationMeasurer
from swimbench.models import LanguageModel
from swimbench.results import RunDir
from swimbench.sweeps.spec import COMPARATOR, GenerateSweep, MeasureSettings

from ..synthetic import cli

QUICK = ["--preset", "tiny", "--dtype", "fp32", "--budget", "0.01", "--min-reps", "2", "--warmup", "1",
         "--device", "cpu"]


def _run_dir(out):
    (d,) = [p for p in out.iterdir() if p.is_dir()]
    return d


def test_tiny_models_generate_end_to_end_and_report_and_gate_take_the_run(tmp_path, capsys):
    new = int(torch.randint(3, 6, ()))
    code, out, err = cli(["generate", *QUICK, "-v", "dense,swimba,moe_mamba", "-E", "3", "-k", "1,2",
                          "--prompt", "7,13", "-b", "1,3", "-n", new, "--out", tmp_path], capsys)
    assert code == 0, err
    run = _run_dir(tmp_path)
    df = pd.read_csv(run / "results.csv")
    assert len(df) == 2 * 2 * 5 and (df["status"] == "ok").all()
    assert (df["new_tokens"] == new).all() and (df["model"] == "tiny").all() and (df["layers"] == 3).all()
    assert (df["token_ms_p10"] <= df["token_ms"]).all() and (df["token_ms"] <= df["token_ms_p90"]).all()
    assert (df["ttft_ms"] > 0).all() and (df["token_samples"] % (new - 1) == 0).all()
    assert df["gen_tokens_per_s"].to_numpy() == pytest.approx((df["batch"] / df["token_ms"] * 1e3).to_numpy())
    for r in df.itertuples():                                   # whole-model counts, FLOP-matched
        sized = size_model(ModelDims.of("tiny"), r.variant, r.experts, r.top_k, routing="balanced")
        assert (r.params_total, r.flops_per_token, r.d_inner) == (sized.params_total, sized.flops_per_token,
                                                                   sized.config.mixer.d_inner)
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["tool"] == "swimbench generate" and meta["status"] == "complete"
    assert meta["environment"]["device"] == "cpu" and "mamba-ssm comparator rows skipped" in err

    # mamba-ssm's rows cannot run on a CPU: one beside each dense row, slower by a random factor, shows
    # the report's references (the figures draw it as a line, the tables list it)
    results = RunDir(run).results(order=meta["points"])
    for key, r in list(results.rows.items()):
        if r["variant"] == "dense":
            slower = 1 + float(torch.rand(()))
            theirs = {**r, "key": key.replace("/dense/", f"/{COMPARATOR}/"), "variant": COMPARATOR}
            for c in [f"{m}{s}" for m in ("ttft_ms", "token_ms") for s in ("", "_p10", "_p90", "_ci_lo", "_ci_hi")]:
                theirs[c] = repr(float(r[c]) * slower)
            theirs["gen_tokens_per_s"] = repr(float(r["gen_tokens_per_s"]) / slower)
            results.rows[theirs["key"]] = theirs
            results.kept.add(theirs["key"])                  # cells as text, as read back
    results.write()
    code, _, err = cli(["report", run, "--out", tmp_path / "report"], capsys)
    assert code == 0
    for name in ("tokens_per_s_vs_batch", "ttft_vs_prompt", "token_latency_vs_experts"):
        assert (tmp_path / "report" / run.name / f"{name}.png").stat().st_size > 20_000
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "per-token latency vs number of experts" in summary and "| moe_mamba " in summary
    # its rows in the tables: tokens/s vs batch at the shortest prompt (2), TTFT vs prompt at the smallest
    # batch (2), per-token latency vs E at every (prompt, batch) (4)
    assert summary.count(f"| {COMPARATOR} ") == 2 + 2 + 4

    base = tmp_path / "base.json"
    assert cli(["gate", run, "--baseline", base, "--update"], capsys)[0] == 0
    code, out, _ = cli(["gate", run, "--baseline", base], capsys)
    assert code == 0 and "per token (ms)" in out and "time to first token (ms)" in out


def test_a_model_out_of_memory_is_an_oom_row_and_resume_skips_what_is_done(tmp_path, capsys, monkeypatch):
    real = generation.LanguageModel

    def oom_for_swimba(cfg, *a, **kw):
        if cfg.mixer.variant == "swimba":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 96.00 GiB")
        return real(cfg, *a, **kw)
    monkeypatch.setattr(generation, "LanguageModel", oom_for_swimba)
    args = [*QUICK, "-v", "dense,swimba", "-E", "2", "-k", "1", "--prompt", "5", "-b", "2", "-n", "3"]
    code, _, err = cli(["generate", *args, "--out", tmp_path], capsys)
    assert code == 0 and "oom" in err
    run = _run_dir(tmp_path)
    df = pd.read_csv(run / "results.csv")
    assert list(df["status"]) == ["ok", "oom"] and "out of memory" in df.loc[1, "error"]
    before = (run / "results.csv").read_text()
    code, _, err = cli(["generate", "--resume", run, "--device", "cpu"], capsys)
    assert code == 0 and "2 already done" in err
    assert (run / "results.csv").read_text() == before


@pytest.mark.parametrize("args,flag", [(["--preset", "7b"], "--preset"), (["-b", "0"], "--batch"),
                                       (["--prompt", "0"], "--prompt"), (["-E", "3", "-k", "4"], "--top-k"),
                                       (["-n", "1"], "--new-tokens"), (["--dtype", "fp8"], "--dtype"),
                                       (["-v", "nope"], "--variants"), (["--preset", "none"], "--preset none")])
def test_bad_input_is_one_line_and_exit_2(args, flag, capsys, tmp_path):
    code, out, err = cli(["generate", "--device", "cpu", "--out", tmp_path, *args], capsys)
    assert code == 2 and err.count("\n") == 1 and flag in err
    assert not list(tmp_path.iterdir())                       # nothing measured, no run directory


def test_the_timed_generation_is_greedy_generation():
    """The tokens the timed loop leaves (prefill, then decode steps feeding their own argmax) are the
    tokens of the model's eager greedy generate, from the same weights and prompt."""
    sweep = GenerateSweep(preset="tiny", dtype="fp32", variants=("swimba",), experts=(3,), top_k=(2,),
                          prompt=(int(torch.randint(4, 12, ())),), new_tokens=7, batch=(2,), routing="learned")
    settings = MeasureSettings(budget_s=0.01, min_reps=1, warmup_reps=1, energy=False, seed=5)
    measurer = GenerationMeasurer(sweep, settings, "cpu")
    (point,) = sweep.points("tiny", 3)
    row = measurer(point).row
    assert row["status"] == "ok" and row["token_samples"] >= 6
    torch.manual_seed(settings.seed)
    model = LanguageModel(generation.sized(point, sweep).config).eval()
    gen = torch.Generator().manual_seed(settings.seed + 1)
    prompt = torch.randint(0, model.cfg.vocab_size, (2, point.seq), generator=gen)
    assert torch.equal(measurer.generated, model.generate(prompt, 7))


def test_flops_of_a_whole_model(capsys):
    code, out, _ = cli(["flops", "--model", "130m", "-E", "4", "-k", "2", "-v", "dense,rom", "--format", "json"],
                       capsys)
    assert code == 0
    doc = json.loads(out)
    rows = {r["variant"]: r for r in doc["rows"]}
    dense = size_model(ModelDims.of("130m"))
    assert rows["dense"]["params_total"] == dense.params_total and doc["n_layer"] == 24
    assert rows["rom"]["params_total"] > rows["rom"]["params_active"]
    assert abs(rows["rom"]["flops_per_token"] - dense.flops_per_token) / dense.flops_per_token < 0.01
    code, _, err = cli(["flops", "--model", "65b"], capsys)
    assert code == 2 and "--model" in err
