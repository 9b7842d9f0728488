"""`swimbench generate` end to end on the CPU at the tiny preset: rows, the report's figures, the gate,
out-of-memory rows, resume, bad input; the timed generation really is greedy generation; `flops --model`."""
import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from swimbench.cli.rundirs import EXIT_NOTHING
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


BAD = [(["--preset", "7b"], "--preset"), (["-b", "0"], "--batch"), (["--prompt", "0"], "--prompt"),
       (["-E", "3", "-k", "4"], "--top-k"), (["-n", "1"], "--new-tokens"), (["--dtype", "fp8"], "--dtype"),
       (["-v", "nope"], "--variants"), (["--preset", "none"], "--preset none"), (["-v", ""], "--variants"),
       (["-E", ""], "--experts"), (["--prompt", "a"], "--prompt"), (["-n", "100000000"], "--new-tokens"),
       (["--d-model", "1000000000"], "--d-model"), (["--vocab-size", "10000000000"], "--vocab-size"),
       (["--vocab-size", "1"], "--vocab-size"), (["-L", "0"], "--layers"), (["--seed", "-1"], "--seed"),
       (["--budget", "inf"], "--budget"), (["--budget", "nan"], "--budget"), (["--min-reps", "100000000"],
       "--min-reps"), (["--warmup", "0"], "--warmup"), (["--energy-window", "inf"], "--energy-window"),
       (["--energy"], "--energy"), (["--format", "xml"], "--format"), (["--name", "a/b"], "--name"),
       (["--routing", "random"], "--routing"), (["--device", "tpu"], "--device"),
       (["--resume", "/etc"], "--resume")]


@pytest.mark.parametrize("args,flag", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_and_exit_2(args, flag, capsys, tmp_path):
    code, out, err = cli(["generate", "--device", "cpu", "--out", tmp_path, *args], capsys)
    assert code == 2 and err.count("\n") == 1 and flag in err and "Traceback" not in err, err
    assert not list(tmp_path.iterdir())                       # nothing measured, no run directory


@pytest.mark.parametrize("where", ["a file", "a run directory", "under /proc"])
def test_an_output_it_cannot_write_is_refused_before_any_work(where, tmp_path, capsys):
    target = {"a file": tmp_path / "f.txt", "a run directory": tmp_path / "run",
              "under /proc": Path("/proc/swimbench-out")}[where]
    if where == "a file":
        target.write_text("keep\n")
    elif where == "a run directory":
        target.mkdir()
        (target / RunDir.METADATA).write_text("{}")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code, _, err = cli(["generate", *QUICK, "-v", "dense", "-b", "1", "--out", target], capsys)
    assert code == 2 and err.count("\n") == 1 and "--out" in err, err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_dry_run_measures_nothing_and_json_gives_the_rows(tmp_path, capsys):
    E = int(torch.randint(2, 6, ()))
    code, out, _ = cli(["generate", *QUICK, "-v", "dense,rom", "-E", E, "-k", "1,2", "-b", "1,2", "--dry-run",
                        "--format", "json", "--out", tmp_path], capsys)
    assert code == 0 and not list(tmp_path.iterdir())
    doc = json.loads(out)
    assert doc["rows"] == len(doc["points"]) == 2 * (1 + 2) and doc["model"] == "tiny" and doc["n_layer"] == 3
    assert doc["generate"]["experts"] == [E] and doc["estimate_s"] >= doc["rows"] * 0.01


def test_resume_refuses_what_it_would_ignore_and_a_second_writer(tmp_path, capsys):
    code, out, _ = cli(["generate", *QUICK, "-v", "dense", "-b", "1", "-n", "3", "--prompt", "5",
                        "--format", "json", "--out", tmp_path], capsys)
    doc = json.loads(out)
    assert code == 0 and doc["status"] == "complete" and doc["exit"] == 0 and len(doc["rows"]) == 1
    assert doc["rows"][0]["token_ms"] > 0 and doc["rows"][0]["new_tokens"] == 3
    run = _run_dir(tmp_path)
    before = (run / "results.csv").read_bytes()
    for args, flag in ((["-b", "2"], "--batch"), (["--budget", "0.5"], "--budget"), (["--out", tmp_path], "--out"),
                       (["--name", "x"], "--name")):
        code, _, err = cli(["generate", "--device", "cpu", "--resume", run, *args], capsys)
        assert code == 2 and err.count("\n") == 1 and flag in err, err
    with RunDir(run).lock():
        code, _, err = cli(["generate", "--device", "cpu", "--resume", run], capsys)
    assert code == 2 and err.count("\n") == 1 and "being written by pid" in err, err
    (latency_run := tmp_path / "latency").mkdir()
    (latency_run / RunDir.METADATA).write_text(json.dumps({"tool": "swimbench latency"}))
    code, _, err = cli(["generate", "--device", "cpu", "--resume", latency_run], capsys)
    assert code == 2 and "written by swimbench latency" in err
    assert (run / "results.csv").read_bytes() == before


def test_a_sweep_of_only_oom_rows_says_nothing_was_measured(tmp_path, capsys, monkeypatch):
    def oom(*a, **kw):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 96.00 GiB")
    monkeypatch.setattr(generation, "LanguageModel", oom)
    code, _, err = cli(["generate", *QUICK, "-v", "dense,swimba", "-E", "2", "-k", "1", "-b", "1", "--prompt", "5",
                        "-n", "3", "--out", tmp_path], capsys)
    assert code == EXIT_NOTHING and "nothing measured" in err
    meta = json.loads((_run_dir(tmp_path) / "metadata.json").read_text())
    assert meta["status"] == "nothing measured"


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
