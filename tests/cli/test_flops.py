"""`swimbench flops` as a user runs it: output formats, --out, and one-line errors for bad input."""
import json
import subprocess
import sys
from io import StringIO

import pandas as pd
import pytest

from swimbench.cli import main

SMALL = ["--d-model", "96", "--experts", "1,3", "--top-k", "1", "--seq", "5"]


def run(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_json_rows_and_breakdown(capsys, tmp_path):
    out_file = tmp_path / "sub" / "flops.json"
    code, out, _ = run(["flops", *SMALL, "--format", "json", "--out", str(out_file)], capsys)
    assert code == 0
    data = json.loads(out)
    assert json.loads(out_file.read_text()) == data
    assert data["matched"] == "prefill" and data["reference"]["d_model"] == 96
    variants = [(r["variant"], r["experts"]) for r in data["rows"]]
    assert variants == [("dense", 1)] + [(v, E) for v in ("swimba", "separated", "moe_mamba", "rom") for E in (1, 3)]
    for r in data["rows"]:
        assert sum(r["components"].values()) == r["flops_analytic"] == r["flops_fvcore"] == r["flops_torch"]


def test_csv_decode_match_and_alignment_warning(capsys):
    args = ["flops", *SMALL, "--format", "csv", "--match", "decode", "-v", "separated"]
    code, out, err = run(args, capsys)
    assert code == 0
    df = pd.read_csv(StringIO(out))
    assert list(df.variant) == ["separated", "separated"] and list(df.experts) == [1, 3]
    # At d_model 96 a multiple of 8 is too coarse to land within 1%: the run says so.
    assert (df.mismatch_pct.abs() > 1).any() and "--align" in err
    code, out, err = run(args + ["--align", "1"], capsys)
    assert (pd.read_csv(StringIO(out)).mismatch_pct.abs() < 1).all() and "--align" not in err


def test_table_is_default(capsys):
    code, out, _ = run(["flops", *SMALL, "-v", "dense"], capsys)
    assert code == 0 and "dense" in out and "MFLOPs per token" in out


@pytest.mark.parametrize("args,flag", [
    (["--d-model", "0"], "--d-model"),
    (["--d-model", "-4"], "--d-model"),
    (["--expand", "0"], "--expand"),
    (["--experts", "4", "--top-k", "5"], "--top-k"),
    (["--experts", "0,2"], "--experts"),
    (["--experts", "two"], "--experts"),
    (["--variants", "moe"], "--variants"),
    (["--d-state", "0"], "--d-state"),
    (["--d-state", "1000"], "--d-state"),
    (["--d-conv", "0"], "--d-conv"),
    (["--format", "xml"], "--format"),
    (["--match", "train"], "--match"),
    (["--align", "3"], "--align"),
    (["--capacity-factor", "0.5"], "--capacity-factor"),
    (["--ffn-mult", "0"], "--ffn-mult"),
    (["--seq", "0"], "--seq"),
    (["--d-model", "abc"], "--d-model"),
])
def test_bad_input_is_one_line_exit_2(capsys, args, flag):
    code, out, err = run(["flops", *args], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0] and "Traceback" not in err
    assert out == ""


def test_console_script_reports_bad_input_without_traceback():
    p = subprocess.run([sys.executable, "-m", "swimbench", "flops", "--variants", "nope"],
                       capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0 and "dense, swimba, separated" in p.stderr
